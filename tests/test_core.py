"""Label order, adapters' label tables, codebook, manifest splits, landmark store and import validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fer_pipeline.core import paths
from fer_pipeline.core.codebook import CODEBOOKS, aus_for
from fer_pipeline.core.io import atomic_path, write_json
from fer_pipeline.core.labels import AFFECTNET_TO_CANONICAL, AU_CLASSES, LABELS, RAFDB_TO_CANONICAL, label_index
from fer_pipeline.data.manifest import carve_val, read_manifest, stratified_split, write_manifest
from fer_pipeline.landmarks.importer import align_to_manifest, validate_points
from fer_pipeline.landmarks.store import LandmarkTable, Status, read_landmark_store, write_landmark_store


def test_label_order_is_the_reference_codes() -> None:
    assert LABELS == ("neutral", "happiness", "surprise", "fear", "anger", "disgust", "sadness")
    assert AU_CLASSES == (1, 2, 3, 4, 5, 6)


def test_rafdb_and_affectnet_maps() -> None:
    # RAF-DB: 1 surprise, 2 fear, 3 disgust, 4 happiness, 5 sadness, 6 anger, 7 neutral
    assert [LABELS[RAFDB_TO_CANONICAL[i]] for i in range(1, 8)] == [
        "surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral"
    ]
    # AffectNet: 0 neutral, 1 happy, 2 sad, 3 surprise, 4 fear, 5 disgust, 6 anger; 7 contempt unmapped
    assert [LABELS[AFFECTNET_TO_CANONICAL[i]] for i in range(7)] == [
        "neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger"
    ]
    assert 7 not in AFFECTNET_TO_CANONICAL
    assert label_index("Angry") == LABELS.index("anger") and label_index("surprised") == LABELS.index("surprise")
    with pytest.raises(ValueError, match="contempt"):
        label_index("contempt")


def test_codebook() -> None:
    assert aus_for(LABELS.index("happiness")) == (6, 12, 25)
    assert aus_for(0) == ()
    assert set(aus_for(LABELS.index("disgust"), "paper")) ^ set(aus_for(LABELS.index("disgust"))) == {5, 10}
    for label in range(1, 7):
        if LABELS[label] != "disgust":
            assert aus_for(label, "paper") == aus_for(label, "reference")
    assert set(CODEBOOKS) == {"reference", "paper"}
    with pytest.raises(ValueError, match="reference"):
        aus_for(1, "nope")


def test_stratified_split_is_seeded_and_balanced() -> None:
    labels = np.repeat(np.arange(7), 100)
    a = stratified_split(labels, val_fraction=0.15, test_fraction=0.2, seed=3)
    b = stratified_split(labels, val_fraction=0.15, test_fraction=0.2, seed=3)
    c = stratified_split(labels, val_fraction=0.15, test_fraction=0.2, seed=4)
    assert (a == b).all() and (a != c).any()
    for k in range(7):
        assert (a[labels == k] == "test").sum() == 20 and (a[labels == k] == "val").sum() == 12
    split = carve_val(labels, np.where(a == "test", "test", "train"), val_fraction=0.1, seed=0)
    assert (split == "test").sum() == 140 and (split == "val").sum() == 7 * 8  # 10 % of each class's 80 train rows


def test_manifest_validation_names_row(tmp_path) -> None:
    df = pd.DataFrame({"sample_id": ["a", "b", "a"], "path": ["x", "y", "z"], "label": [0, 1, 2], "split": ["train"] * 3})
    with pytest.raises(ValueError, match="row 4: duplicate sample_id 'a'"):
        write_manifest(tmp_path / "m.csv", df)
    df = pd.DataFrame({"sample_id": ["a", "b"], "path": ["x", "y"], "label": [0, 9], "split": ["train", "test"]})
    with pytest.raises(ValueError, match="row 3: label '9'"):
        write_manifest(tmp_path / "m.csv", df)
    df = pd.DataFrame({"sample_id": ["a", "b"], "path": ["x", "y"], "label": [0, 6], "split": ["train", "test"]})
    write_manifest(tmp_path / "m.csv", df)
    assert read_manifest(tmp_path / "m.csv")["label"].tolist() == [0, 6]
    with pytest.raises(FileNotFoundError, match="dvc repro prepare"):
        read_manifest(tmp_path / "missing.csv")


def test_resolve_inside_refuses_escape(tmp_path) -> None:
    assert paths.resolve_inside(tmp_path, "a/b.jpg") == (tmp_path / "a/b.jpg").resolve()
    with pytest.raises(ValueError, match="escapes its data root"):
        paths.resolve_inside(tmp_path, "../../etc/passwd")


def test_atomic_write_leaves_nothing_on_failure(tmp_path) -> None:
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    write_json(target, {"b": float("nan"), "a": 1 / 3})
    assert target.read_text() == '{\n  "a": 0.333333,\n  "b": null\n}\n'


def _table(n: int = 5) -> LandmarkTable:
    rng = np.random.default_rng(0)
    pts = rng.uniform(10, 90, size=(n, 68, 2)).astype(np.float32)
    pts[1] = np.nan
    return LandmarkTable([f"s{i}" for i in range(n)], pts, np.full((n, 2), 100), [0, 1, 0, 4, 3], {"backend": "test"})


def test_landmark_store_roundtrip_and_bytes(tmp_path) -> None:
    t = _table()
    write_landmark_store(tmp_path / "a.h5", t)
    write_landmark_store(tmp_path / "b.h5", t)
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()
    r = read_landmark_store(tmp_path / "a.h5")
    assert r.sample_id == t.sample_id and np.array_equal(r.landmarks, t.landmarks, equal_nan=True)
    assert r.attrs["convention"] == "ibug68" and r.attrs["backend"] == "test"
    assert r.usable.tolist() == [True, False, True, True, True]
    assert r.status_counts()["no_face"] == 1 and sum(r.status_counts().values()) == 5


def test_import_validation_gives_statuses() -> None:
    pts = np.random.default_rng(1).uniform(20, 80, size=(4, 68, 2)).astype(np.float32)
    pts[1, 3, 0] = np.nan
    pts[2, 0, 0] = 500.0
    sizes = np.full((5, 2), 100)
    ok, reasons = validate_points(pts, sizes[:4])
    assert ok.tolist() == [True, False, False, True]
    assert reasons[1] == "non-finite coordinate" and reasons[2] == "point outside the image"
    out, status = align_to_manifest(["a", "b", "c", "d", "e"], ["a", "b", "c", "d"], pts, sizes, "x.csv", Status.IMPORTED)
    assert status.tolist() == [4, 5, 5, 4, 5]  # e has no row: invalid import, never dropped
    assert np.isnan(out[1]).all() and np.isfinite(out[0]).all()
