"""`fer review`: two committed revisions of metrics, details and per-image scores -> verdicts and the exit code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fer_pipeline.cli import main
from fer_pipeline.core import paths
from fer_pipeline.core.io import write_json, write_text
from fer_pipeline.evaluate.bootstrap import T975, Scores, band, scores_csv, seed_spread, statistics
from fer_pipeline.evaluate.headline import headline
from fer_pipeline.review.compare import UNKNOWN, RunData, compare_runs, render
from fer_pipeline.review.noise import NOISE_FILE, SeedNoise, from_json, measure, training_params, write_noise
from fer_pipeline.review.revisions import read_runs, resolve
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
    write_text(tmp_path / "params.yaml", "train:\n  lambda: 4.0\n  seed: 0\n")
    sd = {"cl": 0.5, "macro_f1": 0.005, "cam_cos": 0.002, "att_cos": 0.002}  # small: the bootstrap band decides here
    write_noise(SeedNoise("0" * 40, (0, 1, 2), {"cam-noaus": sd, "cam-aus": sd}, {"train.lambda": 4.0}), tmp_path / NOISE_FILE)
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
    rows = {(r.run, r.metric): r for r in compare_runs(read_runs(repo, "HEAD~1"), read_runs(repo, "lam8"),
                                                                  from_json((repo / NOISE_FILE).read_text()))}
    assert rows["cam-aus", "cl"].verdict == "better" and rows["cam-aus", "cl"].change == pytest.approx(15.0)
    assert rows["cam-aus", "cam.cos"].verdict == "worse"
    lo, hi = rows["cam-aus", "cam.cos"].band
    assert lo < rows["cam-aus", "cam.cos"].change < hi < 0
    assert rows["cam-noaus", "cl"].verdict == "within noise" and rows["cam-noaus", "cl"].change == 0.0
    assert resolve(repo, "lam8") == resolve(repo, "HEAD")
    with pytest.raises(ValueError, match="neither a git revision nor"):
        resolve(repo, "no-such-exp")

    assert main(["review", "HEAD~1", "HEAD", "--repo", str(repo)]) == 0  # worse is reported, not failed on by default
    out = capsys.readouterr().out
    assert "fer review: HEAD~1 -> HEAD" in out and "2 better, 2 worse, 4 within noise" in out
    assert f"training noise of one-seed runs: HEAD~1:{NOISE_FILE}: sd over 3 training seeds [0, 1, 2] at 0000000" in out
    assert main(["review", "HEAD~1", "lam8", "--fail-on-worse", "--repo", str(repo)]) == 1
    capsys.readouterr()
    assert main(["review", "--fail-on-worse", "--repo", str(repo)]) == 0  # HEAD -> workspace: a few images flip
    out = capsys.readouterr().out
    assert "cam-noaus  cl        70.00   70.25    +0.25" in out and out.rstrip().endswith("8 within noise")


def test_bands_without_scores_and_seed_spread() -> None:
    """Without per-image scores the two revisions' own bands combine; a seed spread widens the band."""
    before = RunData({"cl": 80.0}, {"cl": [78.0, 82.0]})
    after = RunData({"cl": 83.0, "cam_cos": 0.5}, {"cl": [81.0, 85.0]})
    still = SeedNoise("c" * 40, (0, 1, 2), {"r": {"cl": 0.0}})  # a training measured not to move CL at all
    (row, cos) = compare_runs({"r": before}, {"r": after}, still)
    assert row.band == pytest.approx((3 - 8 ** 0.5, 3 + 8 ** 0.5)) and row.verdict == "better"
    assert cos.verdict == "no band" and cos.before is None
    noisy = RunData({"cl": 83.0}, {"cl": [81.0, 85.0]}, seed_spread({0: {"cl": 79.0}, 1: {"cl": 83.0}, 2: {"cl": 87.0}}))
    (wide,) = compare_runs({"r": before}, {"r": noisy}, still)
    assert wide.band[1] - wide.band[0] > row.band[1] - row.band[0] and wide.verdict == "within noise"
    (gone,) = compare_runs({"r": before}, {})
    assert gone.verdict == "removed"
    assert "no band" not in render([row], "a", "b") and "1 better" in render([row], "a", "b")
    assert json.loads(json.dumps(row.band)) == list(row.band)


def test_training_noise_widens_the_band_and_t_on_seeds() -> None:
    """One seed each: the committed noise widens the band by t(0.975, k - 1) * sd per run; without it, no verdict.
    Several seeds: Student's t on each run's seed mean (t(0.975, 2) = 4.303 for 3 seeds), not the normal's 1.96."""
    before = RunData({"cl": 80.0}, {"cl": [79.0, 81.0]})
    after = RunData({"cl": 83.0}, {"cl": [82.0, 84.0]})
    (unknown,) = compare_runs({"r": before}, {"r": after})
    assert unknown.verdict == UNKNOWN and unknown.band == pytest.approx((3 - 2 ** 0.5, 3 + 2 ** 0.5))
    assert "1 " + UNKNOWN in render([unknown], "a", "b")
    noise = SeedNoise("a" * 40, (0, 1, 2, 3, 4), {"r": {"cl": 1.0}})
    (row,) = compare_runs({"r": before}, {"r": after}, noise)
    half = (2.0 + 2 * T975[3] ** 2) ** 0.5  # bootstrap halves 1 and 1, seed halves 2.776 * 1 for each run
    assert row.band == pytest.approx((3 - half, 3 + half)) and row.verdict == "within noise"
    (same,) = compare_runs({"r": before}, {"r": RunData({"cl": 80.0}, {"cl": [79.0, 81.0]})})
    assert same.verdict == "within noise"  # nothing moved: no training noise needed to say so
    spread = seed_spread({0: {"cl": 79.0}, 1: {"cl": 83.0}, 2: {"cl": 87.0}})  # sd 4
    (seeded,) = compare_runs({"r": RunData({"cl": 80.0}, {"cl": [79.0, 81.0]}, spread)},
                             {"r": RunData({"cl": 83.0}, {"cl": [82.0, 84.0]}, spread)})
    t_half = T975[1] * 4 / 3 ** 0.5
    assert seeded.band == pytest.approx((3 - (2 + 2 * t_half ** 2) ** 0.5, 3 + (2 + 2 * t_half ** 2) ** 0.5))
    assert seeded.verdict == "within noise"


def test_seed_noise_measured_from_a_seeded_revision(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`fer noise REV` writes each run's sd over its seeds with the revision and the params; the review header
    names it and flags the params the reviewed revision changed."""
    run(["git", "init", "-q"], tmp_path)
    write_text(tmp_path / "params.yaml", "train:\n  lambda: 4.0\n  seed: 0\nreport:\n  extra_seeds: [1, 2]\n")
    for name, cl in (("cam-noaus", (60.0, 70.0, 80.0)), ("cam-aus", (94.0, 95.0, 96.0))):
        s = scores(cl[0] / 100, 0.6)
        point = {k: float(v[0]) for k, v in statistics(s, np.ones((1, len(s)), np.int64)).items()}
        spread = seed_spread({i: {**point, "cl": c} for i, c in enumerate(cl)})
        write_json(tmp_path / paths.metrics_path(name), headline({**point, "cl": spread["cl"]["mean"], "n": len(s)}), ndigits=4)
        write_json(tmp_path / paths.details_path(name), {**point, "band": band(s), "seeds": spread})
    commit(tmp_path, "seeds")
    assert main(["noise", "HEAD", "--repo", str(tmp_path)]) == 0
    noise = from_json((tmp_path / NOISE_FILE).read_text())
    assert noise.seeds == (0, 1, 2) and noise.rev == resolve(tmp_path, "HEAD")
    assert noise.sd["cam-noaus"]["cl"] == pytest.approx(10.0) and noise.sd["cam-aus"]["cl"] == pytest.approx(1.0)
    assert noise.params == {"train.lambda": 4.0}  # train.seed and report.* are not what the noise depends on
    assert noise.differs({"train": {"lambda": 8, "seed": 1}}) == ["train.lambda (4.0 → 8)"]
    other = {"train": {"lambda": 4.0}, "methods": {"apvit": {"layers": [4]}, "cam": {"lr": 0.1}}}
    assert noise.differs(other) == ["methods.cam.lr (– → 0.1)"]  # apvit's options do not shape the cam runs
    with pytest.raises(ValueError, match="fewer than 3 seeds"):
        measure({"r": seed_spread({0: {"cl": 1.0}, 1: {"cl": 2.0}})}, "b" * 40, {})
    assert training_params({"train": {"seed": 3, "lr": 0.1}, "evaluate": {"batch_size": 8}}) == {"train.lr": 0.1}
    commit(tmp_path, "noise")
    write_text(tmp_path / "params.yaml", "train:\n  lambda: 8.0\n  seed: 0\nreport:\n  extra_seeds: [1, 2]\n")
    capsys.readouterr()
    assert main(["review", "--repo", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "sd over 3 training seeds [0, 1, 2]" in out
    assert "measured at other params than workspace: train.lambda (4.0 → 8.0)" in out
