"""Report sections beyond the paper: the extra map metrics without vs with AUs, per-AU attention shares, and the
side-by-side sample figure of the two runs of each method."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from fer_pipeline.core.labels import LABELS
from fer_pipeline.evaluate.figures import compare_figure, save_figure
from fer_pipeline.evaluate.panel import Panel, common_samples, select
from fer_pipeline.report.tables import AUS, run_name, to_markdown

#: (metrics key, label, better): the beyond-paper metrics as they appear in `metrics/<run>.json`.
EXTRA = (
    ("cam_pointing", "CAM pointing game", "higher"),
    ("cam_energy", "CAM energy share", "higher"),
    ("att_pointing", "attention pointing game", "higher"),
    ("att_energy", "attention energy share", "higher"),
    ("deletion_auc", "deletion AUC (CAM order)", "lower"),
    ("deletion_auc_random", "deletion AUC (random order)", "–"),
    ("deletion_score", "deletion score (random − CAM)", "higher"),
    ("cue_cam_share_agree", "CAM share on the mark (agrees)", "lower"),
    ("cue_cam_share_conflict", "CAM share on the mark (conflicts)", "lower"),
    ("cue_att_share_agree", "attention share on the mark (agrees)", "lower"),
    ("cue_att_share_conflict", "attention share on the mark (conflicts)", "lower"),
    ("cue_area", "mark area (uniform map's share)", "–"),
)


def _value(m: Mapping[str, Any], key: str) -> float:
    v = m.get(key)
    return math.nan if v is None else float(v)


def extra_table(metrics: Mapping[str, Mapping[str, Any]], methods: Sequence[str]) -> pd.DataFrame:
    """One row per method x extra metric present in any run: value without and with AUs and which way is better."""
    rows = []
    for method in methods:
        runs = {aus: metrics.get(run_name(method, aus), {}) for aus in AUS}
        for key, label, better in EXTRA:
            if not any(key in m for m in runs.values()):
                continue
            rows.append({"method": method, "metric": label, **{aus: _value(runs[aus], key) for aus in AUS}, "better": better})
    return pd.DataFrame(rows)


def au_share_table(metrics: Mapping[str, Mapping[str, Any]], method: str) -> pd.DataFrame:
    """Per-AU attention share (macro over the classes with the AU) without and with AUs."""
    runs = {aus: metrics.get(run_name(method, aus), {}).get("att_au_share") or {} for aus in AUS}
    aus_seen = sorted({au for r in runs.values() for au in r}, key=lambda a: int(a[2:]))
    return pd.DataFrame([{"AU": au, **{aus: _value(runs[aus], au) for aus in AUS}} for au in aus_seen])


def render_extra(metrics: Mapping[str, Mapping[str, Any]], methods: Sequence[str], figures: Mapping[str, str]) -> str:
    """Markdown sections appended to `reports/tables.md` (empty when no run has the extra metrics)."""
    table = extra_table(metrics, methods)
    if table.empty:
        return ""
    parts = [
        "",
        "## Beyond the paper: do aligned maps still explain the prediction?",
        "",
        "Pointing game: the map's maximum lies in the AU region (AU map >= 0.5). Energy share: fraction of the map's mass",
        "in that region. Deletion: probability of the predicted class while its CAM's most salient pixels are removed",
        "(area under the curve; lower = more faithful), against a random order; score = random − CAM. Macro over the",
        "six AU classes (deletion: over every class). Shortcut rows: synthetic mark, test split.",
        "",
        to_markdown(table.rename(columns={"noaus": "w/o AUs", "aus": "w/ AUs"})),
    ]
    for method in methods:
        shares = au_share_table(metrics, method)
        if not shares.empty:
            parts += ["", f"### Per-AU attention share ({method})", "", "Fraction of layer-5 attention in each AU's"]
            parts += ["region (regions split by nearest AU centre), mean over the classes with that AU.", ""]
            parts.append(to_markdown(shares.rename(columns={"noaus": "w/o AUs", "aus": "w/ AUs"})))
    if figures:
        parts += ["", "## Test samples without vs with AUs", ""]
        parts += [f"![{method}]({path})" for method, path in figures.items()]
    return "\n".join(parts) + "\n"


def write_compare_figure(panels: Mapping[str, Panel], method: str, path: str | Path) -> bool:
    """Draw the runs' shared samples side by side (image + AU map, then CAM and attention per run); False if none shared."""
    ids = common_samples(list(panels.values()))
    if not ids:
        return False
    chosen = {name: select(p, ids) for name, p in panels.items()}
    first = next(iter(chosen.values()))
    runs = {name: (p.cam, p.att) for name, p in chosen.items()}
    labels = [
        f"{s}: {LABELS[int(y)]}\npred " + ", ".join(f"{name} {LABELS[int(p.pred[i])]}" for name, p in chosen.items())
        for i, (s, y) in enumerate(zip(first.sample_id, first.label, strict=True))
    ]
    fig = compare_figure(first.image, first.au, runs, labels, f"{method}: without vs with AUs (test samples)")
    save_figure(fig, path)
    return True
