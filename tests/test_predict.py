"""`fer predict` on small real inputs: every image gets a row (bad files and faceless images as statuses), the
probabilities equal the evaluation path's on the same images, and a real photo (skimage's astronaut) is found and framed."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from fer_pipeline import cli
from fer_pipeline.align.warp import DEFAULT_TEMPLATE, RECORD_KEY, Alignment, template
from fer_pipeline.core.labels import LABELS, NUM_CLASSES
from fer_pipeline.data.face_geometry import anchor_points
from fer_pipeline.explain import framed_region
from fer_pipeline.inputs.dataset import FERDataset, collate
from fer_pipeline.landmarks.dlib68 import Dlib68Config
from fer_pipeline.models import create_model, load_model
from fer_pipeline.models.io import save_model
from fer_pipeline.predict import CSV_COLUMNS, FrameConfig, predict
from fer_pipeline.predict.frame import BAD_IMAGE, FALLBACK, NO_FACE, OK
from fer_pipeline.predict.inputs import read_inputs
from tests.conftest import favour_class
from tests.dataset_trees import astronaut
from tests.faces import write_faces

torch.set_num_threads(2)
SIZE = 64
PROB_COLUMNS = [f"prob_{name}" for name in LABELS]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained (seeded) resnet10t CAM model at 64 px: predict's plumbing does not need a trained one."""
    torch.manual_seed(0)
    model = create_model("cam", backbone="resnet10t", output_stride=8, input_size=SIZE)
    path = tmp_path_factory.mktemp("model") / "model.pt"
    save_model(path, model, {"input_size": SIZE})
    return path


@pytest.fixture(scope="module")
def faces(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """14 synthetic 64 px faces (two per class), their manifest and AU map store."""
    root = tmp_path_factory.mktemp("faces")
    labels = np.arange(14) % NUM_CLASSES
    manifest, _ = write_faces(root, labels, np.array(["test"] * 14), size=SIZE, prefix="f", seed=3)
    manifest.to_csv(root / "manifest.csv", index=False)
    return root, manifest


def test_probabilities_equal_the_evaluation_path(model_path: Path, faces: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    """Pre-aligned crops (`--detector none`): the same input tensor as evaluation, so the same probabilities."""
    root, manifest = faces
    out = tmp_path / "p.csv"
    assert (
        cli.main(
            [
                "predict",
                str(root / "manifest.csv"),
                "--model",
                str(model_path),
                "--out",
                str(out),
                "--detector",
                "none",
                "--split",
                "test",
                "--device",
                "cpu",
                "--batch-size",
                "5",
            ]
        )
        == 0
    )
    got = pd.read_csv(out)
    assert list(got.columns) == list(CSV_COLUMNS) and got["sample_id"].tolist() == manifest["sample_id"].tolist()
    assert (got["status"] == OK).all() and (got["label"] == [LABELS[k] for k in manifest["label"]]).all()
    model, _ = load_model(model_path, "cpu")
    ds = FERDataset(manifest, root, root / "aumaps.h5", SIZE, mean=model.mean, std=model.std)
    x = collate([ds[i] for i in range(len(ds))])[0]
    with torch.no_grad():
        want = model(x, layers=()).logits.softmax(dim=1).numpy()
    np.testing.assert_allclose(got[PROB_COLUMNS].to_numpy(), want, atol=2e-6)
    assert (got["pred"] == [LABELS[k] for k in want.argmax(axis=1)]).all()
    assert (got["correct"] == (want.argmax(axis=1) == manifest["label"].to_numpy())).all()
    scored = got["pred"] != "neutral"
    assert scored.any(), got["pred"]  # else the cosine check below would hold for no row
    assert got.loc[scored, "cam_cos"].between(0, 1).all() and got.loc[~scored, "cam_cos"].isna().all()


def test_folder_keeps_every_image_with_a_status(model_path: Path, faces: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    """Class folders give labels; a corrupt file, an empty file and a blank image are rows with reasons, not crashes."""
    root, manifest = faces
    src = tmp_path / "photos"
    for row in manifest.head(4).itertuples():
        (src / LABELS[row.label]).mkdir(parents=True, exist_ok=True)
        (src / LABELS[row.label] / Path(row.path).name).write_bytes((root / row.path).read_bytes())
    (src / "corrupt.png").write_bytes(b"\x89PNG not really")
    (src / "empty.jpg").write_bytes(b"")
    cv2.imwrite(str(src / "blank.png"), np.full((80, 80, 3), 127, np.uint8))
    out, maps, figs = tmp_path / "p.csv", tmp_path / "m.h5", tmp_path / "figs"
    summary = predict(
        src,
        model_path,
        out,
        maps_path=maps,
        figures_dir=figs,
        device="cpu",
        n_jobs=2,
        block_rows=3,
        frame_cfg=FrameConfig(detector=Dlib68Config(detector="none")),
        progress=False,
    )
    got = pd.read_csv(out, keep_default_na=False).set_index("sample_id")
    assert len(got) == summary.n == 7
    assert got.loc["corrupt", "status"] == BAD_IMAGE and "unreadable" in got.loc["corrupt", "reason"]
    assert got.loc["empty", "status"] == BAD_IMAGE and "empty" in got.loc["empty", "reason"]
    assert got.loc["blank", "status"] == OK  # detector none: the whole image is the face, as for pre-aligned crops
    assert got.loc["blank", "label"] == "" and got.loc["blank", "correct"] == ""
    faces_ok = got[got["status"] == OK]
    assert summary.counts == {OK: 5, BAD_IMAGE: 2} and summary.labelled == 4
    assert np.allclose(faces_ok[PROB_COLUMNS].astype(float).sum(axis=1), 1.0, atol=1e-4)
    assert (got.loc[[i for i in got.index if i.startswith(tuple(LABELS))], "label"] != "").all()
    with h5py.File(maps) as f:
        ids = [s.decode() for s in f["sample_id"][:]]
        assert ids == got.index.tolist() and f["cam"].shape == (7, 56, 56)
        bad = ids.index("corrupt")
        assert f["pred"][bad] == -1 and np.isnan(f["cam"][bad]).all() and np.isnan(f["points"][bad]).all()
        good = ids.index("blank")
        assert f["pred"][good] >= 0 and np.isfinite(f["cam"][good]).all() and f["matrix"][good][0, 0] == pytest.approx(SIZE / 80)
    assert sorted(p.stem for p in figs.glob("*.png")) == sorted(faces_ok.index)

    # With a detector, a blank image has no face: a status and the steps tried, still a row.
    out2 = tmp_path / "p2.csv"
    assert cli.main(["predict", str(src), "--model", str(model_path), "--out", str(out2), "--device", "cpu"]) == 0
    blank = pd.read_csv(out2, keep_default_na=False).set_index("sample_id").loc["blank"]
    assert blank["status"] == NO_FACE and "hog, haar" in blank["reason"] and blank["pred"] == ""

    # `--fallback haar whole`: when no detector finds a face the whole image is used, and the row says so.
    out3 = tmp_path / "p3.csv"
    # Also `--n-jobs 2 --figures DIR` from the command line: the same rows, a figure per predicted face.
    out3, figs3 = tmp_path / "p3.csv", tmp_path / "figs3"
    argv = ["predict", str(src), "--model", str(model_path), "--out", str(out3), "--device", "cpu", "--fallback", "haar", "whole"]
    assert cli.main([*argv, "--n-jobs", "2", "--figures", str(figs3)]) == 0
    got3 = pd.read_csv(out3, keep_default_na=False).set_index("sample_id")
    blank = got3.loc["blank"]
    assert blank["status"] == FALLBACK and "fallback" in blank["reason"] and blank["pred"] in LABELS
    assert sorted(p.stem for p in figs3.glob("*.png")) == sorted(got3.index[got3["pred"] != ""])


def test_astronaut_is_framed_as_the_model_was_trained(
    model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 512 x 512 photo: HOG finds the face; a model trained on whole pre-aligned images (`align.mode: none`) gets the
    whole photo resized, one trained with `similarity` gets her face warped with the eyes on the template."""
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "astronaut.png"), cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR))
    aligned = Alignment("similarity", DEFAULT_TEMPLATE, 112)
    torch.manual_seed(0)
    model = create_model("cam", backbone="resnet10t", output_stride=8, input_size=SIZE)
    save_model(tmp_path / "aligned.pt", model, {"input_size": SIZE, RECORD_KEY: aligned.to_dict()})
    # Copies that predict happiness whatever they see (the bias does not enter the maps): her maps are always scored.
    happy = LABELS.index("happiness")
    whole = favour_class(model_path, tmp_path / "whole-happy.pt", happy)
    warped = favour_class(tmp_path / "aligned.pt", tmp_path / "aligned-happy.pt", happy)
    for name, path in (("none", whole), ("similarity", warped)):
        out, maps = tmp_path / f"{name}.csv", tmp_path / f"{name}.h5"
        assert (
            cli.main(["predict", str(src), "--model", str(path), "--out", str(out), "--maps", str(maps), "--device", "cpu"]) == 0
        )
        assert "1 images (ok 1" in capsys.readouterr().out
        row = pd.read_csv(out).iloc[0]
        assert row["status"] == OK and (row["photo_h"], row["photo_w"]) == (512, 512)
        with h5py.File(maps) as f:
            matrix, points = f["matrix"][0], f["points"][0]
        x0, y0, x1, y1 = framed_region(matrix, SIZE)
        if name == "none":
            assert (x0, y0, x1, y1) == (0, 0, 512, 512)  # the whole photo, as training read whole images
        else:
            assert 100 < x0 < 220 and 0 <= y0 < 150 and 250 < x1 < 380 and 150 < y1 < 330  # Eileen Collins' face
            want = template(Alignment("similarity", DEFAULT_TEMPLATE, SIZE))[:2]  # the eyes' anchors at the input size
            eyes = anchor_points(points)[:2]
            assert np.abs(eyes - want).max() < 2.0
        assert row["pred"] == "happiness" and math.isfinite(row["cam_cos"]) and 0.0 <= row["cam_cos"] <= 1.0
    # a neutral prediction has no AU map to score against: empty scores, still a row
    out = tmp_path / "neutral.csv"
    neutral = favour_class(model_path, tmp_path / "whole-neutral.pt", LABELS.index("neutral"))
    assert cli.main(["predict", str(src), "--model", str(neutral), "--out", str(out), "--device", "cpu"]) == 0
    row = pd.read_csv(out).iloc[0]
    assert row["status"] == OK and row["pred"] == "neutral" and math.isnan(row["cam_cos"])

    # `--detect-max-side` reaches the detector: shrunk to 48 px her face is too small for HOG (no fallback tried).
    out = tmp_path / "small.csv"
    argv = ["predict", str(src), "--model", str(model_path), "--out", str(out), "--device", "cpu", "--detect-max-side", "48"]
    assert cli.main([*argv, "--fallback"]) == 0
    row = pd.read_csv(out).iloc[0]
    assert row["status"] == NO_FACE and "tried hog;" in row["reason"]


def test_manifest_root_split_and_labels(tmp_path: Path) -> None:
    """`--root` anchors relative paths, `--split` keeps one split, labels are names or indices, boxes are read."""
    (tmp_path / "imgs").mkdir()
    csv = tmp_path / "lists" / "m.csv"
    csv.parent.mkdir()
    pd.DataFrame(
        {
            "path": ["a.png", "b.png", str(tmp_path / "abs.png")],
            "label": ["happy", 5, "contempt"],
            "split": ["test", "train", "test"],
            "box_x": [1, 2, None],
            "box_y": [1, 2, 3],
            "box_w": [10, 10, 10],
            "box_h": [10, 10, 10],
        }
    ).to_csv(csv, index=False)
    got = read_inputs(csv, root=tmp_path / "imgs", split="test")
    assert got["path"].tolist() == [str(tmp_path / "imgs" / "a.png"), str(tmp_path / "abs.png")]
    assert got["label"].tolist() == [LABELS.index("happiness"), -1]  # a class outside the label space: unknown
    assert got["box_x"].tolist()[0] == 1 and np.isnan(got["box_x"].tolist()[1])
    assert read_inputs(csv)["path"].tolist()[0] == str(csv.parent / "a.png")  # default root: the CSV's folder
    assert read_inputs(csv)["label"].tolist()[1] == 5
    with pytest.raises(ValueError, match="no rows with split 'val'"):
        read_inputs(csv, split="val")


def test_bad_inputs_name_the_problem(model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["predict", str(tmp_path / "nowhere"), "--model", str(model_path)]) == 2
    assert "nowhere" in capsys.readouterr().err
    bad = tmp_path / "m.csv"
    bad.write_text("file,label\na.png,happy\n")
    assert cli.main(["predict", str(bad), "--model", str(model_path), "--out", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err
    assert "m.csv" in err and "no 'path' column" in err
    (tmp_path / "empty").mkdir()
    assert cli.main(["predict", str(tmp_path / "empty"), "--model", str(model_path)]) == 2
    assert "no images found" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()
