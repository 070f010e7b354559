"""dlib68 on a real photo (the scikit-image astronaut), detectors and fallbacks, and n_jobs-independent bytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fer_pipeline.landmarks import dlib68
from fer_pipeline.landmarks.extract import Dlib68Backend
from fer_pipeline.landmarks.store import Status, write_landmark_store
from tests.dataset_trees import ASTRONAUT_FACE, astronaut, astronaut_crop, face, save


def assert_anatomical(pts: np.ndarray) -> None:
    """Eyes above the nose tip above the mouth; jaw ends left and right of every inner point, chin below the mouth."""
    assert pts.shape == (68, 2) and np.isfinite(pts).all()
    eyes_y, nose_y, mouth_y = pts[36:48, 1].mean(), pts[30, 1], pts[48:68, 1].mean()
    assert eyes_y < nose_y < mouth_y
    inner = pts[17:68]
    assert pts[0, 0] < inner[:, 0].min() and pts[16, 0] > inner[:, 0].max()
    assert pts[8, 1] > pts[48:68, 1].max()
    assert pts[36:42, 0].mean() < pts[42:48, 0].mean()  # image-left eye first (iBUG order)


@pytest.mark.parametrize("detector", ["hog", "haar"])
def test_astronaut_one_face_68_points(detector: str) -> None:
    model = dlib68.load(dlib68.Dlib68Config(detector, ()))
    box, status = model.locate(astronaut())
    assert status == Status.OK
    left, top, right, bottom = ASTRONAUT_FACE
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    assert left < cx < right and top < cy < bottom  # the one face kept is the astronaut's, not a false positive
    pts, status = model.detect(astronaut())
    assert status == Status.OK
    assert_anatomical(pts)
    # the jaw brackets the detected face: its ends sit at the box's left and right edges
    assert abs(pts[0, 0] - left) < 0.2 * (right - left) and abs(pts[16, 0] - right) < 0.2 * (right - left)
    assert pts[:, 1].min() > top - 0.3 * (bottom - top) and pts[8, 1] > bottom - 0.2 * (bottom - top)


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
    left, top, right, bottom = (2 * v + off for v, off in zip(ASTRONAUT_FACE, (500, 200, 500, 200), strict=True))
    assert status == Status.OK and max(abs(a - b) for a, b in zip(box, (left, top, right, bottom), strict=True)) < 25
    pts, _ = dlib68.load(cfg).detect(big)
    assert_anatomical(pts)
    assert dlib68.attrs(cfg)["detect_max_side"] == 800 and "detect_max_side" not in dlib68.attrs(
        dlib68.Dlib68Config("hog", (), detect_max_side=0)
    )
