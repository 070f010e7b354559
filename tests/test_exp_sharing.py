"""Experiments shared across machines: A runs two experiments and `dvc exp push`es them (git refs to a bare git remote,
outputs to a local DVC remote); a fresh clone B `dvc exp pull`s, lists both with their metrics, applies one and gets
its model back with `dvc checkout`, and `dvc repro` retrains nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run

pytestmark = pytest.mark.slow

MODEL = "models/cam-aus/model.pt"


def experiments(repo: Path) -> dict[str, dict]:
    """`dvc exp show --json`: experiment name -> {params, metrics} (metrics file -> values) of the named experiments."""
    out: dict[str, dict] = {}
    for commit in json.loads(run(["dvc", "exp", "show", "--json"], repo).stdout):
        for exp in commit.get("experiments") or []:
            for rev in exp.get("revs") or []:
                data = rev.get("data") or {}
                if rev.get("name"):
                    metrics = {f: v.get("data", {}) for f, v in (data.get("metrics") or {}).items()}
                    params = data.get("params", {}).get("params.yaml", {}).get("data", {})
                    out[rev["name"]] = {"metrics": metrics, "params": params, "rev": rev["rev"]}
    return out


def test_exp_push_then_pull_on_a_fresh_clone(repro_clone: Path, tmp_path: Path) -> None:
    a = repro_clone  # machine A: the shared reproduced clone (tests/conftest.py), tiny params, one method
    run(["git", "init", "-q", "--bare", str(tmp_path / "origin.git")], tmp_path)
    run(["git", "remote", "add", "origin", str(tmp_path / "origin.git")], a)
    run(["dvc", "remote", "add", "-d", "team", str(tmp_path / "dvc-remote")], a)
    run(["git", "add", "-A"], a)
    run(["git", "commit", "-q", "-m", "team remotes"], a)
    run(["git", "push", "-q", "origin", "HEAD:refs/heads/main"], a)

    # Machine A: two experiments, pushed (git refs to origin, their outputs to the DVC remote).
    for name, lam in (("lam1", 1.0), ("lam3", 3.0)):
        run(["dvc", "exp", "run", "-n", name, "-S", f"train.lambda={lam}"], a)
    models = {}
    for name in ("lam1", "lam3"):
        run(["dvc", "exp", "apply", name], a)
        models[name] = (a / MODEL).read_bytes()
    assert models["lam1"] != models["lam3"]
    run(["dvc", "exp", "push", "origin", "lam1", "lam3"], a)

    # Machine B: a fresh clone sees both experiments with their metrics, without running anything.
    b = tmp_path / "b"
    run(["git", "clone", "-q", "--branch", "main", str(tmp_path / "origin.git"), str(b)], tmp_path)
    assert "lam1" in run(["dvc", "exp", "list", "origin"], b).stdout
    run(["dvc", "exp", "pull", "origin", "lam1", "lam3"], b)
    shown = experiments(b)
    assert {"lam1", "lam3"} <= set(shown), shown
    for name, lam in (("lam1", 1.0), ("lam3", 3.0)):
        assert float(shown[name]["params"]["train"]["lambda"]) == lam
        aus = next(v for f, v in shown[name]["metrics"].items() if f.endswith("metrics/cam-aus.json"))
        assert 0.0 <= float(aus["cl"]) <= 100.0 and -1.0 <= float(aus["cam"]["cos"]) <= 1.0, aus  # headline metrics
    assert shown["lam1"]["metrics"] != shown["lam3"]["metrics"]

    # `dvc exp apply` restores lam1's params and metrics; `dvc checkout` brings its model from the cache: no retraining.
    assert not (b / MODEL).exists()
    run(["dvc", "exp", "apply", "lam1"], b)
    run(["dvc", "checkout"], b)
    assert (b / MODEL).read_bytes() == models["lam1"]
    # Everything is up to date (training checkpoints are per machine, not DVC outputs): `dvc repro` runs nothing.
    assert json.loads(run(["dvc", "status", "--json"], b).stdout or "{}") == {}
    log = run(["dvc", "repro"], b).stdout
    assert "Running stage" not in log and (b / MODEL).read_bytes() == models["lam1"], log
