"""Map metrics beyond cosine (numpy only): pointing game, AU-energy share, per-AU attention share, per class and macro.

The AU *region* of a sample is where its stored AU map is >= 0.5. A rendered map (flat-top Gaussian, see
`aumaps/render.py`) crosses 0.5 at distance r + σ·sqrt(2 ln 2) from an AU centre, so the per-AU regions below are
discs of that radius around each AU's centres; every map pixel inside some disc is given to the nearest centre's
region. The per-AU shares of one sample therefore partition its AU region: they sum to the map's energy share.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from fer_pipeline.aumaps.anchors import ANCHOR_OF, anchor_points, anchors_for, inter_ocular
from fer_pipeline.core.codebook import aus_for
from fer_pipeline.core.labels import AU_CLASSES, LABELS, NUM_CLASSES
from fer_pipeline.evaluate.metrics import au_macro, energy_share, per_class_mean, pointing_game

#: AU region threshold on the stored [0, 1] AU map.
REGION_THR = 0.5
#: Every named region (anchor), in a fixed order: column j of `anchor_shares` is ANCHORS[j].
ANCHORS: tuple[str, ...] = tuple(sorted(set(ANCHOR_OF.values())))
_HALF = math.sqrt(2.0 * math.log(2.0))  # flat-top Gaussian profile = 0.5 at r + σ·_HALF


def region_radius(iod: np.ndarray, radius: float, smoothing: float) -> np.ndarray:
    """Per-face radius (pixels) where a rendered AU disc of `radius`·IOD with `smoothing`·r blur falls to 0.5."""
    return np.asarray(iod, np.float64) * float(radius) * (1.0 + float(smoothing) * _HALF)


def au_partition(
    landmarks: np.ndarray,
    image_size: np.ndarray,
    labels: np.ndarray,
    *,
    codebook: str = "reference",
    size: int = 56,
    radius: float = 0.25,
    smoothing: float = 0.5,
) -> np.ndarray:
    """int8 (N, size, size): index into ANCHORS of the AU region each map pixel belongs to, -1 outside every region.

    Map pixel (i, j) is image point ((j+0.5)·W/size, (i+0.5)·H/size), as in `render_maps`. Neutral rows and rows
    with non-finite landmarks are all -1.
    """
    pts = np.asarray(landmarks, np.float64).reshape(-1, 68, 2)
    n = pts.shape[0]
    hw = np.asarray(image_size, np.float64).reshape(n, 2)
    lab = np.asarray(labels, np.int64).reshape(n)
    out = np.full((n, size, size), -1, np.int8)
    if n == 0:
        return out
    anchors = anchor_points(pts)
    r_eff = region_radius(inter_ocular(pts), radius, smoothing)
    valid = np.isfinite(pts).all(axis=(1, 2)) & np.isfinite(r_eff) & (r_eff > 0)
    cell = (np.arange(size, dtype=np.float64) + 0.5) / size
    for label in AU_CLASSES:
        rows = np.flatnonzero(valid & (lab == label))
        if rows.size == 0:
            continue
        names = anchors_for(aus_for(label, codebook))
        gy = cell[None, :] * hw[rows, 0:1]  # (n, S) image y of map rows
        gx = cell[None, :] * hw[rows, 1:2]
        best = np.full((rows.size, size, size), np.inf)
        owner = np.full((rows.size, size, size), -1, np.int8)
        for name in names:
            centres = anchors[name][rows]  # (n, K, 2)
            for k in range(centres.shape[1]):
                d2 = (gy - centres[:, k, 1:2])[:, :, None] ** 2 + (gx - centres[:, k, 0:1])[:, None, :] ** 2
                closer = d2 < best
                best = np.where(closer, d2, best)
                owner = np.where(closer, np.int8(ANCHORS.index(name)), owner)
        owner[best > (r_eff[rows] ** 2)[:, None, None]] = -1
        out[rows] = owner
    return out


def class_regions(codebook: str = "reference") -> np.ndarray:
    """bool (NUM_CLASSES, len(ANCHORS)): which AU regions each class's codebook entry uses."""
    return np.array([[name in anchors_for(aus_for(k, codebook)) for name in ANCHORS] for k in range(NUM_CLASSES)], bool)


def anchor_shares(maps: np.ndarray, partition: np.ndarray, labels: np.ndarray, codebook: str = "reference") -> np.ndarray:
    """(N, len(ANCHORS)) fraction of each map's mass (negatives clipped) in each of its class's AU regions.

    NaN for regions the sample's class does not use and for samples with no region; a zero map counts as uniform
    (share = region area fraction), as in `energy_share`.
    """
    maps = np.clip(np.asarray(maps, np.float64), 0.0, None)
    n = maps.shape[0]
    if maps.shape != partition.shape:
        raise ValueError(f"maps {maps.shape} and partition {partition.shape} must have the same (N, S, S) shape")
    flat, part = maps.reshape(n, -1), partition.reshape(n, -1)
    total = flat.sum(axis=1)
    npix = flat.shape[1]
    out = np.full((n, len(ANCHORS)), math.nan)
    uses = class_regions(codebook)[np.asarray(labels, np.int64).reshape(n)]  # (N, A)
    for j in range(len(ANCHORS)):
        inside = part == j
        share = np.where(total > 0, (flat * inside).sum(axis=1) / np.where(total > 0, total, 1.0), inside.sum(axis=1) / npix)
        out[uses[:, j], j] = share[uses[:, j]]
    out[~(part >= 0).any(axis=1)] = math.nan
    return out


def per_class_au_shares(
    shares: np.ndarray, labels: np.ndarray, valid: np.ndarray, codebook: str = "reference"
) -> dict[int, dict[str, float]]:
    """Class -> {"AU<n>": mean share of that AU's region over the class's valid samples} for the class's AUs."""
    lab = np.asarray(labels, np.int64).reshape(-1)
    out: dict[int, dict[str, float]] = {}
    for k in AU_CLASSES:
        sel = np.asarray(valid, bool) & (lab == k)
        row: dict[str, float] = {}
        for au in aus_for(k, codebook):
            col = shares[sel, ANCHORS.index(ANCHOR_OF[au])]
            col = col[np.isfinite(col)]
            row[f"AU{au}"] = float(col.mean()) if col.size else math.nan
        out[k] = row
    return out


def au_share_macro(per_class: Mapping[int, Mapping[str, float]]) -> dict[str, float]:
    """ "AU<n>" -> mean over the classes that have the AU of their class mean share (NaN classes skipped)."""
    values: dict[str, list[float]] = {}
    for row in per_class.values():
        for au, v in row.items():
            if math.isfinite(v):
                values.setdefault(au, []).append(v)
    return {au: float(np.mean(v)) for au, v in sorted(values.items(), key=lambda kv: int(kv[0][2:]))}


def map_scores(cam: np.ndarray, att: np.ndarray, au: np.ndarray, has_map: np.ndarray) -> dict[str, np.ndarray]:
    """Per-sample pointing game and energy share of the CAM and the attention on the AU region; NaN without a map."""
    has = np.asarray(has_map, bool)
    out = {}
    for name, maps in (("cam", cam), ("att", att)):
        out[f"{name}_pointing"] = np.where(has, pointing_game(maps, au, REGION_THR), math.nan)
        out[f"{name}_energy"] = np.where(has, energy_share(maps, au, REGION_THR), math.nan)
    return out


def add_per_class(metrics: dict[str, Any], name: str, values: np.ndarray, labels: np.ndarray, valid: np.ndarray) -> None:
    """Set `metrics[name]` (macro over the AU classes) and `metrics["per_class"][<label>][name]` from per-sample values."""
    pc = per_class_mean(values, labels, valid & np.isfinite(values))
    metrics[name] = au_macro(pc)
    per_class = metrics.setdefault("per_class", {})
    for k in range(NUM_CLASSES):
        per_class.setdefault(LABELS[k], {})[name] = pc[k]


def extra_metrics(
    metrics: dict[str, Any],
    *,
    cam: np.ndarray,
    att: np.ndarray,
    au: np.ndarray,
    has_map: np.ndarray,
    labels: np.ndarray,
    partition: np.ndarray,
    codebook: str = "reference",
) -> np.ndarray:
    """Add pointing game, energy share (CAM and attention) and per-AU attention shares to `metrics`; returns the shares."""
    labels = np.asarray(labels, np.int64)
    has = np.asarray(has_map, bool)
    for name, values in map_scores(cam, att, au, has).items():
        add_per_class(metrics, name, values, labels, has)
    shares = anchor_shares(att, partition, labels, codebook)
    pc = per_class_au_shares(shares, labels, has, codebook)
    for k, row in pc.items():
        metrics["per_class"][LABELS[k]]["att_au_share"] = row
    metrics["att_au_share"] = au_share_macro(pc)
    return shares
