"""Scores against the *true active-AU map* (synthetic sets: the generator's per-image AU truth), beyond the paper.

The true map is the active-mode map (`aumaps/active.py`, restricted to the class's codebook) of the AUs the face really
shows, drawn from the ground-truth landmarks at the AU store's size / radius / smoothing. Against it: cosine, pointing
game and energy share of the CAM and the attention; and the share of the map's mass on the regions of codebook AUs the
face does *not* show (a region shared with a shown AU is not absent), lower is better. Macro over the AU classes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fer_pipeline.aumaps.active import REGIONS, anchor_weights, au_weights, codebook_mask, render_active
from fer_pipeline.aumaps.anchors import anchor_points, inter_ocular
from fer_pipeline.aus.formats import read_au_csv
from fer_pipeline.evaluate.extra_metrics import REGION_THR, add_per_class, region_radius
from fer_pipeline.evaluate.metrics import energy_share, pointing_game
from fer_pipeline.landmarks.importer import read_points_csv
from fer_pipeline.models.maps import cosine


def read_truth(aus_csv: str | Path, landmarks_csv: str | Path, sample_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(N, 18) true AU intensities and (N, 68, 2) true landmarks of `sample_ids` from the generator's CSVs."""
    truth = read_au_csv(aus_csv)
    ids, pts = read_points_csv(landmarks_csv)
    au_row, pt_row = {s: i for i, s in enumerate(truth.sample_id)}, {s: i for i, s in enumerate(ids)}
    missing = [s for s in sample_ids if s not in au_row or s not in pt_row]
    if missing:
        raise ValueError(f"{len(missing)} samples (e.g. {missing[0]!r}) lack a truth row in {aus_csv} / {landmarks_csv}; "
                         "rerun `dvc repro prepare`")
    return (truth.intensity[[au_row[s] for s in sample_ids]], pts[[pt_row[s] for s in sample_ids]])


def _discs(pts: np.ndarray, hw: np.ndarray, regions: np.ndarray, size: int, radius: float, smoothing: float) -> np.ndarray:
    """bool (N, size, size): map pixels within the 0.5 level of any region flagged in `regions` (N, len(REGIONS))."""
    n = pts.shape[0]
    r2 = region_radius(inter_ocular(pts), radius, smoothing) ** 2
    cell = (np.arange(size) + 0.5) / size
    gy, gx = cell[None, :] * hw[:, 0:1], cell[None, :] * hw[:, 1:2]
    out = np.zeros((n, size, size), bool)
    anchors = anchor_points(pts)
    for a, name in enumerate(REGIONS):
        rows = np.flatnonzero(regions[:, a])
        for k in range(anchors[name].shape[1]):
            c = anchors[name][rows, k].astype(np.float64)
            d2 = (gy[rows] - c[:, 1:2])[:, :, None] ** 2 + (gx[rows] - c[:, 0:1])[:, None, :] ** 2
            out[rows] |= d2 <= r2[rows, None, None]
    return out


def absent_regions(
    landmarks: np.ndarray, image_size: np.ndarray, labels: np.ndarray, intensity: np.ndarray, *, codebook: str, size: int,
    radius: float, smoothing: float,
) -> np.ndarray:
    """bool (N, size, size): pixels within the 0.5 level of a region whose codebook AUs are all absent (intensity 0),
    less those within a shown AU's region (nearby discs overlap on small faces: a shared pixel is not absent)."""
    pts = np.asarray(landmarks, np.float64).reshape(-1, 68, 2)
    hw = np.asarray(image_size, np.float64).reshape(-1, 2)
    book = codebook_mask(labels, codebook)
    inten = np.nan_to_num(np.asarray(intensity, np.float32), nan=1.0)  # unknown counts as shown: never "absent"
    shown = anchor_weights(np.where(book, inten, 0.0)) > 0
    listed = anchor_weights(book.astype(np.float32)) > 0
    return _discs(pts, hw, listed & ~shown, size, radius, smoothing) & ~_discs(pts, hw, shown, size, radius, smoothing)


def active_scores(
    metrics: dict[str, Any],
    *,
    cam: np.ndarray,
    att: np.ndarray,
    att_cos_maps: np.ndarray | None = None,
    labels: np.ndarray,
    landmarks: np.ndarray,
    image_size: np.ndarray,
    intensity: np.ndarray,
    attrs: dict[str, Any],
) -> None:
    """Add `active_{cam,att}_{cos,pointing,energy}` and `{cam,att}_absent_share` (macro over AU classes; per class
    under `per_class`) to `metrics`; `attrs`: the AU store's codebook, radius, smoothing; the map size is the CAM's.
    `att_cos_maps`: the attention as ATT-COS scores it (`reference_attention`), for the cosine; default `att`."""
    labels = np.asarray(labels, np.int64)
    size, codebook = int(cam.shape[-1]), str(attrs["codebook"])
    radius, smoothing = float(attrs["radius"]), float(attrs["smoothing"])
    w = au_weights(intensity, labels, codebook=codebook, restrict_to_codebook=True)
    truth, has = render_active(landmarks, image_size, w, size=size, radius=radius, smoothing=smoothing)
    absent = absent_regions(landmarks, image_size, labels, intensity, codebook=codebook, size=size, radius=radius,
                            smoothing=smoothing)
    cos_maps = {"cam": cam, "att": att if att_cos_maps is None else att_cos_maps}
    for name, maps in (("cam", cam), ("att", att)):
        cos = cosine(torch.from_numpy(np.asarray(cos_maps[name], np.float32)), torch.from_numpy(truth)).numpy()
        cos = cos.astype(np.float64)
        values = {
            f"active_{name}_cos": np.where(has, cos, math.nan),
            f"active_{name}_pointing": np.where(has, pointing_game(maps, truth, REGION_THR), math.nan),
            f"active_{name}_energy": np.where(has, energy_share(maps, truth, REGION_THR), math.nan),
            f"{name}_absent_share": energy_share(maps, absent.astype(np.float32), REGION_THR),  # NaN: nothing absent
        }
        for key, v in values.items():
            add_per_class(metrics, key, v, labels, np.isfinite(v))
    metrics["active_n"] = int(has.sum())
    metrics["absent_n"] = int(absent.any(axis=(1, 2)).sum())
