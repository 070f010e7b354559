"""Ablations from `dvc exp show --json`: the λ curve (paper Fig. 5) and the layer table (paper Table 3).

Each experiment contributes one row: its `train.lambda`, `train.layers` and the metrics of `metrics/<method>-aus.json`
(and of `-noaus`, the λ = 0 reference). The λ curve keeps the rows trained on the reference layer set; the layer
table keeps the rows at the reference λ, with the without-AUs run as the paper's "none" row. `choose` picks λ and the
layer set on the validation metrics (`metrics/val/<method>-aus.json`) only, as the paper does (section 4.1), and the
report gives the test numbers of that pick.
"""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from fer_pipeline.core import paths
from fer_pipeline.evaluate.figures import DPI
from fer_pipeline.evaluate.headline import flatten
from fer_pipeline.report.tables import run_name, to_markdown

#: Metrics read from each run's metrics file (those absent in older runs come out NaN).
KEYS = ("cl", "cam_cos", "att_cos", "cam_pointing", "cam_energy", "deletion_score")
#: Validation metrics read from the guided run's validation file (`val_<key>` columns): what `choose` may read.
VAL_KEYS = ("cl", "cam_cos", "att_cos")
LABELS = {
    "lambda": "λ",
    "cl": "CL (%)",
    "cam_cos": "CAM-COS",
    "att_cos": "ATT-COS (L5)",
    "cam_pointing": "CAM pointing",
    "cam_energy": "CAM energy share",
    "deletion_score": "deletion score",
}


def layers_label(value: Any) -> str:
    """A layer set as the paper writes it: "5+4" (largest first); accepts [5, 4], "5,4", "[4, 5]" or 5."""
    from fer_pipeline.core.train_config import parse_layers  # the one parser `train.layers` goes through

    return "+".join(str(v) for v in sorted(parse_layers(value), reverse=True))


def exp_states(entries: Sequence[Mapping[str, Any]]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(name, ExpState dict) for every baseline commit and every finished experiment in `dvc exp show --json` output,
    each revision once (an experiment whose commit equals its baseline's is listed under both)."""
    seen: set[str] = set()

    def new(state: Mapping[str, Any]) -> bool:
        rev = str(state.get("rev"))
        if rev in seen:
            return False
        seen.add(rev)
        return True

    for entry in entries:
        if entry.get("rev") != "workspace" and entry.get("data") and new(entry):
            yield entry.get("name") or str(entry.get("rev"))[:7], entry
        for exp_range in entry.get("experiments") or []:
            executor = exp_range.get("executor") or {}
            if executor.get("state") not in (None, "success"):
                continue  # queued, running or failed: no metrics yet
            for state in exp_range.get("revs") or []:
                if state.get("data") and new(state):
                    yield exp_range.get("name") or state.get("name") or str(state.get("rev"))[:7], state


def read_exp_show(saved: str | None = None) -> list[dict[str, Any]]:
    """`dvc exp show --json` as parsed JSON: from the saved file `saved`, else by running it in the current directory
    (what the report scripts in pipeline/ read)."""
    if saved:
        text = Path(saved).read_text(encoding="utf-8")
    else:
        text = subprocess.run(["dvc", "exp", "show", "--json"], check=True, capture_output=True, text=True).stdout
    return json.loads(text)


def file_data(files: Mapping[str, Any], suffix: str) -> Mapping[str, Any]:
    """The `data` of the file whose path ends with `suffix` (DVC keys params/metrics by path), else {}."""
    for path, content in (files or {}).items():
        if str(path).replace("\\", "/").endswith(suffix) and isinstance(content, Mapping):
            return content.get("data") or {}
    return {}


def experiments_table(entries: Sequence[Mapping[str, Any]], method: str = "cam") -> pd.DataFrame:
    """One row per baseline/experiment: name, rev, lambda, layers, and `aus_<key>` / `noaus_<key>` metrics."""
    rows = []
    for name, state in exp_states(entries):
        rev = str(state.get("rev"))
        data = state["data"]
        train = file_data(data.get("params", {}), "params.yaml").get("train", {})
        if "lambda" not in train or "layers" not in train:
            continue
        row: dict[str, Any] = {
            "name": name,
            "rev": rev[:7],
            "lambda": float(train["lambda"]),
            "layers": layers_label(train["layers"]),
        }
        for aus in ("aus", "noaus"):
            m = flatten(file_data(data.get("metrics", {}), paths.metrics_path(run_name(method, aus)).as_posix()))
            for key in KEYS:
                v = m.get(key)
                row[f"{aus}_{key}"] = math.nan if v is None else float(v)
        val = flatten(file_data(data.get("metrics", {}), paths.val_metrics_path(run_name(method, "aus")).as_posix()))
        for key in VAL_KEYS:
            v = val.get(key)
            row[f"val_{key}"] = math.nan if v is None else float(v)
        rows.append(row)
    return pd.DataFrame(rows)


def _reference(table: pd.DataFrame) -> tuple[float, str]:
    """The most common λ and layer set (the baseline's unless the sweeps outnumber it): the fixed value of each sweep."""
    return float(table["lambda"].mode().iloc[0]), str(table["layers"].mode().iloc[0])


def lambda_curve(table: pd.DataFrame, layers: str | None = None) -> pd.DataFrame:
    """Rows at the reference layer set, one per λ (mean over duplicates), plus λ = 0 from the without-AUs run."""
    layers = layers or _reference(table)[1]
    sub = table[table["layers"] == layers]
    cols = [f"aus_{k}" for k in KEYS]
    curve = sub.groupby("lambda")[cols].mean().rename(columns=lambda c: c.removeprefix("aus_"))
    if (curve.index != 0).all() and not sub.empty:
        zero = sub[[f"noaus_{k}" for k in KEYS]].mean().rename(lambda c: c.removeprefix("noaus_"))
        curve.loc[0.0] = zero
    return curve.sort_index().reset_index()


def layer_table(table: pd.DataFrame, paper: pd.DataFrame, lam: float | None = None) -> pd.DataFrame:
    """Paper Table 3 layout: layer set ("none" = without AUs), our CL / CAM-COS / ATT-COS at λ, the paper's CL / CAM-COS."""
    lam = _reference(table)[0] if lam is None else float(lam)
    sub = table[np.isclose(table["lambda"], lam)]
    ours = sub.groupby("layers")[["aus_cl", "aus_cam_cos", "aus_att_cos"]].mean()
    ours.columns = ["cl", "cam_cos", "att_cos"]
    if not sub.empty:
        ours.loc["none"] = sub[["noaus_cl", "noaus_cam_cos", "noaus_att_cos"]].mean().to_numpy()
    paper = paper.assign(layers=paper["layers"].astype(str)).set_index("layers")
    order = [*paper.index, *sorted(set(ours.index) - set(paper.index))]
    out = pd.DataFrame({"layers": order})
    for col in ("cl", "cam_cos", "att_cos"):
        out[f"ours_{col}"] = [ours[col].get(k, math.nan) for k in order]
    for col in ("cl", "cam_cos"):
        out[f"paper_{col}"] = [float(paper[col].get(k, math.nan)) for k in order]
    return out


def choose(table: pd.DataFrame, on: str = "cl") -> pd.Series:
    """The (λ, layers) with the best validation `on` (mean over its experiments; ties: the smaller λ, then the layer
    set first in order). Reads only the validation columns: test numbers never take part in the choice."""
    if on not in VAL_KEYS:
        raise ValueError(f"choose on one of {', '.join(VAL_KEYS)} (validation metrics), got {on!r}")
    view = table[["lambda", "layers", *(f"val_{k}" for k in VAL_KEYS)]]
    means = view.groupby(["lambda", "layers"], sort=True).mean().reset_index()
    scored = means[np.isfinite(means[f"val_{on}"])]
    if scored.empty:
        raise ValueError("no experiment has validation metrics (metrics/val/<run>.json): rerun the sweeps with the "
                         "current pipeline (`dvc exp run`), which writes them")
    return scored.loc[scored[f"val_{on}"].idxmax()]  # idxmax: the first maximum in (λ, layers) order


def chosen_table(table: pd.DataFrame, pick: pd.Series, on: str) -> pd.DataFrame:
    """One row: the pick's λ and layers, its validation metrics and its test metrics (mean over its experiments)."""
    rows = table[np.isclose(table["lambda"], float(pick["lambda"])) & (table["layers"] == pick["layers"])]
    out: dict[str, Any] = {"chosen on": f"val {LABELS.get(on, on)}", "lambda": float(pick["lambda"]), "layers": pick["layers"]}
    for key in VAL_KEYS:
        out[f"val_{key}"] = float(pick[f"val_{key}"])
    for key in VAL_KEYS:
        out[f"test_{key}"] = float(rows[f"aus_{key}"].mean())
    out["experiments"] = ", ".join(rows["name"].astype(str))
    return pd.DataFrame([out])


def lambda_figure(curve: pd.DataFrame, title: str) -> Figure:
    """CL (left axis) and CAM-COS / ATT-COS (right axis) against λ (symlog x: λ = 0 is the without-AUs run)."""
    fig = Figure(figsize=(6.0, 4.0), dpi=DPI)
    ax = fig.subplots(gridspec_kw={"left": 0.12, "right": 0.86, "bottom": 0.14, "top": 0.88})
    x = curve["lambda"].to_numpy()
    ax.plot(x, curve["cl"], "o-", color="tab:blue", label="CL (%)")
    ax.set_xscale("symlog", linthresh=0.5)
    ax.set_xticks(x, labels=[f"{v:g}" for v in x])
    ax.set_xlabel("λ (train.lambda)")
    ax.set_ylabel("CL (%)", color="tab:blue")
    right = ax.twinx()
    right.plot(x, curve["cam_cos"], "s-", color="tab:red", label="CAM-COS")
    right.plot(x, curve["att_cos"], "^-", color="tab:green", label="ATT-COS")
    right.set_ylabel("cosine with the AU map")
    right.set_ylim(0.0, 1.0)
    lines = ax.get_lines() + right.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], fontsize=8, loc="best")
    ax.set_title(title, fontsize=9)
    return fig


def layer_figure(table: pd.DataFrame, title: str) -> Figure:
    """Grouped bars per layer set: our CAM-COS and ATT-COS beside the paper's CAM-COS (left); CL ours vs paper (right)."""
    fig = Figure(figsize=(10.0, 4.5), dpi=DPI)
    left, right = fig.subplots(1, 2, gridspec_kw={"left": 0.06, "right": 0.98, "bottom": 0.24, "top": 0.88, "wspace": 0.2})
    x = np.arange(len(table))
    for ax, cols, ylabel in (
        (
            left,
            (("ours_cam_cos", "ours CAM-COS"), ("ours_att_cos", "ours ATT-COS"), ("paper_cam_cos", "paper CAM-COS")),
            "cosine",
        ),
        (right, (("ours_cl", "ours CL"), ("paper_cl", "paper CL")), "CL (%)"),
    ):
        width = 0.8 / len(cols)
        for i, (col, label) in enumerate(cols):
            ax.bar(x + (i - (len(cols) - 1) / 2) * width, table[col].fillna(0.0), width, label=label)
        ax.set_xticks(x, labels=table["layers"], rotation=30, fontsize=8)
        ax.set_xlabel("layers aligned (none = without AUs)")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
    left.set_ylim(0.0, 1.0)
    fig.suptitle(title, fontsize=9)
    return fig


def _named(df: pd.DataFrame, prefix: str = "") -> pd.DataFrame:
    """λ as written (4, not 4.00) and readable column names: `ours_cl` -> `ours CL (%)`, `paper_cam_cos` -> `paper CAM-COS`."""
    out = df.copy()
    if "lambda" in out:
        out["lambda"] = [f"{v:g}" for v in out["lambda"]]

    def name(col: str) -> str:
        for tag in (prefix, "paper_"):
            if tag and col.startswith(tag):
                return f"{tag.rstrip('_')} {LABELS.get(col[len(tag) :], col[len(tag) :])}"
        return LABELS.get(col, col)

    return out.rename(columns=name)


def render_ablations(curve: pd.DataFrame, layers: pd.DataFrame, experiments: pd.DataFrame, notes: Sequence[str] = (),
                     chosen: pd.DataFrame | None = None) -> str:
    """`reports/ablations.md`: the λ curve table, the layer table beside the paper's Table 3, the experiments used, and
    (`chosen`: `chosen_table`) the λ and layers picked on validation with their test numbers."""
    exps = experiments[["name", "rev", "lambda", "layers", "aus_cl", "aus_cam_cos", "aus_att_cos"]]
    parts = [
        "# Ablations (from `dvc exp show --json`)",
        "",
        "## λ (paper Fig. 5)",
        "",
        "![lambda curve](ablations/lambda.png)",
        "",
        to_markdown(_named(curve)),
        "",
        "## Layers (paper Table 3, RAF-DB, ResNet50; ours on the run's dataset)",
        "",
        "![layer table](ablations/layers.png)",
        "",
        to_markdown(_named(layers, "ours_")),
        "",
        "## Experiments (with-AUs run)",
        "",
        to_markdown(_named(exps, "aus_")),
    ]
    if chosen is not None and not chosen.empty:
        parts += ["", "## Chosen on validation (paper section 4.1)", "",
                  "λ and the aligned layers picked on the validation split only; the test numbers are those of the pick.",
                  "", to_markdown(_named(chosen, "val_").rename(columns=lambda c: _named_test(c)))]
    if notes:
        parts += ["", *[f"- {n}" for n in notes]]
    return "\n".join(parts) + "\n"


def _named_test(col: str) -> str:
    """`test_cl` -> `test CL (%)` (the chosen table's test columns)."""
    return f"test {LABELS.get(col[5:], col[5:])}" if col.startswith("test_") else col
