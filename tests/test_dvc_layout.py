"""The DVC layout a reviewer relies on: the baseline stage's params, post-hoc methods without training, the committed
baseline (dvc.lock, headline metrics) kept true, and test clones that never see a run's outputs."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from fer_pipeline.core.presets import flatten as flatten_params
from fer_pipeline.core.train_config import TrainConfig
from fer_pipeline.evaluate.headline import HEADLINE, flatten, headline
from fer_pipeline.models import is_posthoc, list_methods, trained_method
from tests.conftest import ROOT, make_clone, project_files, run, set_params

#: `train` keys the λ = 0 baseline provably does not read (it aligns nothing and reads no AU maps).
BASELINE_EXCLUDED = {"lambda", "layers", "align_loss", "att_norm"}
#: TrainConfig fields that are no params key: the method is each stage's matrix argument (report.methods).
NOT_PARAMS = {"method"}


def stages() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def test_every_train_key_is_a_baseline_param_or_provably_unused() -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    keys = set(params["train"]) | {"lambda" if f.name == "lam" else f.name for f in fields(TrainConfig)} - NOT_PARAMS
    listed = stages()["train-baseline"]["params"]
    deps = {p.removeprefix("train.") for p in listed if isinstance(p, str) and p.startswith("train.")}
    missing = keys - deps - BASELINE_EXCLUDED
    assert not missing, f"train keys neither baseline params nor excluded: {sorted(missing)} (add them to train-baseline)"
    assert not deps & BASELINE_EXCLUDED, "the baseline must not depend on the alignment params"
    assert set(params["train"]) == keys, "every TrainConfig field is spelled out in params.yaml (so -S can reach it)"
    assert "train" in stages()["train"]["params"]  # the guided run reads the whole section
    assert not keys & NOT_PARAMS and all(f"train.{k}" not in str(s.get("params")) for s in stages().values() for k in NOT_PARAMS)
    # the baseline reads no AU-map store; the guided run does
    assert not any("aumaps/" in d for d in stages()["train-baseline"]["deps"])
    assert any("aumaps/" in d for d in stages()["train"]["deps"])


def test_posthoc_stage_reads_the_model_its_methods_train_as() -> None:
    posthoc = [m for m in list_methods() if is_posthoc(m)]
    assert sorted(posthoc) == ["gradcam", "gradcampp", "layercam"]
    bases = {trained_method(m) for m in posthoc}
    models = [d for d in stages()["posthoc"]["deps"] if d.startswith("models/")]
    assert models == [f"models/{base}-${{item.aus}}" for base in sorted(bases)]  # the folder: every training seed


def test_table1_preset_trains_cam_once_per_lambda(clone: Path) -> None:
    set_params(clone, flatten_params(yaml.safe_load((clone / "params-table1.yaml").read_text())))
    params = yaml.safe_load((clone / "params.yaml").read_text())
    names = run(["dvc", "stage", "list", "--name-only"], clone).stdout.split()
    trains = sorted(n for n in names if n.startswith("train"))
    trained = list(params["report"]["methods"])
    assert trains == sorted([f"train-baseline@{m}-noaus" for m in trained] + [f"train@{m}-aus" for m in trained])
    assert not any("gradcam" in n or "layercam" in n for n in trains)
    for m in ("gradcam", "gradcampp", "layercam"):
        assert {f"posthoc@{m}-noaus", f"posthoc@{m}-aus"} <= set(names)


def test_committed_lock_matches_code_and_params(clone: Path) -> None:
    """The committed baseline stays true: every stage's code, params and command hashes in dvc.lock equal what DVC
    computes now. Only outputs may be missing (a fresh clone has none). Regenerate with `make repro` and commit."""
    assert (clone / "dvc.lock").is_file(), "dvc.lock is not committed: run `make repro` and commit it"
    status = json.loads(run(["dvc", "status", "--json"], clone).stdout or "{}")
    lock = yaml.safe_load((clone / "dvc.lock").read_text())["stages"]
    outs = {o["path"] for st in lock.values() for o in st.get("outs", [])}

    def data(dep: str) -> bool:
        """A dependency that is, holds or lies in another stage's output: data a fresh clone lacks, not code."""
        return any(o == dep or o.startswith(f"{dep}/") or dep.startswith(f"{o}/") for o in outs)

    stale = {}
    for stage, entries in status.items():
        for entry in entries:
            if not isinstance(entry, dict):
                stale.setdefault(stage, []).append(entry)  # "changed command", "always changed", ...
                continue
            for kind, changes in entry.items():
                if kind == "changed outs":
                    continue
                if kind != "changed deps":
                    stale.setdefault(stage, []).append(kind)
                    continue
                for path, what in changes.items():
                    if isinstance(what, dict) or (what != "deleted" and not data(path)):  # params (a dict), or code
                        stale.setdefault(stage, []).append(f"{path}: {what}")
    assert not stale, f"dvc.lock is stale (rerun `make repro` and commit dvc.lock with its outputs): {stale}"


def test_committed_metrics_are_headline_only() -> None:
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text()) if (ROOT / "dvc.lock").is_file() else {"stages": {}}
    runs = [s.split("@")[1] for s in lock["stages"] if s.startswith(("evaluate@", "posthoc@"))]
    assert runs, "the committed dvc.lock has no evaluation"
    for run_id in runs:
        blob = subprocess.run(["git", "show", f"HEAD:metrics/{run_id}.json"], cwd=ROOT, capture_output=True, text=True)
        assert blob.returncode == 0, f"metrics/{run_id}.json is not committed"
        data = json.loads(blob.stdout)
        assert set(flatten(data)) <= {key for _, key, _ in HEADLINE} and {"cl", "cam_cos", "att_cos"} <= set(flatten(data))
        assert headline(flatten(data)) == data  # nothing beyond the headline


def test_headline_round_trip() -> None:
    details = {"cl": 95.7443, "macro_f1": 0.9512345, "cam_cos": 0.866123, "att_cos": float("nan"), "n": 399,
               "per_class": {"happiness": {"acc": 1.0}}, "att_cos_layers": {"5": 0.9}}
    h = headline(details)
    assert h == {"cl": 95.74, "f1": 0.9512, "cam": {"cos": 0.8661}, "n": 399}  # NaN left out, never faked
    assert flatten(h) == {"cl": 95.74, "macro_f1": 0.9512, "cam_cos": 0.8661, "n": 399}


def test_clone_copies_project_files_not_run_outputs(tmp_path: Path) -> None:
    repo = tmp_path / "proj"
    (repo / "fer_pipeline").mkdir(parents=True)
    (repo / "reports").mkdir()
    (repo / "fer_pipeline" / "a.py").write_text("x = 1\n")
    (repo / "README.md").write_text("hi\n")
    run(["git", "init", "-q"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "c"], repo)
    (repo / "fer_pipeline" / "new.py").write_text("y = 2\n")  # untracked source: copied
    (repo / "reports" / "tables.md").write_text("run output\n")  # untracked output of a run: not copied
    (repo / "notes.txt").write_text("scratch\n")
    assert project_files(repo) == ["README.md", "fer_pipeline/a.py", "fer_pipeline/new.py"]


def test_clone_of_this_checkout_has_no_run_outputs(tmp_path: Path) -> None:
    clone = make_clone(tmp_path / "repo")
    for out in ("data/prepared", "data/landmarks", "data/aumaps", "models", "checkpoints"):
        assert not (clone / out).exists(), out
    for rel in ("dvc.lock", "reports/tables.md"):  # tracked outputs come as committed at HEAD
        head = subprocess.run(["git", "show", f"HEAD:{rel}"], cwd=ROOT, capture_output=True).stdout
        assert (clone / rel).read_bytes() == head


@pytest.mark.parametrize("script", ["train.py", "evaluate.py"])
@pytest.mark.parametrize("policy", [None, "ACTIVE"])
def test_torch_stages_keep_the_users_omp_wait_policy(script: str, policy: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Passive OpenMP waits by default (a shared machine), a policy set before `dvc repro` kept (ACTIVE alone: README)."""
    if policy is None:
        monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    else:
        monkeypatch.setenv("OMP_WAIT_POLICY", policy)
    runpy.run_path(str(ROOT / "pipeline" / script), run_name="stage_under_test")  # top level only, not main()
    assert os.environ["OMP_WAIT_POLICY"] == (policy or "PASSIVE")
