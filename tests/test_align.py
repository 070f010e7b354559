"""The `align` stage: faces framed on the template (synthetic demo faces, photo-style frames, the astronaut), points
mapped through the warp exactly, fallbacks recorded per row, deterministic n_jobs-independent bytes, the QA figure,
and `fer explain` framing a saved photo exactly as the aligned store did."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from fer_pipeline import cli
from fer_pipeline.align import Alignment, Fallback, frame_face, framing_matrix, map_points, model_alignment, model_input
from fer_pipeline.align.stage import build_aligned_store
from fer_pipeline.align.store import AlignedFaces, read_fallback, stage_inputs, store_alignment
from fer_pipeline.align.warp import DEFAULT_TEMPLATE, template
from fer_pipeline.data.face_geometry import TEMPLATE_INTENSITY, anchor_points
from fer_pipeline.data.manifest import write_manifest
from fer_pipeline.data.photo import paste_in_canvas
from fer_pipeline.data.synthetic import SyntheticConfig, make_sample
from fer_pipeline.landmarks.store import LandmarkTable, Status, write_landmark_store
from fer_pipeline.validate import ParamsError, check_align
from tests.conftest import ROOT, run
from tests.dataset_trees import astronaut, save

SIM = Alignment("similarity", DEFAULT_TEMPLATE, 112)


def demo_config() -> SyntheticConfig:
    """The demo's generator settings, read from params.yaml (the framing the template stands for)."""
    s = yaml.safe_load((ROOT / "params.yaml").read_text())["synthetic"]
    return SyntheticConfig(size=int(s["size"]), intensity=tuple(s["intensity"]), face_scale=tuple(s["face_scale"]),
                           roll=float(s["roll"]), shift=float(s["shift"]))


def eye_error(points: np.ndarray, al: Alignment) -> float:
    """Largest distance (px) of the two eye centres from the template's."""
    return float(np.hypot(*(anchor_points(points)[:2] - template(al)[:2]).T).max())


def test_template_is_the_demo_framing() -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert params["align"]["template"] == DEFAULT_TEMPLATE == pytest.approx(np.mean(params["synthetic"]["face_scale"]))
    assert params["synthetic"]["intensity"][1] == TEMPLATE_INTENSITY
    cfg = demo_config()
    errors = [eye_error(make_sample(0, i, i % 7, "train", cfg).landmarks, SIM) for i in range(40)]
    assert np.mean(errors) < 6.0  # unaligned demo faces sit near the template already (shift, roll, scale jitter)


def test_aligned_eyes_land_on_the_template_also_from_photo_frames() -> None:
    cfg = demo_config()
    direct, framed = [], []
    for i in range(30):
        s = make_sample(0, i, i % 7, "train", cfg)
        face, m = frame_face(s.image, s.landmarks, SIM)
        assert face.shape == (112, 112, 3) and face.dtype == np.uint8
        direct.append(eye_error(map_points(s.landmarks, m), SIM))
        photo, pts, box = paste_in_canvas(s.image, s.landmarks, 300, np.random.default_rng(i))
        x, y = int(box[0]), int(box[1])
        assert photo.shape == (300, 300, 3) and np.array_equal(photo[y : y + 112, x : x + 112], s.image)
        face2, m2 = frame_face(photo, pts, SIM)
        framed.append(eye_error(map_points(pts, m2), SIM))
        inner = np.s_[16:96, 16:96]  # away from the tile's edge (the photo has its scene there, the tile a black border)
        assert np.abs(face2[inner].astype(int) - face[inner].astype(int)).mean() < 1.0  # the demo's aligned face
    assert np.mean(direct) < 1.5 and np.max(direct) < 3.0
    assert np.allclose(direct, framed, atol=1e-3)


def test_points_map_through_the_warp_exactly() -> None:
    rng = np.random.default_rng(0)
    pts = rng.uniform(50, 350, (68, 2)).astype(np.float32)
    m = np.array([[0.9, -0.2, 5.0], [0.2, 0.9, -7.0]])
    mapped = map_points(pts, m)
    assert np.allclose(mapped, (m @ np.c_[pts, np.ones(68)].T).T, atol=1e-4)
    assert np.allclose(map_points(pts[None].repeat(3, 0), m[None].repeat(3, 0)), mapped[None])
    # an image feature goes where its point goes: a small blob's centroid, warped (bilinear, and shrunk first)
    for scale in (1.3, 0.25):
        img = np.zeros((800, 800, 3), np.uint8)
        cv2.circle(img, (300, 420), 9, (255, 255, 255), -1, cv2.LINE_AA)
        blob = np.array([[300.0, 420.0]] * 68, np.float32)
        m = np.array([[scale * np.cos(0.3), -scale * np.sin(0.3), 0], [scale * np.sin(0.3), scale * np.cos(0.3), 0]])
        m[:, 2] = [56, 56] - m[:, :2] @ [290.0, 400.0]
        face, _ = frame_face(img, None, SIM)  # (whole-image framing just for the call; the warp itself below)
        from fer_pipeline.align.warp import warp

        face = warp(img, m, 112).astype(np.float64)[:, :, 0]
        ys, xs = np.mgrid[0:112, 0:112]
        centroid = np.array([(face * xs).sum(), (face * ys).sum()]) / face.sum()
        assert np.allclose(centroid, map_points(blob, m)[0], atol=0.35), (scale, centroid, map_points(blob, m)[0])


def test_fallbacks_without_landmarks() -> None:
    s = make_sample(0, 3, 1, "train", demo_config())
    photo, pts, box = paste_in_canvas(s.image, s.landmarks, 260, np.random.default_rng(5))
    m, fb = framing_matrix(pts, photo.shape[:2], SIM, box)
    assert fb == Fallback.LANDMARKS
    nan = np.full((68, 2), np.nan, np.float32)
    m, fb = framing_matrix(nan, photo.shape[:2], SIM, box)
    assert fb == Fallback.BOX
    face, _ = frame_face(photo, None, SIM, box)
    assert np.array_equal(face, s.image)  # the box is the pasted tile: the box framing is the demo's crop itself
    m, fb = framing_matrix(None, photo.shape[:2], SIM, np.array([np.nan] * 4))
    assert fb == Fallback.WHOLE and np.allclose(map_points(np.array([[129.5, 129.5]]), m), [[55.5, 55.5]])
    m, fb = framing_matrix(pts, (40, 80), Alignment("none", DEFAULT_TEMPLATE, 64))
    corners = map_points(np.array([[-0.5, -0.5], [79.5, 39.5]]), m)
    assert fb == Fallback.WHOLE and np.allclose(corners, [[-0.5, -0.5], [63.5, 63.5]])


def photo_set(root: Path, n: int = 6) -> tuple[pd.DataFrame, LandmarkTable]:
    """n photo-style frames (canvas 200) with their true landmarks; row 1 has no landmarks (box fallback), row 2 neither
    landmarks nor box (whole image), row 3's file is corrupt, row 4 was unreadable to the landmarks stage."""
    cfg = SyntheticConfig(size=96)
    rows, pts = [], np.zeros((n, 68, 2), np.float32)
    for i in range(n):
        s = make_sample(1, i, i % 7, "train", cfg)
        photo, pts[i], box = paste_in_canvas(s.image, s.landmarks, 200, np.random.default_rng(i))
        save(root / f"img/p{i}.png", photo)
        rows.append({"sample_id": f"p{i}", "path": f"img/p{i}.png", "label": i % 7, "split": "train",
                     "box_x": int(box[0]), "box_y": int(box[1]), "box_w": 96, "box_h": 96})
    manifest = pd.DataFrame(rows).astype({c: object for c in ("box_x", "box_y", "box_w", "box_h")})
    manifest.loc[2, ["box_x", "box_y", "box_w", "box_h"]] = ""
    (root / "img/p3.png").write_bytes(b"not a png")
    status = np.zeros(n, np.uint8)
    status[1] = status[2] = Status.NO_FACE
    status[4] = Status.UNREADABLE
    pts[[1, 2, 4]] = np.nan
    reason = ["", "no face", "no face", "", "unreadable: x", ""]
    return manifest, LandmarkTable(manifest["sample_id"].tolist(), pts, np.tile([200, 200], (n, 1)), status, reason=reason)


def test_stage_store_fallbacks_statuses_and_bytes(tmp_path: Path) -> None:
    manifest, table = photo_set(tmp_path)
    write_manifest(tmp_path / "manifest.csv", manifest)
    write_landmark_store(tmp_path / "lm.h5", table)
    params = {"mode": "similarity", "template": DEFAULT_TEMPLATE, "size": 64, "n_jobs": 1, "chunk_size": 4}
    out = tmp_path / "a.h5"
    summary = build_aligned_store(out, tmp_path / "manifest.csv", tmp_path / "lm.h5", tmp_path, params, progress=False)
    assert summary["fallback"] == {"landmarks": 2, "box": 1, "whole": 1, "none": 2}
    ids, fallback, status = read_fallback(out)
    assert ids == manifest["sample_id"].tolist()
    F = Fallback
    assert fallback.tolist() == [F.LANDMARKS, F.BOX, F.WHOLE, F.NONE, F.NONE, F.LANDMARKS]
    assert status.tolist() == [0, Status.NO_FACE, Status.NO_FACE, Status.UNREADABLE, Status.UNREADABLE, 0]
    with h5py.File(out, "r") as f:
        reason = [r.decode() for r in f["reason"][()]]
        assert "p3.png" in reason[3] and reason[1] == "no face"
        faces, pts, m = f["faces"][()], f["landmarks"][()], f["matrix"][()]
        assert f["image_size"][0].tolist() == [64, 64]
    assert faces[3].max() == 0 and faces[0].std() > 10 and faces[1].std() > 10
    assert np.allclose(pts[0], map_points(table.landmarks[0], m[0]), atol=1e-4) and np.isnan(pts[1]).all()
    assert eye_error(pts[5], Alignment("similarity", DEFAULT_TEMPLATE, 64)) < 2.0
    # deterministic, and the same bytes whatever the workers and chunks
    out2 = tmp_path / "b.h5"
    build_aligned_store(out2, tmp_path / "manifest.csv", tmp_path / "lm.h5", tmp_path, {**params, "n_jobs": 2, "chunk_size": 2},
                        progress=False)
    assert out.read_bytes() == out2.read_bytes()
    assert not list(tmp_path.glob("*.tmp*"))
    reader = AlignedFaces(out)
    assert np.array_equal(reader.face(5), faces[5]) and reader.sample_ids() == ids
    # mode none: a store of attributes only, and the later stages read the landmark store and the images
    none = tmp_path / "none.h5"
    assert build_aligned_store(none, tmp_path / "manifest.csv", tmp_path / "lm.h5", tmp_path, {"mode": "none"})["rows"] == 0
    assert store_alignment(none).mode == "none" and none.stat().st_size < 16384
    with h5py.File(none, "r") as f:
        assert list(f.keys()) == []


def test_stage_inputs_and_stale_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    al, faces, points = stage_inputs({"mode": "none", "template": 0.83, "size": 112}, "d")
    assert (al.mode, faces, points) == ("none", None, Path("data/landmarks/d.h5"))
    with pytest.raises(FileNotFoundError, match="dvc repro align"):
        stage_inputs({"mode": "similarity", "template": 0.83, "size": 112}, "d")
    manifest, table = photo_set(tmp_path)
    write_manifest(tmp_path / "manifest.csv", manifest)
    write_landmark_store(tmp_path / "lm.h5", table)
    Path("data/aligned").mkdir(parents=True)
    params = {"mode": "similarity", "size": 48}
    build_aligned_store("data/aligned/d.h5", "manifest.csv", "lm.h5", tmp_path, params, progress=False)
    with pytest.raises(ValueError, match="rerun `dvc repro align`"):
        stage_inputs({"mode": "similarity", "template": 0.83, "size": 112}, "d")
    al, faces, points = stage_inputs({"mode": "similarity", "template": 0.83, "size": 48}, "d")
    assert faces == points == Path("data/aligned/d.h5")
    # the QA figure
    Path("params.yaml").write_text(yaml.safe_dump({"data": {"dataset": "d"}}))
    assert cli.main(["align", "qa", "-n", "4"]) == 0
    img = cv2.imread("figures/align/d.png")
    assert img is not None and img.shape[0] > 300 and img.std() > 10


def test_align_params_are_checked() -> None:
    ok = {"align": {"mode": "similarity", "template": 0.83, "size": 112, "n_jobs": 2, "chunk_size": 256,
                    "backend_joblib": "loky"}}
    check_align(ok)
    for key, bad in (("mode", "affine"), ("template", 3.0), ("size", 8), ("backend_joblib", "spark")):
        with pytest.raises(ParamsError, match=f"align.{key}"):
            check_align({"align": {**ok["align"], key: bad}})
    assert model_alignment({}) == Alignment()  # a model saved before alignment existed: images as they are
    assert model_alignment({"face_alignment": SIM.to_dict()}) == SIM


@pytest.fixture(scope="module")
def dlib_points() -> np.ndarray:
    """The landmarks stage's dlib68 points of the astronaut (default detector settings)."""
    from fer_pipeline.landmarks import dlib68

    pts, status = dlib68.load(dlib68.Dlib68Config()).detect(astronaut())
    assert status == Status.OK
    return pts


def test_astronaut_eyes_on_the_template(dlib_points: np.ndarray) -> None:
    from fer_pipeline.landmarks import dlib68

    face, m = frame_face(astronaut(), dlib_points, SIM)
    assert eye_error(map_points(dlib_points, m), SIM) < 3.0
    # the aligned face, searched again from scratch, has its eyes on the template (not only the points we moved)
    again, status = dlib68.load(dlib68.Dlib68Config("none", ())).detect(face)
    assert status == Status.OK and eye_error(again, SIM) < 3.0


def test_fer_explain_reproduces_the_training_frame(dlib_points: np.ndarray, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from fer_pipeline.explain import detect_face
    from fer_pipeline.models import create_model, save_model

    save(tmp_path / "img/astro.png", astronaut())
    manifest = pd.DataFrame([{"sample_id": "a", "path": "img/astro.png", "label": 1, "split": "train"}])
    write_manifest(tmp_path / "manifest.csv", manifest)
    write_landmark_store(tmp_path / "lm.h5", LandmarkTable(["a"], dlib_points[None], [[512, 512]], [0]))
    build_aligned_store(tmp_path / "a.h5", tmp_path / "manifest.csv", tmp_path / "lm.h5", tmp_path,
                        {"mode": "similarity", "size": 112}, progress=False)
    stored = AlignedFaces(tmp_path / "a.h5").face(0)
    face = detect_face(cv2.cvtColor(cv2.imread(str(tmp_path / "img/astro.png")), cv2.COLOR_BGR2RGB))
    small, _ = model_input(astronaut(), face.points, SIM, 64)
    from fer_pipeline.align import resize_square

    assert np.array_equal(frame_face(astronaut(), face.points, SIM)[0], stored)  # the same bytes as the training store
    assert np.array_equal(small, resize_square(stored, 64))  # and the same network input as the training loader
    model = create_model("cam", backbone="resnet10t", pretrained="none", num_classes=7, output_stride=8, input_size=64)
    save_model(tmp_path / "model.pt", model, {"method": "cam", "input_size": 64, "face_alignment": SIM.to_dict()})
    args = ["explain", str(tmp_path / "img/astro.png"), "--model", str(tmp_path / "model.pt"), "--json",
            "--out", str(tmp_path / "e.png"), "--device", "cpu"]
    assert cli.main(args) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["face"]["alignment"] == SIM.to_dict() and res["face"]["fallback"] == "landmarks"
    x0, y0, x1, y1 = res["face"]["framed"]
    assert 100 < x0 < 200 and x1 - x0 < 260  # the framed region is around her face, not the 512 px photo


@pytest.mark.slow
def test_mode_none_keeps_the_demo_inputs_byte_identical(clone: Path) -> None:
    """`dvc repro aumaps` with the default `align.mode: none` rebuilds the committed baseline's images, manifest,
    landmark store and AU maps byte for byte (the md5s the committed dvc.lock records)."""
    committed = yaml.safe_load((clone / "dvc.lock").read_text())["stages"]
    run(["dvc", "repro", "aumaps"], clone)
    lock = yaml.safe_load((clone / "dvc.lock").read_text())["stages"]
    for stage in ("prepare", "landmarks", "aumaps"):
        assert [o["md5"] for o in lock[stage]["outs"]] == [o["md5"] for o in committed[stage]["outs"]], stage
    assert store_alignment(clone / "data/aligned/synthetic.h5").mode == "none"


def test_evaluation_refuses_a_model_trained_on_other_framings(tmp_path: Path) -> None:
    from fer_pipeline.align.store import write_none_store
    from fer_pipeline.evaluate.run import check_framing

    write_none_store(tmp_path / "sim.h5", SIM)  # the attributes are what is compared
    check_framing("m.pt", {}, None)  # an older model, images as they are
    check_framing("m.pt", {"face_alignment": SIM.to_dict()}, tmp_path / "sim.h5")
    with pytest.raises(ValueError, match="m.pt was trained on faces framed by"):
        check_framing("m.pt", {"face_alignment": SIM.to_dict()}, None)
    with pytest.raises(ValueError, match="retrain"):
        check_framing("m.pt", {}, tmp_path / "sim.h5")
    other = Alignment("similarity", 0.9, 112).to_dict()
    with pytest.raises(ValueError, match="retrain"):
        check_framing("m.pt", {"face_alignment": other}, tmp_path / "sim.h5")


def test_report_note_says_how_faces_were_framed() -> None:
    from fer_pipeline.align.warp import alignment_notes

    assert alignment_notes({"mode": "none"}) == [] and alignment_notes(None) == []  # the demo's report keeps its bytes
    (note,) = alignment_notes({"mode": "similarity", "template": 0.9, "size": 96})
    assert "similarity" in note and "0.9" in note and "96 px" in note
