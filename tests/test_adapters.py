"""RAF-DB, AffectNet and folder trees in their real layouts: prepare + landmarks on each, every row in the store."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fer_pipeline.core import paths
from fer_pipeline.core.labels import AFFECTNET_TO_CANONICAL, LABELS, RAFDB_TO_CANONICAL, label_index
from fer_pipeline.data.datasets import image_root, prepare
from fer_pipeline.data.layout import LayoutError
from fer_pipeline.data.manifest import read_manifest
from fer_pipeline.landmarks.extract import extract_landmarks
from fer_pipeline.landmarks.store import Status, read_landmark_store, write_landmark_store
from tests.dataset_trees import ASTRONAUT_FACE, make_affectnet, make_folder, make_rafdb

DLIB_NONE = {"backend": "dlib68", "detector": "none", "fallback": [], "n_jobs": 1, "chunk_size": 8}


def params_for(dataset: str, root: Path, **data: object) -> dict:
    return {"data": {"dataset": dataset, "root": str(root), "seed": 0, "val_fraction": 0.15, "test_fraction": 0.2, **data}}


def run_stages(params: dict, landmarks: dict) -> tuple[pd.DataFrame, object]:
    """prepare, then landmarks, as the stage scripts do (cwd = a repository root); the manifest and the store read back."""
    dataset = params["data"]["dataset"]
    prepare(params)
    manifest = read_manifest(paths.manifest_path(dataset))
    table = extract_landmarks(manifest, image_root(params["data"]), landmarks, dataset=dataset)
    write_landmark_store(paths.landmark_store(dataset), table)
    store = read_landmark_store(paths.landmark_store(dataset))
    assert store.sample_id == manifest["sample_id"].tolist()  # every manifest row, in order, with a status
    assert set(np.unique(store.status)) <= {int(s) for s in Status}
    return manifest, store


def test_rafdb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kept = make_rafdb(tmp_path / "raf")
    monkeypatch.chdir(tmp_path)
    manifest, store = run_stages(params_for("rafdb", tmp_path / "raf"), DLIB_NONE)
    assert dict(zip(manifest["sample_id"], manifest["label"], strict=True)) == {k: RAFDB_TO_CANONICAL[c] for k, c in kept.items()}
    assert manifest.loc[manifest["sample_id"] == "train_00001", "label"].item() == LABELS.index("happiness")
    assert set(manifest.loc[manifest["sample_id"].str.startswith("test_"), "split"]) == {"test"}
    assert set(manifest.loc[manifest["sample_id"].str.startswith("train_"), "split"]) <= {"train", "val"}
    excluded = pd.read_csv(paths.prepared_dir("rafdb") / "excluded.csv")
    assert sorted(excluded["reason"].str.split(":").str[0]) == ["malformed line", "malformed line", "missing image"]
    assert (store.status == Status.OK).all() and np.isfinite(store.landmarks).all()  # detector none: every crop gets points
    assert (store.image_size == 100).all() and store.attrs["detector"] == "none"


def test_affectnet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kept = make_affectnet(tmp_path / "an")
    monkeypatch.chdir(tmp_path)
    params = params_for("affectnet", tmp_path / "an", classes=7)
    manifest, store = run_stages(params, {"backend": "dataset"})
    assert dict(zip(manifest["sample_id"], manifest["label"], strict=True)) == {
        k: AFFECTNET_TO_CANONICAL[c] for k, c in kept.items()
    }
    assert set(manifest.loc[manifest["sample_id"].isin(["102_img005", "100_img006", "102_img011"]), "split"]) == {"test"}
    reasons = pd.read_csv(paths.prepared_dir("affectnet") / "excluded.csv")["reason"].tolist()
    assert sorted(reasons) == sorted(
        ["expression 7 (contempt; AffectNet-7 drops it)", "expression 8 (none)", "expression 10 (no face)", "missing image"]
    )
    astro = manifest["sample_id"].tolist().index("200_astro")
    assert store.status[astro] == Status.INVALID_IMPORT and np.isnan(store.landmarks[astro]).all()  # its "1;2;3" is no landmarks
    others = np.arange(len(manifest)) != astro
    assert (store.status[others] == Status.IMPORTED).all() and store.attrs["backend"] == "dataset"

    # dlib68 without detection uses the AffectNet box: the astronaut's points fall in its face box.
    _, store = run_stages(params, DLIB_NONE)
    assert (store.status == Status.OK).all()
    left, top, right, bottom = ASTRONAUT_FACE
    nose = store.landmarks[astro, 30]
    assert left < nose[0] < right and top < nose[1] < bottom
    with pytest.raises(ValueError, match="only AffectNet-7"):
        prepare(params_for("affectnet", tmp_path / "an", classes=8))


def test_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    kept = make_folder(tmp_path / "fer")
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING):
        manifest, store = run_stages(
            params_for("folder", tmp_path / "fer"), {"backend": "dlib68", "detector": "hog", "fallback": ["whole"], "n_jobs": 1}
        )
    assert dict(zip(manifest["path"], manifest["label"], strict=True)) == {p: label_index(c) for p, c in kept.items()}
    assert "unknown class folder 'contempt'" in caplog.text
    assert set(manifest["split"]) <= {"train", "val", "test"} and set(
        manifest.loc[manifest["path"].str.startswith("test/"), "split"]
    ) == {"test"}
    assert set(store.status) <= {Status.OK, Status.FALLBACK}
    assert store.status[manifest["path"].tolist().index("train/happy/astronaut.jpg")] == Status.OK


def test_folder_without_splits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.dataset_trees import face, save

    for k, name in enumerate(["HA", "happy", "sad", "angry"] * 5):
        save(tmp_path / "jaffe" / name / f"s{k}.tiff", face(k, 0, 64)[0])
    monkeypatch.chdir(tmp_path)
    df = prepare(params_for("folder", tmp_path / "jaffe", test_fraction=0.4))
    assert len(df) == 15 and set(df["split"]) == {"train", "test"}  # HA is not a known class name
    assert (df.groupby("label")["split"].apply(lambda s: (s == "test").sum()) == 2).all()  # stratified


@pytest.mark.parametrize("dataset", ["rafdb", "affectnet", "folder"])
def test_wrong_root_shows_the_expected_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dataset: str) -> None:
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LayoutError, match="Expected layout") as err:
        prepare(params_for(dataset, tmp_path / "empty"))
    assert {"rafdb": "list_patition_label.txt", "affectnet": "training.csv", "folder": "train/<class>"}[dataset] in str(err.value)
