"""Landmark quality in the store: points outside the image (jaw / inner), the shape residual against the canonical face,
`landmarks.min_quality` turning implausible rows into a status with a reason, old stores, and the QA summary."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from fer_pipeline.data.face_geometry import mean_face
from fer_pipeline.data.manifest import write_manifest
from fer_pipeline.data.synthetic import SyntheticConfig, make_sample
from fer_pipeline.landmarks import stage
from fer_pipeline.landmarks.qa import draw_qa, quality_summary, worst_rows
from fer_pipeline.landmarks.quality import (
    IMPLAUSIBLE_SHAPE,
    INNER_OUTSIDE,
    min_quality_of,
    points_outside,
    shape_residual,
)
from fer_pipeline.landmarks.store import USABLE, LandmarkTable, Status, read_landmark_store, write_landmark_store
from fer_pipeline.landmarks.summary import summarize_table
from tests.badinput import manifest_only, write_corpus


def synthetic_points(n: int, **cfg: object) -> np.ndarray:
    """(n, 68, 2) generator landmarks (every class, the given framing)."""
    return np.stack([make_sample(1, i, i % 7, "train", SyntheticConfig(size=112, **cfg)).landmarks for i in range(n)])


def scrambled(points: np.ndarray, seed: int = 0) -> np.ndarray:
    """The same points with the iBUG order shuffled: every point inside the face, no face shape."""
    return points[:, np.random.default_rng(seed).permutation(68)]


def test_synthetic_faces_are_plausible_and_scrambled_shapes_are_not() -> None:
    faces = synthetic_points(70, roll=25.0, face_scale=(0.45, 0.9), intensity=(1.0, 1.6))  # strong AUs, any roll and size
    res = shape_residual(faces)
    assert np.isfinite(res).all() and res.max() < 0.25
    assert shape_residual(mean_face(80)[None])[0] < 1e-4  # the mean shape itself, at any size
    rotated = mean_face(80) @ np.array([[0.0, -1.0], [1.0, 0.0]]) * 3.0 + 500.0
    assert shape_residual(rotated[None])[0] < 1e-4  # a similarity transform changes nothing
    assert (shape_residual(scrambled(faces)) > 0.7).all()
    assert (shape_residual(np.random.default_rng(0).uniform(0, 112, (20, 68, 2))) > 0.6).all()
    nan = faces[:1].copy()
    nan[0, 5] = np.nan
    assert np.isnan(shape_residual(nan)[0])


def test_points_outside_counts_jaw_and_inner_points() -> None:
    pts = np.repeat(mean_face(100)[None], 3, axis=0).astype(np.float64)
    pts[1, [0, 1, 2], 0] = -1.0  # three jaw points left of the image
    pts[1, 8, 1] = 100.5  # the chin below it (H = 100)
    pts[1, 19, 1] = -0.5  # a brow point above it
    pts[1, 60, 0] = 101.0  # a mouth point right of it (W = 101 is inside)
    pts[2] = np.nan  # no points: nothing counted
    jaw, inner = points_outside(pts, np.array([[100, 100], [100, 101], [100, 100]]))
    assert jaw.tolist() == [0, 4, 0] and inner.tolist() == [0, 1, 0]
    table = LandmarkTable(["a", "b", "c"], pts, [[100, 100], [100, 101], [100, 100]], [0, 0, 1])
    assert table.outside_jaw.tolist() == [0, 4, 0] and table.outside_inner.tolist() == [0, 1, 0]


def three_rows() -> LandmarkTable:
    """A plausible face, a scrambled one and a face with a brow point above the image, all status ok."""
    good = synthetic_points(1)[0]
    up = good.copy()
    up[:, 1] -= up[19, 1] + 2.0  # shifted up until point 19 (a brow) is outside
    return LandmarkTable(["good", "scrambled", "brow_out"], np.stack([good, scrambled(good[None])[0], up]),
                         [[112, 112]] * 3, [0, 0, 0], {"backend": "synthetic"})


def test_min_quality_turns_implausible_rows_into_a_status_with_a_reason() -> None:
    off = stage.apply_min_quality(three_rows(), 0.0)
    assert off.status.tolist() == [0, 0, 0] and "min_quality" not in off.attrs  # default: off, nothing changes
    table = stage.apply_min_quality(three_rows(), 0.3)
    assert table.status.tolist() == [0, Status.IMPLAUSIBLE, Status.IMPLAUSIBLE]
    assert table.reason == ["", IMPLAUSIBLE_SHAPE, INNER_OUTSIDE] and table.attrs["min_quality"] == 0.3
    assert table.usable.tolist() == [True, False, False] and Status.IMPLAUSIBLE not in USABLE  # no AU map on them
    assert np.isfinite(table.landmarks).all()  # the points stay in the store for the QA figure
    summary = summarize_table(table)
    assert summary["status"]["implausible"] == 2
    assert summary["reasons"] == {INNER_OUTSIDE: 1, IMPLAUSIBLE_SHAPE: 1}
    assert min_quality_of({}) == min_quality_of({"min_quality": None}) == 0.0 and min_quality_of({"min_quality": "0.3"}) == 0.3
    with pytest.raises(ValueError, match="landmarks.min_quality='high' is not a number"):
        min_quality_of({"min_quality": "high"})


def test_store_keeps_the_quality_and_old_stores_stay_readable(tmp_path: Path) -> None:
    table = three_rows()
    write_landmark_store(tmp_path / "lm.h5", table)
    got = read_landmark_store(tmp_path / "lm.h5")
    np.testing.assert_array_equal(got.residual, table.residual)
    assert got.outside_inner.tolist() == table.outside_inner.tolist()
    assert got.outside_inner[0] == 0 and got.outside_inner[2] > 0
    with h5py.File(tmp_path / "lm.h5", "a") as f:  # a store written before the quality datasets existed
        for name in ("outside_jaw", "outside_inner", "residual"):
            del f[name]
    old = read_landmark_store(tmp_path / "lm.h5")
    np.testing.assert_array_equal(old.residual, table.residual)
    assert old.outside_inner.tolist() == table.outside_inner.tolist()


def test_stage_counts_implausible_rows_in_its_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = write_corpus(tmp_path, n_good=14)  # good faces plus bad images: those stay unreadable, not implausible
    write_manifest(tmp_path / "manifest.csv", manifest_only(corpus))
    params = {"backend": "synthetic", "noise": 0.0, "seed": 0, "n_jobs": 1}
    plain = stage.build_landmark_store(tmp_path / "a.h5", tmp_path / "manifest.csv", tmp_path, params, dataset="synthetic")
    assert plain["status"]["implausible"] == 0
    noisy = {**params, "noise": 0.25, "min_quality": 0.2}  # detector-like noise of 0.25 IOD: shapes far from a face
    summary = stage.build_landmark_store(tmp_path / "b.h5", tmp_path / "manifest.csv", tmp_path, noisy, dataset="synthetic")
    store = read_landmark_store(tmp_path / "b.h5")
    assert summary["status"]["implausible"] == int((store.status == Status.IMPLAUSIBLE).sum()) > 0
    assert summary["status"]["unreadable"] == plain["status"]["unreadable"]
    bad = store.status == Status.IMPLAUSIBLE
    assert ((store.residual[bad] > 0.2) | (store.outside_inner[bad] > 0)).all()  # each row fails one rule or both
    ok = store.status == Status.OK
    assert ((store.residual[ok] <= 0.2) & (store.outside_inner[ok] == 0)).all()  # and every kept row passes both


def test_qa_shows_the_quality(tmp_path: Path) -> None:
    table = stage.apply_min_quality(three_rows(), 0.3)
    assert worst_rows(table, 2).tolist() == [1, 2]
    text = quality_summary(table)
    assert "3 rows: 0 with jaw points outside the image, 1 with inner" in text
    assert "  scrambled: residual 0.7" in text and "status implausible" in text
    face = make_sample(1, 0, 1, "train", SyntheticConfig(size=112)).image
    from PIL import Image

    for name in table.sample_id:
        Image.fromarray(face).save(tmp_path / f"{name}.png")
    out = tmp_path / "qa.png"
    counts = draw_qa(table, [f"{s}.png" for s in table.sample_id], tmp_path, out, n=4, worst=True)
    assert counts["implausible"] == 2 and out.stat().st_size > 0


def test_the_astronauts_dlib_points_are_plausible() -> None:
    from fer_pipeline.landmarks import dlib68
    from tests.dataset_trees import ASTRONAUT_FACE, ASTRONAUT_POINTS, astronaut

    left, top, right, _ = ASTRONAUT_FACE
    pad = (right - left) // 10
    chin_cut = astronaut()[top - pad : ASTRONAUT_POINTS["chin"][1] - 2, left - pad : right + pad]  # ends just above the chin
    for image, detector, jaw_out in ((astronaut(), "hog", 0), (chin_cut, "none", 1)):
        pts, status = dlib68.load(dlib68.Dlib68Config(detector, ())).detect(image)
        assert status == Status.OK
        assert shape_residual(pts[None])[0] < 0.2
        jaw, inner = points_outside(pts[None], np.array([image.shape[:2]]))
        assert (jaw[0], inner[0]) == (jaw_out, 0)  # the tight crop cuts the chin point off, as on real crops
