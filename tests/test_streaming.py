"""The landmarks stage streams manifest blocks: same store content as the in-memory path, for any block size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fer_pipeline.data.datasets import write_landmark_csv
from fer_pipeline.data.manifest import iter_manifest, write_manifest
from fer_pipeline.landmarks import stage
from fer_pipeline.landmarks.extract import extract_landmarks
from fer_pipeline.landmarks.importer import PointsSource
from fer_pipeline.landmarks.store import read_landmark_store
from tests.badinput import manifest_only, write_corpus


def points(n: int) -> np.ndarray:
    """n distinct (68,2) point sets."""
    return (np.arange(n * 136, dtype=np.float32).reshape(n, 68, 2) % 97) + np.arange(n, dtype=np.float32)[:, None, None]


@pytest.mark.parametrize("order", ["manifest", "shuffled"])
def test_points_source_serves_blocks_in_any_file_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, order: str) -> None:
    ids, pts = [f"s{i:02d}" for i in range(23)], points(23)
    rows = np.arange(23) if order == "manifest" else np.random.default_rng(0).permutation(23)
    rows = rows[rows != 11]  # s11 has no row in the file
    write_landmark_csv(tmp_path / "lm.csv", [ids[i] for i in rows], pts[rows])
    monkeypatch.setattr(PointsSource, "READ_ROWS", 4)  # several reads a block while streaming
    source = PointsSource(tmp_path / "lm.csv")
    for s in range(0, 23, 6):
        block = ids[s : s + 6]
        got_ids, got = source.take(block)
        want = [sid for sid in block if sid != "s11"]
        assert got_ids == want
        np.testing.assert_array_equal(got, pts[[ids.index(sid) for sid in want]])


def test_stage_streams_the_in_memory_table_whatever_the_block_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = write_corpus(tmp_path, n_good=17)  # good faces plus every kind of bad image, in one manifest
    manifest = manifest_only(corpus)
    write_manifest(tmp_path / "manifest.csv", manifest)
    params = {"backend": "synthetic", "noise": 0.05, "seed": 3, "n_jobs": 1}
    whole = extract_landmarks(manifest, tmp_path, params)
    for rows in (5, 1000):
        monkeypatch.setattr(stage, "block_rows", lambda p, rows=rows: rows)
        assert [len(b) for _, b in iter_manifest(tmp_path / "manifest.csv", rows)][0] == min(rows, len(manifest))
        out = tmp_path / f"lm{rows}.h5"
        summary = stage.build_landmark_store(out, tmp_path / "manifest.csv", tmp_path, params, dataset="synthetic")
        got = read_landmark_store(out)
        assert got.sample_id == whole.sample_id and got.reason == whole.reason
        assert got.status.tolist() == whole.status.tolist() and np.array_equal(got.image_size, whole.image_size)
        np.testing.assert_array_equal(got.landmarks, whole.landmarks)  # noise seeded per row, not per block
        assert summary["rows"] == len(manifest) and summary["status"]["ok"] == int((whole.status == 0).sum())
