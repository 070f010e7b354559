"""End-to-end: `dvc repro` in a temporary clone with tiny params (the shared reproduced clone, tests/conftest.py), then targeted
reruns and determinism."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import run, set_params

pytestmark = pytest.mark.slow

UPSTREAM = ("prepare", "landmarks", "aumaps")


def ran(log: str) -> set[str]:
    """Stage names the repro log says it ran."""
    return {line.split("'")[1] for line in log.splitlines() if line.startswith("Running stage '")}


def changed(repo: Path) -> set[str]:
    """Stages `dvc status --json` reports as changed."""
    return set(json.loads(run(["dvc", "status", "--json"], repo).stdout or "{}"))


def test_repro_then_targeted_reruns(reproduced: Path, repro_clone: Path) -> None:
    clone = repro_clone  # the shared `dvc repro` with tiny params (tests/conftest.py), committed
    first = (reproduced.parent / "repro.log").read_text()
    assert ran(first) >= {*UPSTREAM, "train-baseline@cam-noaus", "train@cam-aus", "evaluate@cam-aus", "report"}
    for run_id in ("cam-noaus", "cam-aus"):
        m = json.loads((clone / "metrics" / f"{run_id}.json").read_text())  # headline scalars only
        assert 0.0 <= m["cl"] <= 100.0 and -1.0 <= m["cam"]["cos"] <= 1.0 and -1.0 <= m["att"]["cos"] <= 1.0
        assert "per_class" not in m and "per_class" in json.loads((clone / "plots" / run_id / "details.json").read_text())
    report = (clone / "reports" / "tables.md").read_text()
    assert "CAM-COS" in report and "88.20" in report  # the paper's CAM accuracy sits beside ours
    assert changed(clone) == set() and not run(["git", "status", "--porcelain"], clone).stdout  # up to date, committed

    # A layer or alignment-loss change: only the guided train stage is out of date, never the λ = 0 baseline.
    for change in ({"train.layers": [4]}, {"train.align_loss": "l1"}):
        set_params(clone, change)
        assert changed(clone) == {"train@cam-aus"}, change
        run(["git", "checkout", "-q", "params.yaml"], clone)

    # A λ change reruns the guided train (and what follows) and nothing upstream, nor the baseline.
    set_params(clone, {"train.lambda": 2.0})
    assert changed(clone) == {"train@cam-aus"}
    log = run(["dvc", "repro"], clone).stdout
    assert ran(log) and not ran(log) & set(UPSTREAM), ran(log)
    assert ran(log) <= {"train@cam-aus", "evaluate@cam-aus", "report"}, ran(log)
    assert "report" in ran(log) or "Stage 'report' didn't change" in log

    # dvc metrics diff between two commits shows CL, CAM-COS and ATT-COS of both runs.
    run(["git", "add", "-A"], clone)
    run(["git", "commit", "-q", "-m", "lambda 2"], clone)
    diff = run(["dvc", "metrics", "diff", "HEAD~1", "--json"], clone).stdout
    keys = {(path, key) for path, ms in json.loads(diff or "{}").items() for key in ms}
    assert any(p.endswith("cam-aus.json") for p, _ in keys)
    shown = run(["dvc", "metrics", "show"], clone).stdout
    # 120 columns for the test metrics; the validation files' longer paths (metrics/val/) widen the Path column by 4
    assert all(k in shown for k in ("cl", "cam.cos", "att.cos")) and max(map(len, shown.splitlines())) <= 124, shown
    assert any(p.endswith("val/cam-aus.json") for p, _ in keys)  # the validation metrics (ablations choose on them)

    # fer review reads both commits: the untouched baseline is within noise, the guided run's changes are banded with
    # the committed seed noise, whose header flags the params the tiny runs changed.
    review = run(["python", "-m", "fer_pipeline.cli", "review", "HEAD~1", "HEAD"], clone).stdout
    lines = {tuple(line.split()[:2]): line for line in review.splitlines() if line.startswith("cam-")}
    assert lines["cam-noaus", "cl"].endswith("within noise") and " +0.00 " in lines["cam-noaus", "cl"], review
    assert "training noise of one-seed runs: HEAD~1:noise/seed-noise.json" in review and "synthetic.n (2000 → 56)" in review
    assert all(lines["cam-aus", k].endswith(("better", "worse", "within noise")) for k in ("cl", "cam.cos", "att.cos"))
    assert "## Noise bands" in (clone / "reports" / "tables.md").read_text()

    # A landmarks param reruns everything from landmarks on, but not prepare.
    set_params(clone, {"landmarks.noise": 0.05})
    assert changed(clone) == {"landmarks"}
    log = run(["dvc", "repro"], clone).stdout
    assert {"landmarks", "aumaps", "train@cam-aus", "train-baseline@cam-noaus"} <= ran(log)
    assert "prepare" not in ran(log)


def test_landmarks_and_aumaps_are_byte_identical(repro_clone: Path) -> None:
    clone = repro_clone
    stores = [clone / "data/landmarks/synthetic.h5", clone / "data/aumaps/synthetic.h5"]
    before = [p.read_bytes() for p in stores]
    saved = clone / "saved"
    saved.mkdir()
    for p in stores:
        shutil.copy(p, saved / p.name)
    set_params(clone, {"landmarks.n_jobs": 2, "aumaps.n_jobs": 2})  # parallelism must not change bytes
    run(["dvc", "repro", "-f", "-s", "landmarks"], clone)
    run(["dvc", "repro", "-f", "-s", "aumaps"], clone)
    assert [p.read_bytes() for p in stores] == before
    assert not changed(clone) & set(UPSTREAM)
