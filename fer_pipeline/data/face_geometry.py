"""Face geometry of the synthetic generator: the canonical iBUG-68 face, per-identity shape, placement in the image and
the landmark displacement of every modelled action unit (numpy only; the drawing lives in `synthetic.py`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

_MIRROR = np.array(
    [*range(16, -1, -1), *range(26, 16, -1), 27, 28, 29, 30, 35, 34, 33, 32, 31, 45, 44, 43, 42, 47, 46, 39, 38, 37]
    + [36, 41, 40, 54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65]
)


def _canonical() -> np.ndarray:
    """Neutral frontal face; unit = half face width, x right, y down, eye line at y = -0.2."""
    p = np.zeros((68, 2))
    t = np.linspace(0.0, np.pi, 17)
    p[0:17] = np.c_[-np.cos(t) * (1.0 - 0.12 * np.sin(t) ** 6), -0.22 + 1.27 * np.sin(t) ** 1.15]
    s = np.linspace(0.0, 1.0, 5)
    p[17:22] = np.c_[-0.84 + 0.68 * s, -0.42 - 0.10 * np.sin(np.pi * (0.1 + 0.75 * s))]
    p[27:31] = np.c_[np.zeros(4), np.linspace(-0.22, 0.22, 4)]
    p[31:34] = [(-0.17, 0.30), (-0.085, 0.335), (0.0, 0.35)]
    eye = [(-0.19, 0.0), (-0.07, -0.075), (0.07, -0.075), (0.19, 0.005), (0.07, 0.055), (-0.07, 0.055)]
    p[36:42] = np.array(eye) + (-0.43, -0.2)
    p[48:55] = [(-0.36, 0.62), (-0.23, 0.56), (-0.09, 0.525), (0.0, 0.54), (0.09, 0.525), (0.23, 0.56), (0.36, 0.62)]
    p[55:58] = [(0.23, 0.70), (0.10, 0.74), (0.0, 0.75)]
    p[60:63] = [(-0.31, 0.62), (-0.10, 0.605), (0.0, 0.61)]
    p[65:67] = [(0.10, 0.615), (0.0, 0.62)]
    for i in range(68):  # the other side is the mirror image
        if not p[i].any() and _MIRROR[i] != i:
            p[i] = (-p[_MIRROR[i], 0], p[_MIRROR[i], 1])
    return p


_CANON = _canonical()
_SIDE = np.sign(np.round(_CANON[:, 0], 6))  # -1 subject's right (image left), +1 left, 0 midline

# AU -> "landmark outward down | ..." displacements in inter-ocular distances at intensity 1 (mirrored to the other side).
_AU_SPEC: dict[int, str] = {
    1: "21 0 -.15 | 20 0 -.10 | 19 0 -.04",  # inner brow raiser
    2: "17 0 -.14 | 18 0 -.13 | 19 0 -.07 | 20 0 -.02",  # outer brow raiser
    4: "21 -.07 .10 | 20 -.045 .08 | 19 -.02 .05 | 18 0 .025",  # brow lowerer: down and together
    5: "37 0 -.075 | 38 0 -.075",  # upper lid raiser
    6: "40 0 -.045 | 41 0 -.045",  # cheek raiser: lower lids up
    7: "37 0 .035 | 38 0 .035 | 40 0 -.045 | 41 0 -.045",  # lid tightener
    9: "31 .015 -.06 | 32 0 -.045 | 33 0 -.035",  # nose wrinkler
    10: "49 0 -.06 | 50 0 -.08 | 51 0 -.07 | 61 0 -.07 | 62 0 -.07 | 60 0 -.02",  # upper lip raiser
    12: "48 .08 -.10 | 60 .07 -.09 | 49 .03 -.045 | 59 .03 -.05 | 61 .02 -.02 | 67 .02 -.03",  # lip corner puller
    15: "48 0 .10 | 60 0 .09 | 49 0 .035 | 59 0 .045 | 61 0 .02 | 67 0 .02",  # lip corner depressor
    16: "55 0 .05 | 56 0 .08 | 57 0 .085 | 65 0 .06 | 66 0 .07",  # lower lip depressor
    17: "7 0 -.04 | 8 0 -.06 | 55 0 -.03 | 56 0 -.05 | 57 0 -.05 | 65 0 -.03 | 66 0 -.03",  # chin raiser
    20: "48 .11 .01 | 60 .10 0 | 49 .045 .01 | 59 .045 -.01 | 50 .015 0 | 58 .015 0",  # lip stretcher
    23: "48 -.05 0 | 60 -.045 0 | 49 -.02 .025 | 50 0 .03 | 51 0 .03 | 59 -.02 -.03 | 58 0 -.04 | 57 0 -.04",  # tightener
    24: "48 -.02 0 | 49 0 .03 | 50 0 .035 | 51 0 .035 | 59 0 -.035 | 58 0 -.045 | 57 0 -.045 | 61 0 .01 | 62 0 .01"
    " | 66 0 -.01 | 65 0 -.01",  # lip presser
    25: "61 0 -.015 | 62 0 -.015 | 67 0 .06 | 66 0 .065 | 59 0 .03 | 58 0 .035 | 57 0 .035",  # lips part
    26: "59 0 .10 | 58 0 .14 | 57 0 .14 | 67 0 .13 | 66 0 .14 | 48 0 .03 | 60 0 .03 | 8 0 .14 | 7 0 .12 | 6 0 .08"
    " | 5 0 .04",  # jaw drop
    27: "59 -.02 .12 | 58 0 .16 | 57 0 .16 | 67 0 .16 | 66 0 .16 | 61 0 -.03 | 62 0 -.03 | 49 0 -.02 | 48 -.05 .06"
    " | 60 -.06 .06 | 8 0 .16 | 7 0 .14 | 6 0 .09 | 5 0 .05 | 4 0 .02",  # mouth stretch
}


def _parse(spec: str) -> np.ndarray:
    d = np.zeros((68, 2))
    for item in spec.split("|"):
        i, out, down = item.split()
        d[int(i)] = d[_MIRROR[int(i)]] = (float(out), float(down))
    return d


_AU_D: dict[int, np.ndarray] = {au: _parse(spec) for au, spec in _AU_SPEC.items()}
# (upper points, lower points, min gap in IOD, move both): lips never cross, lids never invert
_GAPS = (
    ([61, 62, 63], [67, 66, 65], 0.0, False),
    ([67, 67, 66, 65, 65, 50, 51, 52], [59, 58, 57, 56, 55, 61, 62, 63], 0.03, False),
    ([37, 38, 43, 44], [41, 40, 47, 46], 0.02, True),
)


def face_frame(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Face frame from the eye corners (no AU moves them): origin between the eyes, right/down unit axes, IOD."""
    r, l_ = (p[36] + p[39]) / 2, (p[42] + p[45]) / 2
    iod = float(np.hypot(*(l_ - r)))
    ex = (l_ - r) / iod
    return (r + l_) / 2, ex, np.array([-ex[1], ex[0]]), iod


def place_face(q: np.ndarray, size: int, frac: float, angle: float, squash: float, skew: float) -> np.ndarray:
    """Canonical units -> pixels: head (top..chin) spans `frac` of the image, centred; yaw-like squash, then roll."""
    iod = np.hypot(*((q[42] + q[45] - q[36] - q[39]) / 2))
    top, chin = (q[0, 1] + q[16, 1]) / 2 - 1.22 * iod, q[8, 1]
    x, y = q[:, 0] * squash * (1.0 + skew * q[:, 0]), q[:, 1] - (top + chin) / 2
    c, s = np.cos(angle), np.sin(angle)
    return np.c_[c * x - s * y, s * x + c * y] * (frac * size / (chin - top)) + size / 2


#: Yaw-like horizontal squash of a generated face: SQUASH_LOW + SQUASH_SPAN * uniform(0, 1).
SQUASH_LOW, SQUASH_SPAN = 0.86, 0.14


def fit_in_frame(pts: np.ndarray, size: int, intensity_max: float, offset: np.ndarray) -> np.ndarray:
    """Shift placed points into the size x size frame with room for the largest brow raise and jaw drop (so placement
    stays label-free): centred, then moved by `offset` (x, y) fractions of the free border."""
    _, _, ey, iod = face_frame(pts)
    room = iod * max(1.0, intensity_max)
    ext = np.r_[pts, pts[17:27] - ey * room * 0.2, pts[[7, 8, 9]] + ey * room * 0.45]
    lo, hi = 2.0 - ext.min(0), size - 3.0 - ext.max(0)
    return pts + np.where(lo < hi, (lo + hi) / 2 + offset * (hi - lo), (lo + hi) / 2)


def mean_face(size: int) -> np.ndarray:
    """Canonical neutral face (68, 2) float32 in pixels of a size x size image: the generator's reference shape."""
    return place_face(_CANON, size, 0.68, 0.0, 1.0, 0.0).astype(np.float32)


def apply_aus(points: np.ndarray, aus: Sequence[int], intensity: float | Mapping[int, float]) -> np.ndarray:
    """Deform (68, 2) landmarks by AUs in the face's own frame and scale (inter-ocular distance); any pose, any size.

    `intensity`: one value for every AU, or AU -> its own intensity (the AU-presence faces, `synthetic.au_presence`)."""
    p = np.asarray(points, np.float64).copy()
    _, ex, ey, iod = face_frame(p)
    d = np.zeros((68, 2))
    for au in aus:
        if au not in _AU_D:
            raise ValueError(f"AU{au} is not modelled; modelled: {sorted(_AU_D)}")
        d += _AU_D[au] if not isinstance(intensity, Mapping) else _AU_D[au] * float(intensity[au])
    d *= (1.0 if isinstance(intensity, Mapping) else float(intensity)) * iod
    p += (d[:, 0] * _SIDE)[:, None] * ex + d[:, 1:2] * ey
    for lo, hi, min_gap, both in _GAPS:
        short = np.maximum((p[lo] - p[hi]) @ ey + min_gap * iod, 0.0)[:, None] * ey
        p[hi] += short * (0.5 if both else 1.0)
        if both:
            p[lo] -= short * 0.5
    return p.astype(np.float32)


def identity_shape(rng: np.random.Generator) -> np.ndarray:
    """Per-sample face shape in canonical units: face height, jaw, eyes, brows, nose, mouth, lips."""
    q, u = _CANON.copy(), rng.random(13)
    low = q[:, 1] > -0.2
    q[low, 1] = -0.2 + (q[low, 1] + 0.2) * (0.9 + 0.22 * u[0])  # face height
    q[:17, 0] *= (1.0 + (u[1] * 0.27 - 0.15) * np.sin(np.linspace(0, np.pi, 17))) * (0.95 + 0.1 * u[2])  # jaw width
    for eye, sgn in ((slice(36, 42), -1), (slice(42, 48), 1)):  # eye size and spacing
        ctr = q[eye].mean(0)
        q[eye] = ctr + (q[eye] - ctr) * (0.85 + 0.3 * u[3]) + (sgn * (u[4] - 0.5) * 0.1, 0)
    base = q[17:27, 1].max()  # brow arch, height and spacing
    q[17:27, 1] = base + (q[17:27, 1] - base) * (0.6 + 0.8 * u[5]) + (u[6] - 0.6) * 0.1
    q[17:27, 0] += _SIDE[17:27] * (u[4] - 0.5) * 0.05
    q[28:36, 1] = -0.22 + (q[28:36, 1] + 0.22) * (0.85 + 0.3 * u[7])  # nose length
    q[31:36, 0] *= 0.85 + 0.35 * u[8]  # nose width
    q[48:68, 0] *= 0.85 + 0.35 * u[9]  # mouth width
    outer = np.r_[49:54, 55:60]
    q[outer, 1] = 0.615 + (q[outer, 1] - 0.615) * (0.75 + 0.55 * u[10])  # lip thickness
    q[48:68, 1] += (u[11] - 0.5) * 0.08  # mouth height
    q[[48, 54, 60, 64], 1] += (u[12] - 0.5) * 0.03  # resting mouth-corner height
    return q + rng.normal(0.0, 0.006, q.shape)


#: iBUG-68 indices of the alignment anchors: eye centres (means of the six lid points), nose tip, mouth corners.
ANCHOR_GROUPS: tuple[tuple[int, ...], ...] = (tuple(range(36, 42)), tuple(range(42, 48)), (30,), (48,), (54,))


def anchor_points(points: np.ndarray) -> np.ndarray:
    """(..., 5, 2) alignment anchors of (..., 68, 2) landmarks: right eye, left eye, nose tip, mouth corners."""
    p = np.asarray(points, np.float64)
    return np.stack([p[..., list(g), :].mean(axis=-2) for g in ANCHOR_GROUPS], axis=-2)


#: The demo's largest AU intensity (params `synthetic.intensity` top): sets the room `fit_in_frame` keeps, so the template.
TEMPLATE_INTENSITY = 1.6


def template_anchors(size: int, head_fraction: float) -> np.ndarray:
    """(5, 2) anchors of the canonical neutral face placed as the generator places a face (upright, mean squash, head
    `head_fraction` of a size x size image, centred by `fit_in_frame`): the alignment template, so an aligned face is
    framed like a demo face."""
    placed = place_face(_CANON, size, head_fraction, 0.0, SQUASH_LOW + SQUASH_SPAN / 2, 0.0)
    return anchor_points(fit_in_frame(placed, size, TEMPLATE_INTENSITY, np.zeros(2)))
