"""k-fold by subject: the fold report from `dvc exp show --json` (structure as DVC 3 writes it), the script, and the
guide's queue command on a real clone (one experiment per fold, with `data.fold` set)."""

from __future__ import annotations

import json
import math
import runpy
import sys
from pathlib import Path

import pytest

from fer_pipeline.core import paths
from fer_pipeline.evaluate.bootstrap import T975
from fer_pipeline.evaluate.headline import headline
from fer_pipeline.report.folds import fold_changes, fold_summary, fold_table, render_folds
from tests.conftest import make_clone, run, set_params

ROOT = Path(__file__).resolve().parents[1]


def state(rev: str, fold: int, runs: dict[str, dict[str, float]], folds: int = 3, lam: float = 4.0) -> dict:
    """One ExpState: params with data.folds/fold and train.lambda, one metrics file per run (and a validation file)."""
    params = {"params.yaml": {"data": {"data": {"dataset": "folder", "group": "^([A-Z]{2})\\.", "folds": folds, "fold": fold},
                                       "train": {"lambda": lam, "layers": [5]}}}}
    metrics = {f"metrics/{r}.json": {"data": headline(m)} for r, m in runs.items()}
    metrics["metrics/val/cam-aus.json"] = {"data": headline({"cl": 1.0})}  # validation: never part of the fold report
    return {"rev": rev, "name": None, "data": {"rev": rev, "params": params, "metrics": metrics, "deps": {}, "outs": {}}}


def exp(name: str, st: dict, status: str = "success") -> dict:
    return {"revs": [st], "executor": {"state": status, "name": "dvc-task", "local": None}, "name": name}


def m(cl: float, cam: float) -> dict[str, float]:
    return {"cl": cl, "macro_f1": cl / 100, "cam_cos": cam, "att_cos": cam + 0.1}


NOAUS = (m(60.0, 0.30), m(70.0, 0.40), m(65.0, 0.35))
AUS = (m(62.0, 0.50), m(71.0, 0.62), m(69.0, 0.56))
SHOW = [
    {
        "rev": "a" * 40, "name": "main", "data": state("a" * 40, 0, {}, folds=0)["data"],  # the baseline: no folds
        "experiments": [
            *(exp(f"fold{i}", state(f"{i}" * 40, i, {"cam-noaus": NOAUS[i], "cam-aus": AUS[i]})) for i in range(3)),
            exp("again0", state("d" * 40, 0, {"cam-noaus": m(1, 0), "cam-aus": m(1, 0)})),  # fold 0 once more: dropped
            *(exp(f"lam8-{i}", state(f"e{i}" * 20, i, {"cam-noaus": NOAUS[i], "cam-aus": AUS[i]}, lam=8.0)) for i in (0, 2)),
            exp("queued", {"rev": "f" * 40, "name": None, "data": None}, status="queued"),
            exp("broken", state("9" * 40, 1, {"cam-aus": m(0, 0)}), status="failed"),
        ],
    },
]


def test_fold_table_keeps_fold_experiments_only() -> None:
    table = fold_table(SHOW)
    assert sorted(set(table["name"])) == ["again0", "fold0", "fold1", "fold2", "lam8-0", "lam8-2"]  # not main/queued/failed
    assert set(table["run"]) == {"cam-noaus", "cam-aus"}  # metrics/val/ is not a run
    assert table["sweep"].nunique() == 2  # λ 4 and λ 8: params other than data.fold differ


def test_mean_spread_interval_and_missing_folds() -> None:
    summary = fold_summary(fold_table(SHOW)).set_index(["sweep", "run", "metric"])
    row = summary.loc[("train.lambda=4.0", "cam-noaus", "cl")]
    sd = math.sqrt(((60 - 65) ** 2 + (70 - 65) ** 2 + 0) / 2)  # 5.0; the repeated fold 0 (CL 1) is not counted
    assert (row["folds"], row["of"], row["mean"], row["min"], row["max"]) == (3, 3, pytest.approx(65.0), 60.0, 70.0)
    assert row["sd"] == pytest.approx(sd) and row["missing"] == ""
    assert (row["lo"], row["hi"]) == pytest.approx((65 - T975[1] * sd / math.sqrt(3), 65 + T975[1] * sd / math.sqrt(3)))
    partial = summary.loc[("train.lambda=8.0", "cam-aus", "cl")]
    assert (partial["folds"], partial["of"], partial["missing"]) == (2, 3, "1")
    assert partial["mean"] == pytest.approx((62.0 + 69.0) / 2)


def test_change_with_aus_is_paired_by_fold() -> None:
    changes = fold_changes(fold_table(SHOW)).set_index(["sweep", "method", "metric"])
    cam = changes.loc[("train.lambda=4.0", "cam", "cam_cos")]
    # per fold +0.20, +0.22, +0.21: paired, the interval excludes 0; the folds' own spread (sd 0.05) would swamp it
    assert cam["change"] == pytest.approx(0.21) and cam["sd"] == pytest.approx(0.01)
    assert cam["lo"] > 0 and cam["verdict"] == "better"
    cl = changes.loc[("train.lambda=4.0", "cam", "cl")]  # +2, +1, +4: the interval holds 0
    assert cl["change"] == pytest.approx(7 / 3) and cl["lo"] < 0 < cl["hi"] and cl["verdict"] == "within noise"


def test_render_and_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = render_folds(fold_table(SHOW))
    assert "## train.lambda=4.0" in text and "| cam-noaus | CL (%) | 3 of 3 | 65.00 ± 5.00 | 60.00 – 70.00 |" in text
    assert "| cam | CAM-COS (reference: min-max CAM) | 3 | +0.2100 |" in text and "better" in text and "| 2 of 3 |" in text
    (tmp_path / "show.json").write_text(json.dumps(SHOW))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["folds.py", "--json", "show.json"])
    runpy.run_path(str(ROOT / "pipeline" / "folds.py"), run_name="__main__")
    assert (tmp_path / paths.REPORT_DIR / "folds.md").read_text(encoding="utf-8") == text
    csv = (tmp_path / paths.REPORT_DIR / "folds.csv").read_text(encoding="utf-8").splitlines()
    assert len(csv) == 1 + 2 * (3 + 1 + 2)  # header, then two runs for each of the six fold experiments


def test_no_fold_experiment_says_what_to_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "show.json").write_text(json.dumps([{**SHOW[0], "experiments": []}]))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["folds.py", "--json", "show.json"])
    with pytest.raises(SystemExit, match="data.folds > 1"):
        runpy.run_path(str(ROOT / "pipeline" / "folds.py"), run_name="__main__")


def test_the_guides_queue_command_queues_one_experiment_per_fold(tmp_path: Path) -> None:
    """`dvc exp run --queue -S 'data.fold=range(0,3)'` (the guide's command, k = 3) queues folds 0, 1, 2."""
    repo = make_clone(tmp_path / "repo")
    set_params(repo, {"data.folds": 3})
    run(["git", "commit", "-qam", "three folds"], repo)
    run(["dvc", "exp", "run", "--queue", "-S", "data.fold=range(0,3)"], repo)
    folds = []
    for commit in json.loads(run(["dvc", "exp", "show", "--json"], repo).stdout):
        for e in commit.get("experiments") or []:
            for st in e.get("revs") or []:
                data = (st.get("data") or {}).get("params", {}).get("params.yaml", {}).get("data", {})
                if (e.get("executor") or {}).get("state") == "queued" and "data" in data:
                    folds.append(int(data["data"]["fold"]))
    assert sorted(folds) == [0, 1, 2]
    run(["dvc", "queue", "remove", "--all"], repo)
