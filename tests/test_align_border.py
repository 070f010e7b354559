"""Framing tight crops: `align.border` adds no black edge, `align.mode: rigid` levels the eyes without zooming out."""

from __future__ import annotations

import numpy as np
import pytest

from fer_pipeline.align.warp import Alignment, frame_face, framing_matrix, map_points, warp
from fer_pipeline.data.synthetic import SyntheticConfig, make_sample


@pytest.fixture(scope="module")
def tight() -> tuple[np.ndarray, np.ndarray]:
    """A face whose head fills 0.95 of a 64 px frame, rolled: a 0.6 template must zoom it out."""
    s = make_sample(0, 3, 4, "train", SyntheticConfig(size=64, face_scale=(0.95, 0.95), roll=8.0, shift=0.0))
    return s.image, s.landmarks


def _black(face: np.ndarray) -> float:
    return float((face.max(axis=2) == 0).mean())


def test_border_fills_without_black(tight: tuple[np.ndarray, np.ndarray]) -> None:
    img, pts = tight
    black, m = frame_face(img, pts, Alignment("similarity", 0.6, 64, "constant"))
    assert _black(black) > 0.1  # the template shrinks the face: a black frame around it
    inside = warp(np.full_like(img, 255), m, 64, "constant")[..., 0] == 255  # frame pixels wholly from the photo
    for border in ("replicate", "reflect"):
        face, _ = frame_face(img, pts, Alignment("similarity", 0.6, 64, border))
        assert _black(face) < 0.01
        assert inside.mean() > 0.3 and np.array_equal(face[inside], black[inside])  # the photo's pixels unchanged


def test_rigid_levels_the_eyes_at_the_crop_scale(tight: tuple[np.ndarray, np.ndarray]) -> None:
    img, pts = tight
    al = Alignment("rigid", 0.83, 64, "replicate")
    m, _ = framing_matrix(pts, img.shape[:2], al)
    assert abs(np.sqrt(abs(np.linalg.det(m[:, :2]))) - 1.0) < 1e-9  # no zoom: the crop's own scale
    p = map_points(pts, m)
    eyes = p[36:42].mean(0), p[42:48].mean(0)
    assert abs(eyes[1][1] - eyes[0][1]) < 0.5 < abs(pts[42:48].mean(0)[1] - pts[36:42].mean(0)[1])  # levelled
    assert _black(frame_face(img, pts, al)[0]) == 0.0


def test_records_without_border_read_back_equal() -> None:
    """Frames written before `border` existed were black-bordered; `none` warps nothing, so its record keeps its bytes."""
    assert Alignment.from_dict({"mode": "similarity", "template": 0.83, "size": 112}).border == "constant"
    assert Alignment("none", 0.83, 112, "replicate").to_dict() == {"mode": "none", "template": 0.83, "size": 112}
    assert Alignment("rigid", 0.83, 48, "reflect").to_dict()["border"] == "reflect"
    with pytest.raises(ValueError, match="valid: replicate, reflect, constant"):
        Alignment("similarity", 0.83, 112, "wrap")
