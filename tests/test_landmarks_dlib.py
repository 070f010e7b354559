"""dlib68 on a real photo (the scikit-image astronaut), detectors and fallbacks, and n_jobs-independent bytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fer_pipeline.landmarks import dlib68
from fer_pipeline.landmarks.extract import Dlib68Backend
from fer_pipeline.landmarks.store import Status, write_landmark_store
from tests.dataset_trees import ASTRONAUT_FACE, ASTRONAUT_POINTS, astronaut, astronaut_crop, face, save


def assert_anatomical(pts: np.ndarray) -> None:
    """Eyes above the nose tip above the mouth; jaw ends left and right of every inner point, chin below the mouth."""
    assert pts.shape == (68, 2) and np.isfinite(pts).all()
    eyes_y, nose_y, mouth_y = pts[36:48, 1].mean(), pts[30, 1], pts[48:68, 1].mean()
    assert eyes_y < nose_y < mouth_y
    inner = pts[17:68]
    assert pts[0, 0] < inner[:, 0].min() and pts[16, 0] > inner[:, 0].max()
    assert pts[8, 1] > pts[48:68, 1].max()
    assert pts[36:42, 0].mean() < pts[42:48, 0].mean()  # image-left eye first (iBUG order)


def iou(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """Intersection over union of two (left, top, right, bottom) boxes."""
    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return w * h / (area - w * h)


def features(pts: np.ndarray) -> dict[str, np.ndarray]:
    """The 68 points read as the hand-measured features of `ASTRONAUT_POINTS` (eye centres, nose tip, mouth, chin)."""
    return {"eye_left": pts[36:42].mean(0), "eye_right": pts[42:48].mean(0), "nose": pts[30], "mouth": pts[48:68].mean(0),
            "chin": pts[8]}


#: The astronaut's inter-ocular distance (hand-measured pupils), the unit of the point tolerances below.
IOD = float(np.hypot(*np.subtract(ASTRONAUT_POINTS["eye_right"], ASTRONAUT_POINTS["eye_left"])))


@pytest.mark.parametrize("detector", ["hog", "haar"])
def test_astronaut_one_face_68_points(detector: str) -> None:
    """Box and points against the face measured by hand (tests/dataset_trees.py), not against a detector's own output."""
    model = dlib68.load(dlib68.Dlib68Config(detector, ()))
    box, status = model.locate(astronaut())
    assert status == Status.OK
    # the one face kept is the astronaut's, not a false positive: it overlaps the hand-drawn box and holds eyes and mouth
    assert iou(box, ASTRONAUT_FACE) > 0.5, box
    for key in ("eye_left", "eye_right", "mouth"):
        x, y = ASTRONAUT_POINTS[key]
        assert box[0] < x < box[2] and box[1] < y < box[3], (key, box)
    pts, status = model.detect(astronaut())
    assert status == Status.OK
    assert_anatomical(pts)
    # each feature within 0.15 inter-ocular distances (~7 px) of where it was measured by hand
    for key, got in features(pts).items():
        assert np.hypot(*(got - ASTRONAUT_POINTS[key])) < 0.15 * IOD, (key, got)
    # the jaw brackets the face: its ends sit at the face's hand-measured edges (within a tenth of its width)
    left, _, right, _ = ASTRONAUT_FACE
    assert abs(pts[0, 0] - left) < 0.1 * (right - left) and abs(pts[16, 0] - right) < 0.1 * (right - left)


def test_hog_keeps_the_best_scoring_face() -> None:
    hog = dlib68.HogDetector(1, -0.5)
    found = hog.find(astronaut())
    assert len(found) > 1  # below-zero threshold: false positives come along, and must lose
    assert dlib68.best_box(found) == max(found)[1]
    assert dlib68.best_box([(1.0, (0, 0, 9, 9)), (1.0, (0, 0, 19, 19)), (0.5, (0, 0, 99, 99))]) == (0, 0, 19, 19)
    assert dlib68.best_box([]) is None


def test_detector_none_on_the_face_crop() -> None:
    crop = astronaut_crop()
    pts, status = dlib68.load(dlib68.Dlib68Config("none", ())).detect(crop)
    assert status == Status.OK
    assert_anatomical(pts)
    h, w = crop.shape[:2]
    assert (pts[17:68] >= 0).all() and (pts[17:68, 0] < w).all() and (pts[17:68, 1] < h).all()


def test_fallback_chain_and_no_face() -> None:
    blank = np.full((120, 120, 3), 128, np.uint8)
    pts, status = dlib68.load(dlib68.Dlib68Config("hog", ("haar", "whole"))).detect(blank)
    assert status == Status.FALLBACK and pts is not None
    pts, status = dlib68.load(dlib68.Dlib68Config("hog", ("box",))).detect(blank, (10, 10, 100, 100))
    assert status == Status.FALLBACK and pts is not None
    pts, status = dlib68.load(dlib68.Dlib68Config("hog", ("haar",))).detect(blank)
    assert status == Status.NO_FACE and pts is None
    with pytest.raises(ValueError, match="fallback"):
        dlib68.Dlib68Config("hog", ("nope",))
    with pytest.raises(ValueError, match="detector"):
        dlib68.Dlib68Config("mtcnn")


def test_n_jobs_1_and_2_write_identical_bytes(tmp_path: Path) -> None:
    rows = []
    for i in range(9):
        rel = f"img/{i}.png"
        save(tmp_path / rel, face(i, i % 7)[0])
        rows.append((f"s{i}", rel))
    save(tmp_path / "img/astro.jpg", astronaut())
    (tmp_path / "img/broken.png").write_bytes(b"not a png")
    rows += [("astro", "img/astro.jpg"), ("broken", "img/broken.png"), ("gone", "img/gone.png")]
    manifest = pd.DataFrame(rows, columns=["sample_id", "path"])
    cfg = dlib68.Dlib68Config("hog", ("whole",))
    stores = []
    for n_jobs in (1, 2):
        table = Dlib68Backend(cfg, n_jobs=n_jobs, chunk_size=4).extract(manifest, tmp_path)
        write_landmark_store(tmp_path / f"n{n_jobs}.h5", table)
        stores.append((tmp_path / f"n{n_jobs}.h5").read_bytes())
    assert stores[0] == stores[1]
    assert table.sample_id == manifest["sample_id"].tolist()
    assert list(table.status[-3:]) == [Status.OK, Status.UNREADABLE, Status.UNREADABLE]
    assert (table.image_size[-2:] == 0).all() and tuple(table.image_size[-3]) == (512, 512)
    assert table.attrs["model_sha256"] == dlib68.file_sha256(dlib68.model_path()) and len(table.attrs["model_sha256"]) == 64


def test_large_photo_detected_on_a_shrunk_copy() -> None:
    """A 2000 x 1500 photo (the astronaut at 2x, offset): detection on a copy shrunk to 800 px finds her face where it
    is at full size, and the 68 points come from the full-size photo (a box scaled back, not points scaled up)."""
    import cv2

    big = np.full((1500, 2000, 3), 110, np.uint8)
    big[200:1224, 500:1524] = cv2.resize(astronaut(), (1024, 1024), interpolation=cv2.INTER_CUBIC)
    small, scale = dlib68.shrink(big, 800)
    assert small.shape[:2] == (600, 800) and scale == pytest.approx(0.4)
    assert dlib68.shrink(astronaut(), 800)[1] == 1.0 and dlib68.shrink(big, 0)[0] is big
    cfg = dlib68.Dlib68Config("hog", ())
    assert cfg.detect_max_side == dlib68.DETECT_MAX_SIDE == 800
    box, status = dlib68.load(cfg).locate(big)
    hand = tuple(2 * v + off for v, off in zip(ASTRONAUT_FACE, (500, 200, 500, 200), strict=True))  # the hand-drawn box at 2x
    assert status == Status.OK and iou(box, hand) > 0.5, box
    pts, _ = dlib68.load(cfg).detect(big)
    assert_anatomical(pts)
    for key, got in features(pts).items():  # full-size points: on her features at 2x, within 0.15 IOD
        assert np.hypot(*(got - (2 * np.array(ASTRONAUT_POINTS[key]) + (500, 200)))) < 0.15 * 2 * IOD, (key, got)
    assert dlib68.attrs(cfg)["detect_max_side"] == 800 and "detect_max_side" not in dlib68.attrs(
        dlib68.Dlib68Config("hog", (), detect_max_side=0)
    )
