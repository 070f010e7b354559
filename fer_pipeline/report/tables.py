"""Build Table 1/2 layout (CL, CAM-COS, ATT-COS per method, without / with AUs) beside the paper's numbers."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from fer_pipeline.core.labels import LABELS

#: The headline rows (details key, label); the labels say how the cosines are computed (as the paper's reference code:
#: docs/reference/metrics.md). Bands, folds and cross-dataset tables use them too.
METRICS = (
    ("cl", "CL (%)"),
    ("macro_f1", "macro-F1"),
    ("cam_cos", "CAM-COS (reference: min-max CAM)"),
    ("att_cos", "ATT-COS (reference: raw, shifted if negative)"),
)
#: The main table's rows: the headline ones and, once, ATT-COS of the min-max T_l (not the paper's computation).
TABLE_METRICS = (*METRICS, ("att_cos_minmax", "ATT-COS (min-max T_l, secondary)"))
SHORTCUT = (("cl_nocue", "no cue"), ("cl_cue_agree", "cue agrees"), ("cl_cue_conflict", "cue conflicts"))
AUS = ("noaus", "aus")
#: What a reader must know to compare a method's row with the paper's (shown under the table when the method ran).
METHOD_NOTES = {
    "gradcam": "GradCAM, GradCAM++, LayerCAM: CAM classifiers read out post hoc with the `grad-cam` package at layer 5.",
    "tscam": "TS-CAM: ATT-COS is on its layer 5, the class-token attention map (DeiT has no layer-wise conv features).",
    "apvit": "APViT has no class CAM (the paper reports no CAM-COS): our CAM-COS is on its class-agnostic attentive-pooling "
    "map, which is also its layer 5 (ATT-COS).",
}


#: The paper's Table 1 row order; the report lists its methods in it (others after, as given).
TABLE1_ORDER = ("cam", "wildcat", "gradcam", "gradcampp", "acol", "prm", "adl", "cutmix", "layercam", "tscam", "apvit")


def _names(value: Any) -> list[str]:
    """A list of method names from a YAML list or a `-S` string ("cam,prm" / "[cam, prm]")."""
    if value is None:
        return []
    if isinstance(value, str):
        return [m.strip() for m in value.strip().strip("[]").split(",") if m.strip()]
    return [str(m).strip() for m in value]


def report_methods(report: Mapping[str, Any]) -> list[str]:
    """`report.methods` (trained) and `report.posthoc` (read out post hoc), in the paper's Table 1 order."""
    names = list(dict.fromkeys(_names(report.get("methods")) + _names(report.get("posthoc"))))
    rank = {m: i for i, m in enumerate(TABLE1_ORDER)}
    return sorted(names, key=lambda m: (rank.get(m, len(rank)), names.index(m)))


def run_name(method: str, aus: str) -> str:
    """The run id used for models/, metrics/, plots/: `<method>-<noaus|aus>`."""
    return f"{method}-{aus}"


def paper_value(paper: pd.DataFrame, dataset: str, method: str, metric: str, aus: str) -> float:
    """The paper's number for one cell, NaN where the paper has none (e.g. APViT CAM-COS)."""
    rows = paper[(paper["dataset"] == dataset) & (paper["method"] == method) & (paper["metric"] == metric)]
    if rows.empty:
        return math.nan
    return float(rows.iloc[0]["with_aus" if aus == "aus" else "without_aus"])


def build_table(metrics: Mapping[str, Mapping[str, Any]], methods: Sequence[str], paper: pd.DataFrame) -> pd.DataFrame:
    """Long table: one row per method × metric with measured and paper (RAF-DB, AffectNet-7) values."""
    rows = []
    for method in methods:
        for key, label in TABLE_METRICS:
            row: dict[str, Any] = {"method": method, "metric": label}
            for aus in AUS:
                m = metrics.get(run_name(method, aus), {})
                v = m.get(key)
                row[f"ours_{aus}"] = math.nan if v is None else float(v)
            for ds in ("rafdb", "affectnet7"):
                for aus in AUS:
                    row[f"{ds}_{aus}"] = paper_value(paper, ds, method, key, aus)
            rows.append(row)
    return pd.DataFrame(rows)


def shortcut_table(metrics: Mapping[str, Mapping[str, Any]], methods: Sequence[str]) -> pd.DataFrame:
    """Accuracy on test images with no cue / an agreeing cue / a conflicting cue (synthetic shortcut demo; runs whose
    test images carry no mark are left out)."""
    rows = []
    for method in methods:
        for aus in AUS:
            m = metrics.get(run_name(method, aus), {})
            if not any(k in m for k, _ in SHORTCUT):
                continue
            if not any(m.get(f"n_{key.removeprefix('cl_')}") for key, _ in SHORTCUT[1:]):
                continue  # no test image carries the mark (synthetic.shortcut off): nothing to split
            row = {"run": run_name(method, aus)}
            for key, label in SHORTCUT:
                v = m.get(key)
                row[label] = math.nan if v is None else float(v)
                row[f"n {label}"] = m.get(f"n_{key.removeprefix('cl_')}", "")
            rows.append(row)
    return pd.DataFrame(rows)


def recall_table(metrics: Mapping[str, Mapping[str, Any]], methods: Sequence[str]) -> pd.DataFrame:
    """Per-class recall (%): one row per class, a column per run (`details.json` `per_class.<class>.acc`: the share of
    that class's test images predicted as it), and the class's test images; empty when no run has per-class numbers."""
    runs = [(m, aus) for m in methods for aus in AUS if metrics.get(run_name(m, aus), {}).get("per_class")]
    rows = []
    for name in LABELS:
        row: dict[str, Any] = {"class": name}
        n = ""
        for method, aus in runs:
            cls = metrics[run_name(method, aus)]["per_class"].get(name) or {}
            v = cls.get("acc")
            row[f"{method} {'w/' if aus == 'aus' else 'w/o'} AUs"] = math.nan if v is None else float(v)
            n = cls.get("n", n)
        row["n"] = n
        rows.append(row)
    return pd.DataFrame(rows) if runs else pd.DataFrame()


def method_notes(methods: Sequence[str]) -> list[str]:
    """The notes of METHOD_NOTES for the methods in the report (the gradient note once for all three)."""
    keys = {"gradcampp": "gradcam", "layercam": "gradcam"}
    wanted = dict.fromkeys(keys.get(m, m) for m in methods)
    return [METHOD_NOTES[m] for m in wanted if m in METHOD_NOTES]


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "–" if math.isnan(v) else (f"{v:.2f}" if abs(v) >= 1.5 else f"{v:.3f}")
    return str(v)


def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub markdown table (no extra dependency)."""
    head = "| " + " | ".join(df.columns) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def render_report(
    table: pd.DataFrame,
    shortcut: pd.DataFrame,
    dataset: str,
    notes: Sequence[str] = (),
    recall: pd.DataFrame | None = None,
    aumaps: str = "",
) -> str:
    """The whole `reports/tables.md` text (`recall`: `recall_table`, shown under the main table; `aumaps`: the AU-map
    counts of the dataset, `fer_pipeline.report.aumaps.summary_text`)."""
    t = table.rename(
        columns={
            "ours_noaus": f"{dataset} w/o AUs",
            "ours_aus": f"{dataset} w/ AUs",
            "rafdb_noaus": "paper RAF-DB w/o",
            "rafdb_aus": "paper RAF-DB w/",
            "affectnet7_noaus": "paper AffectNet-7 w/o",
            "affectnet7_aus": "paper AffectNet-7 w/",
        }
    )
    parts = [
        "# fer_pipeline report",
        "",
        f"Measured on `{dataset}` (test split) beside the paper's Tables 1–2 (ResNet50, layer 5, RAF-DB / AffectNet-7).",
        "CL = top-1 accuracy (%); macro-F1 = F1 averaged over the 7 classes (the paper reports none); CAM-COS / ATT-COS",
        "= cosine between the ground-truth-class CAM / the layer-5 attention and the AU map, mean per class, macro over",
        "the six AU classes (neutral excluded), computed as the paper's reference code does: the CAM min-max normalised,",
        "the attention the raw channel mean, upsampled and shifted only when negative (its background level counts).",
        "ATT-COS (min-max T_l) scores the min-max attention instead, which ignores that level (no paper value). Paper",
        "ATT-COS is Table 2.",
        "",
        to_markdown(t),
    ]
    if recall is not None and not recall.empty:
        parts += ["", "## Per-class recall", ""]
        parts += ["Recall (%) of each class on the test split (a rare class can hide behind a good CL); n = its test images.", ""]
        pct = recall.map(lambda v: ("–" if math.isnan(v) else f"{v:.1f}") if isinstance(v, float) else v)  # 0 % reads 0.0
        parts.append(to_markdown(pct))
    if not shortcut.empty:
        parts += ["", "## Shortcut cue (synthetic)", ""]
        parts += ["Test accuracy (%) by whether the class-coloured mark is absent, agrees or conflicts.", ""]
        parts.append(to_markdown(shortcut))
    if aumaps:
        parts += ["", "## AU maps", ""]
        parts += [f"The whole dataset (every split): {aumaps}. A row without a map trains on the cross-entropy alone "
                  "and is left out of CAM-COS and ATT-COS."]
    if notes:
        parts += ["", "## Notes", "", *[f"- {n}" for n in notes]]
    return "\n".join(parts) + "\n"


#: Rows of the cross-dataset table (details key, label).
CROSS_METRICS = (*METRICS, ("n", "n"))


def cross_table(by_dataset: Mapping[str, Mapping[str, Mapping[str, Any]]], methods: Sequence[str]) -> pd.DataFrame:
    """One row per method × metric, one column per (test dataset, run): `by_dataset` maps a test dataset's label (the
    own test split first, then each extra dataset) to its runs' details (run name -> details dict)."""
    rows = []
    for method in methods:
        for key, label in CROSS_METRICS:
            row: dict[str, Any] = {"method": method, "metric": label}
            for ds, metrics in by_dataset.items():
                for aus in AUS:
                    v = metrics.get(run_name(method, aus), {}).get(key)
                    cell = math.nan if v is None else (str(int(v)) if key == "n" else float(v))  # a count prints as one
                    row[f"{ds} {'w/' if aus == 'aus' else 'w/o'}"] = cell
            rows.append(row)
    return pd.DataFrame(rows)


def missing_classes(details: Mapping[str, Any]) -> list[str]:
    """The canonical classes with no test image in a run's details (its `per_class` counts), in label order."""
    per_class = details.get("per_class", {})
    return [c for c in LABELS if not (per_class.get(c) or {}).get("n")]


def render_cross(table: pd.DataFrame, missing: Mapping[str, Sequence[str]]) -> str:
    """The cross-dataset section of `reports/tables.md` (empty without extra test datasets): the table and, per extra
    dataset that lacks classes, a line saying which (their per-class scores are absent; macro means skip them)."""
    if table.empty:
        return ""
    parts = [
        "",
        "## Cross-dataset evaluation",
        "",
        "Every trained model on its own test split and on each extra test dataset (`crossdata`): same labels, same",
        "codebook. CL = top-1 accuracy (%); n = test images.",
        "",
        to_markdown(table),
    ]
    notes = [f"- `{ds}` has no test image of {', '.join(cls)}: macro means are over the classes present."
             for ds, cls in missing.items() if cls]
    return "\n".join(parts + ([""] + notes if notes else [])) + "\n"


def with_cross_columns(table: pd.DataFrame, cross: pd.DataFrame, own: str) -> pd.DataFrame:
    """`build_table`'s table (its rows, in its order) with the cross table's extra-dataset columns (those not starting
    with `own`) joined on method and metric; unchanged without extra datasets."""
    if cross.empty:
        return table
    cols = [c for c in cross.columns if c not in ("method", "metric") and not c.startswith(own)]
    extra = cross[cross["metric"].isin(table["metric"])]
    extra = extra.astype({c: float for c in cols})[["method", "metric", *cols]]
    return table.merge(extra, on=["method", "metric"], how="left")
