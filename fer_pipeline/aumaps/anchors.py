"""Where each action unit sits on an iBUG-68 face: region centres computed from the landmarks, vectorised over N faces.

0-based iBUG indices: jaw 0-16, brows 17-21 / 22-26 (image left / right), nose 27-35, eyes 36-41 / 42-47,
outer lips 48-59, inner lips 60-67. Several AUs share a region (AU5/AU7 the eyes, AU23/24/26/27 the mouth
centre), so centres are computed per named *anchor* and each AU points at one anchor (`ANCHOR_OF`).
"""

from __future__ import annotations

import numpy as np

from fer_pipeline.core.codebook import ALL_AUS

#: AU -> name of the anchor (region) it is drawn at. Every AU of every codebook has one.
ANCHOR_OF: dict[int, str] = {
    1: "inner_brows",  # mid(20,21), mid(22,23): between 21/22 (the brow ends) and the reference code's 20/23
    2: "outer_brows",  # mid(17,18), mid(25,26): between 17/26 (the brow ends) and the reference code's 18/25
    4: "glabella",  # mid(19,24), as the reference
    5: "eyes",  # eye centres: mean(36-41), mean(42-47)
    6: "cheeks",  # below the outer lower lid (41, 46) by 0.45 inter-ocular, along the face's down axis
    7: "eyes",
    9: "nose_wings",  # beside 31/35 at the height of 29 (in the face frame, so it survives roll)
    10: "upper_lip",  # mean(48,49,50), mean(52,53,54)
    12: "mouth_corners",  # 48, 54
    15: "mouth_corners",
    16: "lower_lip",  # 55, 59
    17: "chin",  # mid(59,8) (the reference) and its mirror mid(55,8): a symmetric chin
    20: "lip_stretch",  # mid(48,6), mid(54,10)
    23: "mouth_centre",  # mean(48-67)
    24: "mouth_centre",
    25: "lips",  # 51, 57
    26: "mouth_centre",
    27: "mouth_centre",
}
assert set(ALL_AUS) <= set(ANCHOR_OF), f"AUs without an anchor: {sorted(set(ALL_AUS) - set(ANCHOR_OF))}"

#: Cheek offset below the lower lid, in inter-ocular distances (the reference: h/6 at 224 px ≈ 0.45 IOD).
CHEEK_DROP = 0.45


def _as_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """(N,68,2) float64 view of the input (a single (68,2) face is promoted to N=1)."""
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.ndim == 2:
        pts = pts[None]
    if pts.ndim != 3 or pts.shape[1:] != (68, 2):
        raise ValueError(f"landmarks must be (N, 68, 2) iBUG-68 x/y points, got shape {pts.shape}")
    return pts


def _mid(pts: np.ndarray, a: int, b: int) -> np.ndarray:
    """(N,2) midpoint of landmarks a and b."""
    return 0.5 * (pts[:, a] + pts[:, b])


def _eye_centres(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N,2) centres of the image-left (36-41) and image-right (42-47) eyes."""
    return pts[:, 36:42].mean(axis=1), pts[:, 42:48].mean(axis=1)


def inter_ocular(landmarks: np.ndarray) -> np.ndarray:
    """(N,) distance between the eye centres in pixels: the face's scale, used for region radii."""
    pts = _as_landmarks(landmarks)
    left, right = _eye_centres(pts)
    return np.linalg.norm(right - left, axis=-1).astype(np.float32)


def anchor_points(landmarks: np.ndarray) -> dict[str, np.ndarray]:
    """Named anchor -> (N,K,2) float32 region centres in pixels (K = 1 or 2); NaN rows stay NaN."""
    pts = _as_landmarks(landmarks)
    left, right = _eye_centres(pts)
    axis = right - left
    iod = np.linalg.norm(axis, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        u = axis / iod  # unit vector along the eye line (face "right" in image terms)
    down = np.stack([-u[:, 1], u[:, 0]], axis=-1)  # u rotated +90° in image coords (y down): towards the mouth

    def beside_29(i: int) -> np.ndarray:
        # landmark 29 moved along the eye line by the lateral offset of nose wing i (face-frame "same height as 29").
        lateral = ((pts[:, i] - pts[:, 29]) * u).sum(axis=-1, keepdims=True)
        return pts[:, 29] + lateral * u

    two = {
        "inner_brows": (_mid(pts, 20, 21), _mid(pts, 22, 23)),
        "outer_brows": (_mid(pts, 17, 18), _mid(pts, 25, 26)),
        "eyes": (left, right),
        "cheeks": (pts[:, 41] + CHEEK_DROP * iod * down, pts[:, 46] + CHEEK_DROP * iod * down),
        "nose_wings": (beside_29(31), beside_29(35)),
        "upper_lip": (pts[:, 48:51].mean(axis=1), pts[:, 52:55].mean(axis=1)),
        "mouth_corners": (pts[:, 48], pts[:, 54]),
        "lower_lip": (pts[:, 59], pts[:, 55]),
        "chin": (_mid(pts, 59, 8), _mid(pts, 55, 8)),
        "lip_stretch": (_mid(pts, 48, 6), _mid(pts, 54, 10)),
        "lips": (pts[:, 51], pts[:, 57]),
    }
    out = {name: np.stack(pair, axis=1).astype(np.float32) for name, pair in two.items()}
    out["glabella"] = _mid(pts, 19, 24)[:, None].astype(np.float32)
    out["mouth_centre"] = pts[:, 48:68].mean(axis=1)[:, None].astype(np.float32)
    return out


def au_regions(landmarks: np.ndarray, aus: tuple[int, ...] | None = None) -> dict[int, np.ndarray]:
    """AU -> (N,K,2) float32 region centres in pixels, for `aus` (default: every AU any codebook uses)."""
    anchors = anchor_points(landmarks)
    wanted = ALL_AUS if aus is None else aus
    unknown = [au for au in wanted if au not in ANCHOR_OF]
    if unknown:
        raise ValueError(f"no anchor for AU(s) {unknown}; known: {sorted(ANCHOR_OF)}")
    return {au: anchors[ANCHOR_OF[au]] for au in wanted}


def anchors_for(aus: tuple[int, ...]) -> tuple[str, ...]:
    """Distinct anchor names of `aus`, in first-use order (AUs sharing a region are drawn once)."""
    return tuple(dict.fromkeys(ANCHOR_OF[au] for au in aus))
