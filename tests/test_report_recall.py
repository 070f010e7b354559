"""The report's per-class recall and macro-F1: read from each run's `details.json` and shown next to CL."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from fer_pipeline.core.labels import LABELS
from fer_pipeline.evaluate.run import Inference, summarize
from fer_pipeline.report.tables import build_table, recall_table, render_report
from tests.conftest import ROOT


def _details(y: list[int], pred: list[int]) -> dict:
    """A run's metrics as evaluate computes them (`summarize` of a fake inference pass)."""
    yy, pp = np.array(y), np.array(pred)
    nan = np.full(len(y), np.nan)
    inf = Inference(y=yy, pred=pp, has_map=yy != 0, cam_cos=nan, att_cos={5: nan}, rows=np.arange(len(y)))
    return summarize(inf)[0]


def test_recall_and_macro_f1_sit_next_to_cl() -> None:
    """Disgust (5) is never predicted without AUs and half the time with: recall 0 -> 50 %, macro-F1 below CL / 100."""
    y = [0, 0, 1, 1, 5, 5, 6, 6]
    metrics = {
        "cam-noaus": _details(y, [0, 0, 1, 1, 1, 6, 6, 6]),
        "cam-aus": _details(y, [0, 0, 1, 1, 5, 6, 6, 6]),
    }
    table = build_table(metrics, ["cam"], pd.read_csv(ROOT / "data" / "paper" / "paper_tables.csv"))
    f1 = table.set_index("metric").loc["macro-F1"]
    assert table["metric"].tolist()[:2] == ["CL (%)", "macro-F1"]
    assert f1["ours_noaus"] == metrics["cam-noaus"]["macro_f1"] < f1["ours_aus"] and math.isnan(f1["rafdb_aus"])

    recall = recall_table(metrics, ["cam"])
    assert recall["class"].tolist() == list(LABELS)
    rows = recall.set_index("class")
    assert rows.loc["disgust", "cam w/o AUs"] == 0.0 and rows.loc["disgust", "cam w/ AUs"] == 50.0
    assert rows.loc["sadness", "cam w/o AUs"] == 100.0 and rows.loc["disgust", "n"] == 2
    assert math.isnan(rows.loc["fear", "cam w/ AUs"])  # no test image of the class: no recall, never a made-up 0

    text = render_report(table, pd.DataFrame(), "synthetic", (), recall)
    assert "## Per-class recall" in text and "| fear | – | – | 0 |" in text
    assert "| disgust | 0.0 | 50.0 | 2 |" in text and "| cam | macro-F1 |" in text
    assert "Per-class recall" not in render_report(table, pd.DataFrame(), "synthetic", (), recall_table({}, ["cam"]))
