"""Per-row landmark quality: points outside the image (jaw / inner) and a shape-plausibility residual, and the
`landmarks.min_quality` check that turns implausible rows into a status with a reason (no AU map is drawn on them).

The residual is the RMS distance between a row's 68 points and the mean shape after a least-squares similarity fit
(translation, rotation, uniform scale; no reflection), in inter-ocular distances of the fitted mean shape. The mean
shape is the synthetic generator's canonical neutral face (`face_geometry.mean_face`), the one place for that fact.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from fer_pipeline.data.face_geometry import mean_face

#: iBUG-68 jaw (0-16) and inner points (17-67: brows, nose, eyes, mouth).
JAW, INNER = slice(0, 17), slice(17, 68)
#: Reasons of the IMPLAUSIBLE status (counted per reason in the stage summary).
INNER_OUTSIDE, IMPLAUSIBLE_SHAPE = "inner_points_outside", "implausible_shape"


@dataclass
class Quality:
    """Per-row quality figures (N rows)."""

    outside_jaw: np.ndarray  # uint8 (N,): jaw points outside the image
    outside_inner: np.ndarray  # uint8 (N,): inner points outside the image
    residual: np.ndarray  # float32 (N,): RMS to the similarity-fitted mean shape / its IOD; NaN where no points


@functools.cache
def _mean_shape() -> np.ndarray:
    """The canonical face as complex numbers, centred, and its inter-ocular distance (last element)."""
    p = mean_face(256).astype(np.float64)
    z = p[:, 0] + 1j * p[:, 1]
    iod = abs(z[42:48].mean() - z[36:42].mean())
    return np.append(z - z.mean(), iod)


def points_outside(landmarks: np.ndarray, image_size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(jaw, inner) counts per row of points outside [0, W] x [0, H] (NaN points are not counted)."""
    pts = np.asarray(landmarks, np.float64).reshape(-1, 68, 2)
    hw = np.asarray(image_size, np.float64).reshape(-1, 1, 2)
    with np.errstate(invalid="ignore"):
        out = (pts[..., 0] < 0) | (pts[..., 0] > hw[..., 1]) | (pts[..., 1] < 0) | (pts[..., 1] > hw[..., 0])
    return out[:, JAW].sum(1).astype(np.uint8), out[:, INNER].sum(1).astype(np.uint8)


def shape_residual(landmarks: np.ndarray) -> np.ndarray:
    """Per row: RMS distance to the mean shape after a similarity fit, in inter-ocular distances (NaN where a point is
    not finite). Generator faces (any roll, size, AUs) score up to ~0.21, dlib68 on a photo ~0.1, a scrambled shape ~0.78."""
    pts = np.asarray(landmarks, np.float64).reshape(-1, 68, 2)
    ref = _mean_shape()
    m, iod = ref[:-1], float(ref[-1].real)
    z = pts[..., 0] + 1j * pts[..., 1]
    ok = np.isfinite(z).all(axis=1)
    z = np.where(ok[:, None], z, 0.0)
    zc = z - z.mean(axis=1, keepdims=True)
    a = (zc @ np.conj(m)) / float(np.vdot(m, m).real)  # least-squares rotation and scale of the mean onto the row
    rms = np.sqrt(np.mean(np.abs(a[:, None] * m - zc) ** 2, axis=1))
    # The row's inter-ocular distance as its size (RMS radius) says, not as its own eyes or the fit's scale say: a
    # scrambled shape then scores its RMS radius in IODs (~1.2), not a number blown up by a collapsed fit.
    size = np.sqrt(np.mean(np.abs(zc) ** 2, axis=1)) * iod / np.sqrt(np.mean(np.abs(m) ** 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        res = rms / size
    return np.where(ok & (size > 0), res, np.nan).astype(np.float32)


def landmark_quality(landmarks: np.ndarray, image_size: np.ndarray) -> Quality:
    """The quality figures of a block of rows."""
    jaw, inner = points_outside(landmarks, image_size)
    return Quality(jaw, inner, shape_residual(landmarks))


def min_quality_of(params: dict) -> float:
    """`landmarks.min_quality` as a float (0, absent or null = off; a `dvc exp run -S` string is cast)."""
    value = params.get("min_quality")
    try:
        return 0.0 if value is None else float(value)
    except ValueError:
        raise ValueError(f"landmarks.min_quality={value!r} is not a number; use e.g. 0.3 (0 = off)") from None


def implausible(quality: Quality, usable: np.ndarray, min_quality: float) -> list[str]:
    """Per row the IMPLAUSIBLE reason under `landmarks.min_quality` ("" where the row passes or is not usable):
    inner points outside the image, or a residual above `min_quality`. `min_quality` <= 0 is off (every row passes)."""
    out = [""] * len(usable)
    if min_quality <= 0:
        return out
    for i in np.flatnonzero(usable):
        if quality.outside_inner[i] > 0:
            out[i] = INNER_OUTSIDE
        elif not quality.residual[i] <= min_quality:  # NaN fails too
            out[i] = IMPLAUSIBLE_SHAPE
    return out
