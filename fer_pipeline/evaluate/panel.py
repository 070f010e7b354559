"""The figure sample panel `plots/<run>/samples.h5`: a few test images with their AU map, CAM and attention.

Every run of one dataset picks the same samples (the first ones of each AU class in manifest order), so the
report can put the runs without and with AUs side by side without loading models or images again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from fer_pipeline.aumaps.render import from_uint8, to_uint8
from fer_pipeline.core import h5
from fer_pipeline.core.io import atomic_path
from fer_pipeline.core.labels import AU_CLASSES, LABELS


@dataclass
class Panel:
    """Sample panel: RGB images (n,D,D,3) uint8 and [0,1] float maps (n,S,S)."""

    sample_id: list[str]
    label: np.ndarray
    pred: np.ndarray
    image: np.ndarray
    au: np.ndarray
    cam: np.ndarray
    att: np.ndarray

    def titles(self) -> list[str]:
        """Row titles: `<id>: <true> → <predicted>`."""
        return [f"{s}: {LABELS[y]} -> {LABELS[p]}" for s, y, p in zip(self.sample_id, self.label, self.pred, strict=True)]


def pick_samples(labels: np.ndarray, has_map: np.ndarray, per_class: int) -> np.ndarray:
    """Indices of the first `per_class` samples with an AU map of each AU class, grouped by class (canonical order)."""
    labels = np.asarray(labels, np.int64)
    has = np.asarray(has_map, bool)
    picks = [np.flatnonzero(has & (labels == k))[: max(0, int(per_class))] for k in AU_CLASSES]
    return np.concatenate(picks).astype(np.int64) if picks else np.zeros(0, np.int64)


def write_panel(path: str | Path, panel: Panel, attrs: dict[str, str | int | float] | None = None) -> None:
    """Write the panel atomically and deterministically (maps stored as uint8)."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        h5.create_strings(f, "sample_id", list(panel.sample_id))
        h5.create(f, "label", np.asarray(panel.label, np.int64))
        h5.create(f, "pred", np.asarray(panel.pred, np.int64))
        h5.create(f, "image", np.asarray(panel.image, np.uint8))
        for name in ("au", "cam", "att"):
            h5.create(f, name, to_uint8(getattr(panel, name)))
        h5.set_attrs(f, attrs or {})


def read_panel(path: str | Path) -> Panel:
    """Read a panel written by `write_panel`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sample panel {path} not found; run the evaluate stage (`dvc repro evaluate`)")
    with h5py.File(path, "r") as f:
        return Panel(
            sample_id=h5.read_strings(f["sample_id"]),
            label=f["label"][()],
            pred=f["pred"][()],
            image=f["image"][()],
            au=from_uint8(f["au"][()]),
            cam=from_uint8(f["cam"][()]),
            att=from_uint8(f["att"][()]),
        )


def common_samples(panels: Sequence[Panel]) -> list[str]:
    """Sample ids present in every panel, in the first panel's order (runs of one dataset share them all)."""
    if not panels:
        return []
    shared = set.intersection(*(set(p.sample_id) for p in panels))
    return [s for s in panels[0].sample_id if s in shared]


def select(panel: Panel, ids: Sequence[str]) -> Panel:
    """The panel's rows for `ids`, in that order."""
    pos = {s: i for i, s in enumerate(panel.sample_id)}
    idx = np.array([pos[s] for s in ids], np.int64)
    return Panel(
        sample_id=list(ids),
        label=panel.label[idx],
        pred=panel.pred[idx],
        image=panel.image[idx],
        au=panel.au[idx],
        cam=panel.cam[idx],
        att=panel.att[idx],
    )
