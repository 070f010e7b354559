"""`align.mode: auto`: the framing a dataset needs, read from its landmarks. Tight crops get `rigid`, photos with a small
face `similarity`; failed rows are ignored; the stage writes the pick and its measurement into the store, which holds
the picked mode's bytes; the later stages, the report note and the QA see the picked mode; a bad mode still fails."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml

from fer_pipeline import cli
from fer_pipeline.align.framing import TIGHT_HEAD, Framing, describe, head_heights, measure_framing, pick_mode, resolve_mode
from fer_pipeline.align.stage import build_aligned_store
from fer_pipeline.align.store import resolve_alignment, stage_inputs, store_alignment, store_framing
from fer_pipeline.align.warp import Alignment, alignment_notes
from fer_pipeline.data.manifest import write_manifest
from fer_pipeline.data.photo import paste_in_canvas
from fer_pipeline.data.synthetic import SyntheticConfig, make_sample
from fer_pipeline.landmarks.store import LandmarkTable, Status, write_landmark_store
from fer_pipeline.validate import ParamsError, check_align
from tests.dataset_trees import save

#: The faces of the tight-crop benchmark (benchmarks/align_border.py): head 1.12-1.19x a 48 px frame; and the demo's.
TIGHT = SyntheticConfig(size=112, intensity=(0.8, 1.6), face_scale=(0.9, 0.95), roll=4.0, shift=0.3)
DEMO = SyntheticConfig(size=112, intensity=(0.8, 1.6), face_scale=(0.78, 0.88), roll=4.0, shift=0.3)


def tight(i: int) -> tuple[np.ndarray, np.ndarray]:
    """A 48 px crop of the central 80 % of a synthetic face (cuts brows and jaw), and its points."""
    s = make_sample(0, i, i % 7, "train", TIGHT)
    img = cv2.resize(s.image[11:101, 11:101], (48, 48), interpolation=cv2.INTER_AREA)
    return img, (s.landmarks - 11) * (48 / 90)


def photo(i: int) -> tuple[np.ndarray, np.ndarray]:
    """A 224 px photo-style frame with a demo face pasted off-centre, and its points."""
    s = make_sample(0, i, i % 7, "train", DEMO)
    img, pts, _ = paste_in_canvas(s.image, s.landmarks, 224, np.random.default_rng([0, i, 1]))
    return img, pts


def write_set(root: Path, get, n: int, failed: tuple[int, ...] = ()) -> None:  # noqa: ANN001 -- tight or photo
    """Images, manifest and landmark store of n faces; rows `failed` have no face (NaN points)."""
    rows, pts, sizes = [], [], []
    for i in range(n):
        img, p = get(i)
        save(root / f"img/f{i}.png", img)
        rows.append({"sample_id": f"f{i}", "path": f"img/f{i}.png", "label": i % 7, "split": "train"})
        pts.append(p)
        sizes.append(img.shape[:2])
    points, status = np.array(pts, np.float32), np.zeros(n, np.uint8)
    points[list(failed)], status[list(failed)] = np.nan, Status.NO_FACE
    write_manifest(root / "manifest.csv", pd.DataFrame(rows))
    write_landmark_store(root / "lm.h5", LandmarkTable([r["sample_id"] for r in rows], points, sizes, status))


def faces(get, n: int) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    imgs, pts = zip(*(get(i) for i in range(n)), strict=True)
    return np.array(pts), np.array([im.shape[:2] for im in imgs])


def test_tight_crops_get_rigid_small_faces_similarity() -> None:
    pts, sizes = faces(tight, 24)
    h = head_heights(pts, sizes)
    assert np.isfinite(h).all() and h.min() > 1.0  # the head is taller than the 48 px frame
    ok = np.zeros(24, np.uint8)
    assert measure_framing(pts, sizes, ok).pick == "rigid"
    ppts, psizes = faces(photo, 24)
    small = measure_framing(ppts, psizes, ok)
    assert small.pick == "similarity" and 0.3 < small.head_height < TIGHT_HEAD and small.rows == 24
    # the demo's aligned crops (head 0.78-0.88 of the frame) are crops: rigid
    demo = np.array([make_sample(0, i, i % 7, "train", DEMO).landmarks for i in range(24)])
    assert measure_framing(demo, np.tile([112, 112], (24, 1)), ok).pick == "rigid"
    # rotation-free: a rolled face measures as the upright one
    c, s = np.cos(0.4), np.sin(0.4)
    rolled = (pts[0] - 24) @ np.array([[c, s], [-s, c]]) + 24
    assert head_heights(rolled[None], sizes[:1])[0] == pytest.approx(h[0], rel=1e-6)


def test_failed_rows_are_ignored_and_the_decision_is_deterministic() -> None:
    pts, sizes = faces(tight, 12)
    ppts, psizes = faces(photo, 12)
    # 12 tight crops, 12 small faces whose landmarks failed or were implausible: only the tight rows count
    status = np.r_[np.zeros(12), np.full(6, Status.NO_FACE), np.full(6, Status.IMPLAUSIBLE)].astype(np.uint8)
    mixed, msizes = np.r_[pts, ppts], np.r_[sizes, psizes]
    got = measure_framing(mixed, msizes, status)
    assert got == measure_framing(pts, sizes, np.zeros(12, np.uint8)) and got.rows == 12 and got.pick == "rigid"
    order = np.random.default_rng(0).permutation(24)
    assert measure_framing(mixed[order], msizes[order], status[order]) == got
    nan = mixed.copy()
    nan[:3] = np.nan  # usable status but no points: not measured
    assert measure_framing(nan, msizes, status).rows == 9
    assert measure_framing(mixed, msizes, np.full(24, Status.NO_FACE, np.uint8)) is None
    with pytest.raises(ValueError, match=r"lm\.h5 has no row with usable landmarks.*set align\.mode"):
        resolve_mode("auto", None, "data/landmarks/lm.h5")
    assert pick_mode(TIGHT_HEAD) == "rigid" and pick_mode(TIGHT_HEAD - 0.01) == "similarity"
    assert Framing.from_attrs(got.to_attrs()) == Framing(round(got.head_height, 4), 12)


@pytest.mark.parametrize(("get", "picked"), [(tight, "rigid"), (photo, "similarity")])
def test_auto_stage_writes_the_picked_modes_bytes_and_later_stages_see_it(
    get, picked: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]  # noqa: ANN001
) -> None:
    monkeypatch.chdir(tmp_path)
    write_set(tmp_path, get, 10, failed=(3,))
    size = 48 if picked == "rigid" else 112
    params = {"template": 0.83, "size": size, "border": "replicate", "n_jobs": 1, "chunk_size": 4}
    Path("data/aligned").mkdir(parents=True)
    auto = build_aligned_store("data/aligned/d.h5", "manifest.csv", "lm.h5", tmp_path, {**params, "mode": "auto"},
                               progress=False)
    fixed = build_aligned_store("fixed.h5", "manifest.csv", "lm.h5", tmp_path, {**params, "mode": picked}, progress=False)
    assert auto["mode"] == fixed["mode"] == picked and auto["requested"] == "auto" and auto["framing"].rows == 9
    assert Path("data/aligned/d.h5").read_bytes() == Path("fixed.h5").read_bytes()  # so every later byte is the same
    framing = store_framing("data/aligned/d.h5")
    assert framing.pick == picked and store_alignment("data/aligned/d.h5").mode == picked
    # aumaps / train / evaluate / report read the picked mode; train records it in model.pt
    al, faces_path, points = stage_inputs({**params, "mode": "auto"}, "d")
    assert al == Alignment(picked, 0.83, size, "replicate") and faces_path == points == Path("data/aligned/d.h5")
    assert al.to_dict()["mode"] == picked
    assert stage_inputs({**params, "mode": picked}, "d")[0] == al
    # the report's note and the QA say what auto chose and why
    line = describe("auto", al.mode, framing)
    assert line.startswith(f"align.mode auto → {picked}: median head height {framing.head_height:.2f} of the frame")
    (note,) = alignment_notes(al, line)
    assert note.startswith(line + ". Faces framed by the `align` stage")
    Path("params.yaml").write_text(yaml.safe_dump({"data": {"dataset": "d"}, "align": {**params, "mode": "auto"}}))
    assert cli.main(["align", "qa", "-n", "4"]) == 0
    assert f"align.mode auto → {picked}" in capsys.readouterr().out
    # a fixed mode's store also says what auto would pick
    other = "similarity" if picked == "rigid" else "rigid"
    build_aligned_store("data/aligned/d.h5", "manifest.csv", "lm.h5", tmp_path, {**params, "mode": other}, progress=False)
    assert describe(other, other, store_framing("data/aligned/d.h5")).endswith(f"; auto would pick {picked}")
    # ... and is not taken for auto's: params say auto, the store holds the other mode
    with pytest.raises(ValueError, match=f"written with align.mode {other} \\(auto picks {picked}\\).*rerun `dvc repro align`"):
        resolve_alignment({**params, "mode": "auto"}, "data/aligned/d.h5")


def test_an_extra_test_dataset_is_framed_as_the_training_set(tmp_path: Path) -> None:
    """align-x under auto: the main dataset's framing picks (a photo-trained model is evaluated on similarity frames)."""
    write_set(tmp_path / "photo", photo, 6)
    write_set(tmp_path / "tight", tight, 6)
    t = tmp_path / "tight"
    own = build_aligned_store(tmp_path / "own.h5", t / "manifest.csv", t / "lm.h5", t, {"mode": "auto", "size": 48},
                              progress=False)
    like = build_aligned_store(tmp_path / "x.h5", t / "manifest.csv", t / "lm.h5", t, {"mode": "auto", "size": 48},
                               progress=False, framed_like=tmp_path / "photo/lm.h5")
    assert (own["mode"], like["mode"]) == ("rigid", "similarity")
    assert store_framing(tmp_path / "x.h5").pick == store_alignment(tmp_path / "x.h5").mode == "similarity"


def test_auto_without_usable_landmarks_and_bad_modes_fail_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_set(tmp_path, tight, 3, failed=(0, 1, 2))
    with pytest.raises(ValueError, match=r"lm\.h5 has no row with usable landmarks"):
        build_aligned_store("a.h5", "manifest.csv", "lm.h5", tmp_path, {"mode": "auto", "size": 48}, progress=False)
    assert not Path("a.h5").exists()
    with pytest.raises(ValueError, match=r"align.mode='affine' unknown; valid: none, similarity, rigid, auto"):
        build_aligned_store("a.h5", "manifest.csv", "lm.h5", tmp_path, {"mode": "affine", "size": 48}, progress=False)
    with pytest.raises(ValueError, match="resolved by the `align` stage"):
        Alignment.from_dict({"mode": "auto"})
    ok = {"mode": "auto", "template": 0.83, "size": 112, "n_jobs": 1, "chunk_size": 256, "backend_joblib": "loky"}
    check_align({"align": ok})
    with pytest.raises(ParamsError, match="align.mode='Auto' unknown; valid: none, similarity, rigid, auto"):
        check_align({"align": {**ok, "mode": "Auto"}})
    with pytest.raises(FileNotFoundError, match="dvc repro align"):
        stage_inputs(ok, "d")  # auto is resolved from the store the align stage writes
