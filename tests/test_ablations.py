"""Ablations from `dvc exp show --json` (structure as DVC 3 writes it): λ curve, layer table beside the paper, figures."""

from __future__ import annotations

import json
import math
import runpy
import shutil
import sys
from pathlib import Path
from typing import Any

import cv2
import pandas as pd
import pytest

from fer_pipeline.core import paths
from fer_pipeline.evaluate.figures import save_figure
from fer_pipeline.evaluate.headline import headline
from fer_pipeline.report.ablations import (
    choose,
    chosen_table,
    experiments_table,
    lambda_curve,
    lambda_figure,
    layer_figure,
    layer_table,
    layers_label,
    render_ablations,
)

ROOT = Path(__file__).resolve().parents[1]


def state(rev: str, lam: Any, layers: Any, aus: dict[str, float], noaus: dict[str, float], name: str | None = None) -> dict:
    """One ExpState as `dvc exp show --json` dumps it (params/metrics keyed by file, values under `data`)."""
    params = {"params.yaml": {"data": {"train": {"lambda": lam, "layers": layers, "epochs": 6}, "evaluate": {"batch_size": 64}}}}
    metrics = {"metrics/cam-aus.json": {"data": headline(aus)}, "metrics/cam-noaus.json": {"data": headline(noaus)}}
    return {
        "rev": rev,
        "name": name,
        "data": {"rev": rev, "params": params, "metrics": metrics, "deps": {}, "outs": {}, "meta": {}},
    }


def exp(name: str, st: dict, status: str = "success") -> dict:
    """One ExpRange (a finished, queued or failed experiment)."""
    return {"revs": [st], "executor": {"state": status, "name": "dvc-task", "local": None}, "name": name}


def m(cl: float, cam: float, att: float) -> dict[str, float]:
    return {"cl": cl, "cam_cos": cam, "att_cos": att, "cam_pointing": 0.5}


NOAUS = m(80.0, 0.30, 0.25)
SHOW = [
    {"rev": "workspace", "name": None, "data": state("workspace", 4.0, [5], m(1, 1, 1), NOAUS)["data"], "experiments": None},
    {
        **state("a" * 40, 4.0, [5], m(82.0, 0.50, 0.60), NOAUS, name="main"),
        "experiments": [
            exp("lam1", state("b" * 40, 1, [5], m(81.0, 0.40, 0.45), NOAUS)),
            exp("lam8", state("c" * 40, "8", "[5]", m(78.0, 0.55, 0.70), NOAUS)),
            exp("l4", state("d" * 40, 4, [4], m(81.5, 0.45, 0.35), NOAUS)),
            exp("l54", state("e" * 40, 4.0, "4,5", m(82.5, 0.52, 0.58), NOAUS)),
            exp("queued", {"rev": "f" * 40, "name": None, "data": None}, status="queued"),
            exp("broken", state("9" * 40, 2.0, [5], m(0, 0, 0), NOAUS), status="failed"),
        ],
    },
]


def test_layers_label_matches_the_paper() -> None:
    assert layers_label([5, 4]) == "5+4" == layers_label("4,5") == layers_label("[5, 4]")
    assert layers_label(5) == "5" and layers_label("5.0") == "5"


def test_experiments_curve_and_layer_table() -> None:
    table = experiments_table(SHOW)
    assert table["name"].tolist() == ["main", "lam1", "lam8", "l4", "l54"]  # no workspace, queued or failed runs
    assert table["layers"].tolist() == ["5", "5", "5", "4", "5+4"] and table["lambda"].tolist() == [4.0, 1.0, 8.0, 4.0, 4.0]
    assert math.isnan(table.loc[0, "aus_deletion_score"]) and table.loc[0, "aus_cam_pointing"] == 0.5

    curve = lambda_curve(table)
    assert curve["lambda"].tolist() == [0.0, 1.0, 4.0, 8.0]  # λ = 0 is the without-AUs run
    assert curve["cam_cos"].tolist() == pytest.approx([0.30, 0.40, 0.50, 0.55])
    assert curve["cl"].tolist() == pytest.approx([80.0, 81.0, 82.0, 78.0])

    paper = pd.read_csv(ROOT / paths.PAPER_LAYER_TABLE)
    layers = layer_table(table, paper).set_index("layers")
    assert layers.loc["none", "ours_cam_cos"] == pytest.approx(0.30) and layers.loc["none", "paper_cam_cos"] == pytest.approx(
        0.55
    )
    assert layers.loc["5", "ours_cam_cos"] == pytest.approx(0.50) and layers.loc["5", "paper_cl"] == pytest.approx(88.95)
    assert layers.loc["5+4", "ours_cl"] == pytest.approx(82.5) and layers.loc["4", "ours_att_cos"] == pytest.approx(0.35)
    assert math.isnan(layers.loc["3", "ours_cl"]) and layers.loc["3", "paper_cam_cos"] == pytest.approx(0.56)
    assert list(layers.index[:2]) == ["none", "1"]  # the paper's row order

    text = render_ablations(curve, layers.reset_index(), table)
    assert "| 8 | 78.00 | 0.550 |" in text and "| 5+4 | 82.50 | 0.520 |" in text and "paper CAM-COS" in text


def test_ablation_figures(tmp_path: Path) -> None:
    table = experiments_table(SHOW)
    paper = pd.read_csv(ROOT / paths.PAPER_LAYER_TABLE)
    save_figure(lambda_figure(lambda_curve(table), "lambda"), tmp_path / "lambda.png")
    save_figure(layer_figure(layer_table(table, paper), "layers"), tmp_path / "layers.png")
    for name, hw in (("lambda.png", (400, 600)), ("layers.png", (450, 1000))):
        img = cv2.imread(str(tmp_path / name))
        assert img is not None and img.shape[:2] == hw and img.var() > 100.0, name


def test_script_with_saved_json_and_lambda_layers_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`python pipeline/ablations.py --json F --lambda 1 --layers 4`: the README's overrides pick the curve's layer set
    and the table's λ (the default picks the most common ones, a different report)."""
    (tmp_path / paths.PAPER_LAYER_TABLE).parent.mkdir(parents=True)
    shutil.copy(ROOT / paths.PAPER_LAYER_TABLE, tmp_path / paths.PAPER_LAYER_TABLE)
    (tmp_path / "show.json").write_text(json.dumps(SHOW))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["ablations.py", "--json", "show.json", "--lambda", "1", "--layers", "4"])
    runpy.run_path(str(ROOT / "pipeline" / "ablations.py"), run_name="__main__")
    table = experiments_table(SHOW)
    paper = pd.read_csv(ROOT / paths.PAPER_LAYER_TABLE)
    want = render_ablations(lambda_curve(table, "4"), layer_table(table, paper, 1.0), table)
    default = render_ablations(lambda_curve(table), layer_table(table, paper), table)
    got = (tmp_path / paths.REPORT_DIR / "ablations.md").read_text(encoding="utf-8")
    assert got.strip() == want.strip() and want != default
    assert (tmp_path / paths.REPORT_DIR / "ablations" / "lambda.png").stat().st_size > 0


def with_val(entries: list[dict], val: dict[str, dict[str, float]]) -> list[dict]:
    """SHOW with each named experiment's validation file (metrics/val/cam-aus.json) added."""
    out = json.loads(json.dumps(entries))
    states = [out[1], *(e["revs"][0] for e in out[1]["experiments"])]
    names = ["main", *(e["name"] for e in out[1]["experiments"])]
    for name, st in zip(names, states, strict=True):
        if name in val and st.get("data"):
            st["data"]["metrics"][str(paths.val_metrics_path("cam-aus"))] = {"data": headline(val[name])}
    return out


def test_the_choice_reads_validation_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """λ and layers are picked on validation; poisoned or deleted test numbers leave the pick unchanged."""
    val = {"main": m(70.0, 0.5, 0.5), "lam1": m(71.0, 0.4, 0.4), "lam8": m(74.0, 0.6, 0.4), "l4": m(72.0, 0.7, 0.3),
           "l54": m(73.0, 0.5, 0.9)}
    table = experiments_table(with_val(SHOW, val))
    assert table["val_cl"].tolist() == [70.0, 71.0, 74.0, 72.0, 73.0]
    pick = choose(table)
    assert (pick["lambda"], pick["layers"]) == (8.0, "5")  # the best validation CL; its test CL (78) is the worst
    assert (choose(table, "cam_cos")["layers"], choose(table, "att_cos")["layers"]) == ("4", "5+4")
    test_cols = [c for c in table.columns if c.startswith(("aus_", "noaus_"))]
    poisoned = table.assign(**{c: -table[c] * 1000 for c in test_cols})
    assert choose(poisoned).equals(pick) and choose(table.drop(columns=test_cols)).equals(pick)
    chosen = chosen_table(table, pick, "cl")
    assert chosen.loc[0, "test_cl"] == 78.0 and chosen.loc[0, "val_cl"] == 74.0 and chosen.loc[0, "experiments"] == "lam8"
    text = render_ablations(lambda_curve(table), layer_table(table, pd.read_csv(ROOT / paths.PAPER_LAYER_TABLE)), table,
                            chosen=chosen)
    assert "## Chosen on validation" in text and "| val CL (%) | 8 | 5 | 74.00 |" in text and "test CL (%)" in text
    with pytest.raises(ValueError, match="no experiment has validation metrics"):
        choose(experiments_table(SHOW))
    with pytest.raises(ValueError, match="validation metrics"):
        choose(table, "deletion_score")

    # `python pipeline/ablations.py --select cam_cos`: the pick on validation CAM-COS (layers 4) with its test numbers
    (tmp_path / paths.PAPER_LAYER_TABLE).parent.mkdir(parents=True)
    shutil.copy(ROOT / paths.PAPER_LAYER_TABLE, tmp_path / paths.PAPER_LAYER_TABLE)
    (tmp_path / "show.json").write_text(json.dumps(with_val(SHOW, val)))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["ablations.py", "--json", "show.json", "--select", "cam_cos"])
    runpy.run_path(str(ROOT / "pipeline" / "ablations.py"), run_name="__main__")
    got = (tmp_path / paths.REPORT_DIR / "ablations.md").read_text(encoding="utf-8")
    assert "| val CAM-COS | 4 | 4 | 72.00 | 0.700 | 0.300 | 81.50 | 0.450 | 0.350 | l4 |" in got, got
