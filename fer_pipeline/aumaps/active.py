"""Active-AU maps (`aumaps.mode: active`): each AU region weighted by the intensity the face shows (per-image AU store).

Weights per face and AU (`au_weights`): the stored intensity in [0, 1]; NaN (unknown) → the codebook weight (1 for the
class's codebook AUs, 0 for the others). `restrict_to_codebook` keeps only the class's codebook AUs (the paper's prior,
thinned to what is present). A region shared by several AUs (AU5/AU7 at the eyes, AU23-27 at the mouth centre) takes the
largest of their weights; the map is max over regions of weight × the codebook mode's profile, min-max normalised as
in codebook mode. With every intensity unknown it is the codebook map; a face with no active AU has no map, and neutral
faces never have one (they are left out of every AU metric).
"""

from __future__ import annotations

import numpy as np

from fer_pipeline.aumaps.anchors import ANCHOR_OF, anchor_points, inter_ocular
from fer_pipeline.aumaps.render import BLOCK, check_render, normalise, profile, reaches
from fer_pipeline.aus.formats import AUS
from fer_pipeline.core.codebook import aus_for
from fer_pipeline.core.labels import NEUTRAL, NUM_CLASSES

MODES = ("codebook", "active")
#: Every named region, in a fixed order (column j of `anchor_weights` is REGIONS[j]).
REGIONS: tuple[str, ...] = tuple(sorted(set(ANCHOR_OF.values())))


def codebook_mask(labels: np.ndarray, codebook: str = "reference") -> np.ndarray:
    """bool (N, len(AUS)): which AUs each row's class lists in `codebook`."""
    table = np.array([[au in aus_for(k, codebook) for au in AUS] for k in range(NUM_CLASSES)], bool)
    return table[np.asarray(labels, np.int64).reshape(-1)]


def au_weights(
    intensity: np.ndarray, labels: np.ndarray, *, codebook: str = "reference", restrict_to_codebook: bool = True
) -> np.ndarray:
    """float32 (N, len(AUS)) weights in [0, 1]: the intensity, NaN → codebook weight, neutral rows all 0."""
    inten = np.asarray(intensity, np.float32).reshape(-1, len(AUS))
    book = codebook_mask(labels, codebook)
    w = np.where(np.isnan(inten), book.astype(np.float32), np.clip(inten, 0.0, 1.0))
    if restrict_to_codebook:
        w = np.where(book, w, 0.0)
    w[np.asarray(labels).reshape(-1) == NEUTRAL] = 0.0
    return w.astype(np.float32)


def anchor_weights(weights: np.ndarray) -> np.ndarray:
    """float32 (N, len(REGIONS)): per region the largest weight of the AUs drawn there."""
    w = np.asarray(weights, np.float32).reshape(-1, len(AUS))
    out = np.zeros((w.shape[0], len(REGIONS)), np.float32)
    for j, au in enumerate(AUS):
        a = REGIONS.index(ANCHOR_OF[au])
        np.maximum(out[:, a], w[:, j], out=out[:, a])
    return out


def render_active(
    landmarks: np.ndarray,
    image_size: np.ndarray,
    weights: np.ndarray,
    *,
    size: int = 56,
    radius: float = 0.25,
    smoothing: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Maps float32 (N,size,size) in [0,1] and has_map (N,) from per-AU `weights` (N, len(AUS)) (`au_weights`);
    rows with non-finite landmarks or no positive weight get zeros and has_map False."""
    check_render(size, radius, smoothing)
    size = int(size)
    pts = np.asarray(landmarks, np.float32).reshape(-1, 68, 2)
    n = pts.shape[0]
    hw = np.asarray(image_size, np.float32).reshape(n, 2)
    aw = anchor_weights(weights)
    maps, has_map = np.zeros((n, size, size), np.float32), np.zeros(n, bool)
    if n == 0:
        return maps, has_map
    iod = inter_ocular(pts)
    valid = np.isfinite(pts).all(axis=(1, 2)) & (hw > 0).all(axis=1) & np.isfinite(iod) & (iod > 0) & (aw.max(axis=1) > 0)
    anchors = anchor_points(pts)
    r_all = np.float32(radius) * iod
    rows = np.flatnonzero(valid)
    for start in range(0, rows.size, BLOCK):
        idx = rows[start : start + BLOCK]
        acc = np.zeros((idx.size, size, size), np.float32)
        for a, name in enumerate(REGIONS):
            w = aw[idx, a]
            if not (w > 0).any():
                continue
            centres = anchors[name][idx].copy()
            centres[~reaches(centres, hw[idx], r_all[idx], size, smoothing)] = np.inf  # off the grid: draws nothing
            prof = profile(centres, hw[idx], r_all[idx], size, smoothing)
            prof *= w[:, None, None]
            np.maximum(acc, prof, out=acc)
        maps[idx], has_map[idx] = normalise(acc)
    return maps, has_map
