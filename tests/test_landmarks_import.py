"""Import backend (our CSV, OpenFace's CSV, NPZ), `fer landmarks import` and `fer landmarks qa` on a small RAF-DB tree."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from fer_pipeline.cli import main
from fer_pipeline.core import paths
from fer_pipeline.data.datasets import prepare, write_landmark_csv
from fer_pipeline.data.manifest import read_manifest
from fer_pipeline.landmarks.extract import extract_landmarks
from fer_pipeline.landmarks.importer import read_points_file
from fer_pipeline.landmarks.store import Status, read_landmark_store, write_landmark_store
from tests.dataset_trees import make_rafdb


@pytest.fixture
def rafdb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pd.DataFrame:
    """A prepared RAF-DB tree in a repository-like cwd with its params.yaml; returns the manifest."""
    make_rafdb(tmp_path / "raf")
    monkeypatch.chdir(tmp_path)
    params = {"data": {"dataset": "rafdb", "root": "raf", "seed": 0, "val_fraction": 0.15, "test_fraction": 0.2}}
    Path("params.yaml").write_text(yaml.safe_dump(params))
    prepare(params)
    return read_manifest(paths.manifest_path("rafdb"))


def points_for(n: int) -> np.ndarray:
    """Plausible (n,68,2) points inside a 100x100 image."""
    rng = np.random.default_rng(0)
    return (20 + 60 * rng.random((n, 68, 2))).astype(np.float32)


def openface_csv(path: Path, ids: list[str], pts: np.ndarray, success: list[int]) -> None:
    """OpenFace-style CSV: padded column names `x_0..x_67, y_0..y_67`, `confidence`, `success`."""
    cols = {"sample_id": ids, " confidence": [0.9] * len(ids), " success": success}
    cols |= {f" x_{i}": pts[:, i, 0] for i in range(68)} | {f" y_{i}": pts[:, i, 1] for i in range(68)}
    pd.DataFrame(cols).to_csv(path, index=False)


def test_import_formats_and_invalid_rows(rafdb: pd.DataFrame, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ids = rafdb["sample_id"].tolist()
    pts = points_for(len(ids))
    pts[1, 5] = np.nan  # not finite
    pts[2, 7] = (500.0, 50.0)  # outside the 100x100 image
    keep = ids[:-1]  # the last manifest row has no landmarks at all
    write_landmark_csv(tmp_path / "ours.csv", keep, pts[:-1])
    openface_csv(tmp_path / "openface.csv", keep, pts[:-1], [1] * len(keep))
    np.savez(
        tmp_path / "synergy.npz",
        sample_id=np.array(keep),
        landmarks=np.concatenate([pts[:-1], np.ones((len(keep), 68, 1))], axis=2),
    )
    tables = []
    for name in ("ours.csv", "openface.csv", "synergy.npz"):
        with caplog.at_level(logging.WARNING):
            table = extract_landmarks(
                rafdb, tmp_path / "raf", {"backend": "import", "file": str(tmp_path / name)}, dataset="rafdb"
            )
        assert table.sample_id == ids
        assert list(table.status[:3]) == [Status.IMPORTED, Status.INVALID_IMPORT, Status.INVALID_IMPORT]
        assert table.status[-1] == Status.INVALID_IMPORT and (table.status[3:-1] == Status.IMPORTED).all()
        np.testing.assert_allclose(table.landmarks[0], pts[0], atol=1e-3)
        tables.append(table)
        assert table.attrs["backend"] == "import" and table.attrs["source_file"] == name
    assert (
        "non-finite coordinate" in caplog.text
        and "point outside the image" in caplog.text
        and f"no landmarks for sample {ids[-1]}" in caplog.text
    )

    openface_csv(tmp_path / "failed.csv", keep, pts[:-1], [0] + [1] * (len(keep) - 1))
    got_ids, _ = read_points_file(tmp_path / "failed.csv")
    assert got_ids == keep[1:]  # success=0 rows are skipped (their samples become status 5 with a reason)
    (tmp_path / "bad.csv").write_text("sample_id,a,b\nx,1,2\n")
    with pytest.raises(ValueError, match="x_0"):
        read_points_file(tmp_path / "bad.csv")


def test_cli_import_then_stage_then_qa(rafdb: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = rafdb["sample_id"].tolist()
    openface_csv(tmp_path / "openface.csv", ids, points_for(len(ids)), [1] * len(ids))
    assert main(["landmarks", "import", str(tmp_path / "openface.csv")]) == 0
    assert "landmarks.backend: import" in capsys.readouterr().out
    staged = paths.landmark_import("rafdb")
    assert staged.exists() and read_points_file(staged)[0] == ids

    table = extract_landmarks(rafdb, Path("raf"), {"backend": "import", "file": ""}, dataset="rafdb")  # "" = the staged file
    assert (table.status == Status.IMPORTED).all()
    write_landmark_store(paths.landmark_store("rafdb"), table)
    assert main(["landmarks", "qa", "-n", "4"]) == 0
    png = paths.landmark_qa_figure("rafdb")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "'imported': " + str(len(ids)) in capsys.readouterr().out
    assert read_landmark_store(paths.landmark_store("rafdb")).sample_id == ids
    worst = tmp_path / "worst.png"
    assert main(["landmarks", "qa", "-n", "4", "--worst", "--out", str(worst)]) == 0  # the worst-shaped rows instead
    assert worst.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "shape residual" in capsys.readouterr().out

    pd.DataFrame({"sample_id": ["nobody"], **{f"x{i}": [1.0] for i in range(68)}, **{f"y{i}": [1.0] for i in range(68)}}).to_csv(
        tmp_path / "strangers.csv", index=False
    )
    assert main(["landmarks", "import", str(tmp_path / "strangers.csv"), "--out", str(tmp_path / "x.csv")]) == 1
    assert not (tmp_path / "x.csv").exists()
