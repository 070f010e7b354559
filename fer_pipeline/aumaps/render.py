"""Vectorised AU heatmap rendering: one [0,1] map per face from its class, landmarks and image size.

Each AU region is a disc of radius `radius × inter-ocular distance` (image pixels) around each of its centres,
smoothed with a Gaussian of sigma `smoothing × radius`. Smoothing is analytic, not a convolution: the value at
distance d from the nearest centre is 1 inside the disc and exp(-(d - r)² / 2σ²) outside (a flat-top Gaussian,
the profile of a disc edge blurred on its outside only). It is monotone in d, so "max over regions" equals the
profile of the *minimum* distance to any centre: the renderer keeps a running min of squared distances over the
class's centres, vectorised over a block of faces × the whole grid, and evaluates one exp per map pixel.

Only regions that reach the grid are drawn (`reaches`): a region whose disc meets the image, or whose profile peaks
at >= 0.5 on a map pixel. A Gaussian tail of a region off the image is not stretched into a map; a face with no
region on the image gets no map (has_map False; the stage counts these rows as "off the image").
"""

from __future__ import annotations

import numpy as np

from fer_pipeline.aumaps.anchors import anchor_points, anchors_for, inter_ocular
from fer_pipeline.core.codebook import aus_for
from fer_pipeline.core.labels import AU_CLASSES, NUM_CLASSES

#: Faces rendered together; bounds the float32 temporaries to a few (BLOCK, S, S) arrays.
BLOCK = 256
_EPS = 1e-6


def check_render(size: int, radius: float, smoothing: float) -> None:
    """Reject parameters that would give empty or meaningless maps."""
    if int(size) < 1:
        raise ValueError(f"aumaps.size must be >= 1, got {size}")
    if not radius > 0:
        raise ValueError(f"aumaps.radius must be > 0 (a fraction of the inter-ocular distance), got {radius}")
    if not smoothing >= 0:
        raise ValueError(f"aumaps.smoothing must be >= 0 (Gaussian sigma as a fraction of the radius), got {smoothing}")


#: The raw profile a region must reach on the grid to count (or its disc must meet the image).
REACH_PEAK = 0.5


def reaches(centres: np.ndarray, hw: np.ndarray, r: np.ndarray, size: int, smoothing: float) -> np.ndarray:
    """bool (n,K): region k of face i reaches the grid: its disc meets the image [0,W]x[0,H], or its profile is
    >= REACH_PEAK on some map pixel (pixel centres span [W/2S, W - W/2S]; the flat-top profile is >= 0.5 within
    r + sigma * sqrt(2 ln 2) of the centre)."""
    h, w = hw[:, None, 0], hw[:, None, 1]
    x, y = centres[..., 0], centres[..., 1]

    def gap(lo_x: np.ndarray, hi_x: np.ndarray, lo_y: np.ndarray, hi_y: np.ndarray) -> np.ndarray:
        dx = np.maximum(np.maximum(lo_x - x, x - hi_x), 0.0)
        dy = np.maximum(np.maximum(lo_y - y, y - hi_y), 0.0)
        return np.sqrt(dx * dx + dy * dy)

    rr = r[:, None]
    disc = gap(np.zeros_like(w), w, np.zeros_like(h), h) <= rr
    reach = rr + np.float32(smoothing) * rr * np.float32(np.sqrt(2.0 * np.log(1.0 / REACH_PEAK)))
    peak = gap(0.5 * w / size, w - 0.5 * w / size, 0.5 * h / size, h - 0.5 * h / size) <= reach
    return disc | peak


def profile(centres: np.ndarray, hw: np.ndarray, r: np.ndarray, size: int, smoothing: float) -> np.ndarray:
    """Un-normalised maps (n,S,S) float32 in [0,1]: the flat-top profile of the distance to the nearest of the centres
    (n,K,2) of n faces with image H,W (n,2) and radii (n,)."""
    n = centres.shape[0]
    cell = (np.arange(size, dtype=np.float32) + 0.5) / np.float32(size)
    gy = cell[None, :] * hw[:, 0:1]  # (n,S) image y of map rows
    gx = cell[None, :] * hw[:, 1:2]  # (n,S) image x of map columns
    d2 = np.full((n, size, size), np.inf, dtype=np.float32)
    tmp = np.empty_like(d2)
    for k in range(centres.shape[1]):  # loop over the class's centres (<= 12), vectorised over faces and grid
        dy2 = np.square(gy - centres[:, k, 1:2])
        dx2 = np.square(gx - centres[:, k, 0:1])
        np.add(dy2[:, :, None], dx2[:, None, :], out=tmp)
        np.minimum(d2, tmp, out=d2)
    beyond = np.sqrt(d2, out=d2)
    beyond -= r[:, None, None]
    np.maximum(beyond, 0.0, out=beyond)
    if smoothing > 0:
        sigma = np.float32(smoothing) * r
        beyond /= sigma[:, None, None]
        np.square(beyond, out=beyond)
        beyond *= np.float32(-0.5)
        return np.exp(beyond, out=beyond)
    return (beyond <= 0).astype(np.float32)


def normalise(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Min-max each map of (n,S,S) to [0,1] in place; (maps, visible (n,)): a map with nothing on the grid stays 0."""
    hi = m.max(axis=(1, 2))
    lo = m.min(axis=(1, 2))
    visible = hi > _EPS  # a face far outside the image draws nothing on the grid
    span = hi - lo
    spread = span > _EPS
    denom = np.where(spread, span, np.where(visible, hi, 1.0)).astype(np.float32)
    offset = np.where(spread, lo, 0.0).astype(np.float32)
    m -= offset[:, None, None]
    m /= denom[:, None, None]
    np.clip(m, 0.0, 1.0, out=m)
    m[~visible] = 0.0
    return m, visible


def _render_block(
    centres: np.ndarray, hw: np.ndarray, r: np.ndarray, size: int, smoothing: float
) -> tuple[np.ndarray, np.ndarray]:
    """Maps (n,S,S) float32 [0,1] and visible (n,) for n faces with centres (n,K,2), image H,W (n,2), radii (n,)."""
    return normalise(profile(centres, hw, r, size, smoothing))


def render_maps(
    landmarks: np.ndarray,
    image_size: np.ndarray,
    labels: np.ndarray,
    *,
    codebook: str = "reference",
    size: int = 56,
    radius: float = 0.25,
    smoothing: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """AU maps float32 (N,size,size) in [0,1] (max exactly 1 where drawn) and has_map bool (N,).

    Map pixel (i, j) is image point ((j+0.5)·W/size, (i+0.5)·H/size): the map covers the whole image, so resizing it
    to H×W aligns it. Neutral rows, rows with any non-finite landmark or a degenerate face, and faces none of whose
    class's regions reaches the image (`reaches`) → zeros, has_map False.
    """
    check_render(size, radius, smoothing)
    size = int(size)
    pts = np.asarray(landmarks, dtype=np.float32)
    n = pts.shape[0] if pts.ndim == 3 else -1
    if pts.ndim != 3 or pts.shape[1:] != (68, 2):
        raise ValueError(f"landmarks must be (N, 68, 2), got shape {pts.shape}")
    hw = np.asarray(image_size, dtype=np.float32).reshape(n, 2)
    lab = np.asarray(labels).reshape(n)
    if n and (not np.issubdtype(lab.dtype, np.integer) or lab.min() < 0 or lab.max() >= NUM_CLASSES):
        raise ValueError(f"labels must be canonical class indices 0..{NUM_CLASSES - 1}, got {np.unique(lab)[:10]}")

    maps = np.zeros((n, size, size), dtype=np.float32)
    has_map = np.zeros(n, dtype=bool)
    if n == 0:
        return maps, has_map
    iod = inter_ocular(pts)
    valid = np.isfinite(pts).all(axis=(1, 2)) & (hw > 0).all(axis=1) & np.isfinite(iod) & (iod > 0)
    anchors = anchor_points(pts)
    r_all = np.float32(radius) * iod

    for label in AU_CLASSES:  # loop over classes, then blocks of faces: never per image or per AU
        rows = np.flatnonzero(valid & (lab == label))
        if rows.size == 0:
            continue
        names = anchors_for(aus_for(label, codebook))
        for start in range(0, rows.size, BLOCK):
            idx = rows[start : start + BLOCK]
            centres = np.concatenate([anchors[name][idx] for name in names], axis=1)
            centres[~reaches(centres, hw[idx], r_all[idx], size, smoothing)] = np.inf  # off the grid: draws nothing
            block, visible = _render_block(centres, hw[idx], r_all[idx], size, smoothing)
            maps[idx] = block
            has_map[idx] = visible
    return maps, has_map


def to_uint8(maps: np.ndarray) -> np.ndarray:
    """[0,1] float maps -> uint8 round(255·m) (the stored form: 1 byte a pixel)."""
    return np.rint(np.clip(maps, 0.0, 1.0) * 255.0).astype(np.uint8)


def from_uint8(u8: np.ndarray) -> np.ndarray:
    """Stored uint8 maps -> float32 in [0,1] (255 -> exactly 1.0)."""
    out = np.asarray(u8).astype(np.float32)  # one new array, divided in place (the same values as u8 / 255)
    out /= np.float32(255.0)
    return out
