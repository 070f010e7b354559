"""`fer review`: two committed revisions of metrics, details and per-image scores -> verdicts and the exit code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fer_pipeline.cli import main
from fer_pipeline.core import paths
from fer_pipeline.core.io import write_json, write_text
from fer_pipeline.evaluate.bootstrap import Scores, band, scores_csv, seed_spread, statistics
from fer_pipeline.evaluate.headline import headline
from fer_pipeline.review.compare import RunData, compare_runs, render
from fer_pipeline.review.revisions import read_revision, resolve
from tests.conftest import run


def scores(right: float, cos: float, n: int = 400, seed: int = 3) -> Scores:
    """A run's per-image scores: the first `right` share of images classified right, cosines around `cos`."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 7
    pred = np.where(np.arange(n) < right * n, y, (y + 1) % 7)
    cam = np.where(y == 6, np.nan, np.clip(cos + rng.normal(0, 0.05, n), 0, 1))
    return Scores(tuple(f"img{i:04d}" for i in range(n)), y, pred, cam, cam.copy())


def write_run(repo: Path, run_id: str, s: Scores) -> None:
    """What the evaluate stage writes for one run (the banded metrics only)."""
    point = {k: float(v[0]) for k, v in statistics(s, np.ones((1, len(s)), np.int64)).items()}
    write_json(repo / paths.metrics_path(run_id), headline({**point, "n": len(s)}), ndigits=4)
    write_json(repo / paths.details_path(run_id), {**point, "band": band(s)})
    write_text(repo / paths.scores_path(run_id), scores_csv(s))


def commit(repo: Path, message: str) -> None:
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", message], repo)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """Revision 1: both runs; revision 2 (also the `dvc exp` ref `lam8`): the guided run better in CL, worse in
    CAM-COS; the baseline unchanged. The workspace then changes the baseline by a few images only (noise)."""
    run(["git", "init", "-q"], tmp_path)
    write_run(tmp_path, "cam-noaus", scores(0.70, 0.6))
    write_run(tmp_path, "cam-aus", scores(0.80, 0.8))
    commit(tmp_path, "one")
    write_run(tmp_path, "cam-aus", scores(0.95, 0.7))
    commit(tmp_path, "two")
    head = run(["git", "rev-parse", "HEAD"], tmp_path).stdout.strip()
    run(["git", "update-ref", "refs/exps/ab/cdef0123/lam8", head], tmp_path)
    wobble = scores(0.70, 0.6)
    pred = wobble.pred.copy()
    pred[280:285] = wobble.label[280:285]  # 5 images turn right, 4 turn wrong: what another seed or machine gives
    pred[:4] = (wobble.label[:4] + 1) % 7
    write_run(tmp_path, "cam-noaus", Scores(wobble.sample_id, wobble.label, pred, wobble.cam_cos, wobble.att_cos))
    return tmp_path


def test_verdicts_and_fail_on_worse(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = {(r.run, r.metric): r for r in compare_runs(read_revision(repo, "HEAD~1"), read_revision(repo, "lam8"))}
    assert rows["cam-aus", "cl"].verdict == "better" and rows["cam-aus", "cl"].change == pytest.approx(15.0)
    assert rows["cam-aus", "cam.cos"].verdict == "worse"
    lo, hi = rows["cam-aus", "cam.cos"].band
    assert lo < rows["cam-aus", "cam.cos"].change < hi < 0
    assert rows["cam-noaus", "cl"].verdict == "within noise" and rows["cam-noaus", "cl"].band == (0.0, 0.0)
    assert resolve(repo, "lam8") == resolve(repo, "HEAD")
    with pytest.raises(ValueError, match="neither a git revision nor"):
        resolve(repo, "no-such-exp")

    assert main(["review", "HEAD~1", "HEAD", "--repo", str(repo)]) == 0  # worse is reported, not failed on by default
    out = capsys.readouterr().out
    assert "fer review: HEAD~1 -> HEAD" in out and "2 better, 2 worse, 4 within noise" in out
    assert main(["review", "HEAD~1", "lam8", "--fail-on-worse", "--repo", str(repo)]) == 1
    capsys.readouterr()
    assert main(["review", "--fail-on-worse", "--repo", str(repo)]) == 0  # HEAD -> workspace: a few images flip
    out = capsys.readouterr().out
    assert "cam-noaus  cl        70.00   70.25    +0.25" in out and out.rstrip().endswith("8 within noise")


def test_bands_without_scores_and_seed_spread() -> None:
    """Without per-image scores the two revisions' own bands combine; a seed spread widens the band."""
    before = RunData({"cl": 80.0}, {"cl": [78.0, 82.0]})
    after = RunData({"cl": 83.0, "cam_cos": 0.5}, {"cl": [81.0, 85.0]})
    (row, cos) = compare_runs({"r": before}, {"r": after})
    assert row.band == pytest.approx((3 - 8 ** 0.5, 3 + 8 ** 0.5)) and row.verdict == "better"
    assert cos.verdict == "no band" and cos.before is None
    noisy = RunData({"cl": 83.0}, {"cl": [81.0, 85.0]}, seed_spread({0: {"cl": 79.0}, 1: {"cl": 83.0}, 2: {"cl": 87.0}}))
    (wide,) = compare_runs({"r": before}, {"r": noisy})
    assert wide.band[1] - wide.band[0] > row.band[1] - row.band[0] and wide.verdict == "within noise"
    (gone,) = compare_runs({"r": before}, {})
    assert gone.verdict == "removed"
    assert "no band" not in render([row], "a", "b") and "1 better" in render([row], "a", "b")
    assert json.loads(json.dumps(row.band)) == list(row.band)
