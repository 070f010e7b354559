"""Noise bands in the report: each run's bootstrap band, the paired band of each with-vs-without difference, and the
spread over training seeds when there are several (`reports/bands.json` and a section of `reports/tables.md`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from fer_pipeline.evaluate.bootstrap import BANDED, Scores, difference_band
from fer_pipeline.report.tables import METRICS, run_name, to_markdown
from fer_pipeline.review.compare import RunData, change_band, judge
from fer_pipeline.review.noise import SeedNoise

LABEL = dict(METRICS)


def method_differences(scores: Mapping[str, Scores], details: Mapping[str, Mapping[str, Any]],
                       methods: Sequence[str], noise: SeedNoise | None = None) -> dict[str, dict[str, Any]]:
    """Method -> band of (with AUs) - (without AUs) per banded metric: paired over the test images
    (`bootstrap.difference_band`), widened by the training noise as `fer review` does (`review.compare.change_band`):
    each run's own seed spread when it was trained over several seeds, else `noise` (the committed one-seed
    measurement). `known` says whether the band counts the training noise (no verdict without it)."""
    out = {}
    for m in methods:
        runs = {aus: run_name(m, aus) for aus in ("noaus", "aus")}
        paired = difference_band(scores[runs["aus"]], scores[runs["noaus"]], what=f"{m}: with vs without AUs")
        data = {aus: RunData(dict(details[r]), details[r].get("band") or {}, details[r].get("seeds") or {})
                for aus, r in runs.items()}
        for key in BANDED:
            a, b = details[runs["aus"]].get(key), details[runs["noaus"]].get(key)
            change = float(a) - float(b) if a is not None and b is not None else None
            band, known = (None, False) if change is None else change_band(
                data["noaus"], data["aus"], key, change, paired, noise, (runs["noaus"], runs["aus"]))
            paired[key] = {"change": change, "band": None if band is None else list(band), "known": known}
        out[m] = paired
    return out


def _span(interval: Sequence[float] | None, digits: int) -> str:
    return "–" if interval is None else f"[{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"


def _value(details: Mapping[str, Any], key: str, digits: int) -> str:
    """The run's number; `mean ± sd (n seeds)` when it was trained over several seeds."""
    spread = (details.get("seeds") or {}).get(key) or {}
    if spread.get("sd") is not None:
        return f"{spread['mean']:.{digits}f} ± {spread['sd']:.{digits}f} ({len(spread['values'])} seeds)"
    v = details.get(key)
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{float(v):.{digits}f}"


def bands_table(details: Mapping[str, Mapping[str, Any]], diffs: Mapping[str, Mapping[str, Any]],
                methods: Sequence[str]) -> pd.DataFrame:
    """One row per method x banded metric: each run's value and band, the change with AUs, its band and verdict."""
    rows = []
    for method in methods:
        for key in BANDED:
            digits = 2 if key == "cl" else 4
            row: dict[str, Any] = {"method": method, "metric": LABEL.get(key, key)}
            for aus, tag in (("noaus", "w/o AUs"), ("aus", "w/ AUs")):
                d = details[run_name(method, aus)]
                row[tag] = _value(d, key, digits)
                row[f"{tag} 95% band"] = _span((d.get("band") or {}).get(key), digits)
            diff = diffs.get(method, {}).get(key) or {}
            change = diff.get("change")
            row["change"] = "–" if change is None else f"{change:+.{digits}f}"
            row["change 95% band"] = _span(diff.get("band"), digits)
            row["verdict"] = judge(change, diff.get("band"), bool(diff.get("known")))
            rows.append(row)
    return pd.DataFrame(rows)


def render_bands(table: pd.DataFrame, seeds: int = 1, noise_lines: Sequence[str] = ()) -> str:
    """The `reports/tables.md` section of the noise bands; `noise_lines` say where one-seed runs' training noise came
    from (`review.noise.noise_header`)."""
    if table.empty:
        return ""
    parts = [
        "",
        "## Noise bands",
        "",
        "Each run's band: 95 % bootstrap over the test images (1000 resamples, the same for both runs of a method). The",
        "band of the change with AUs counts both noises: the test images (paired image by image) and the training",
        "(Student's t over the training seeds; a one-seed run takes the committed seed-noise measurement). A change",
        "whose band holds 0 is within noise; one with no measure of its training noise gets no verdict.",
    ]
    if seeds > 1:
        parts.append(f"Values are the mean ± standard deviation over {seeds} training seeds; each run's band is of its first "
                     "seed (train.seed); the change is of the seed means.")
    parts += ["", *(f"- {line.strip()}" for line in noise_lines), "", to_markdown(table)]
    return "\n".join(parts) + "\n"


def bands_json(details: Mapping[str, Mapping[str, Any]], diffs: Mapping[str, Mapping[str, Any]],
               methods: Sequence[str]) -> dict[str, Any]:
    """`reports/bands.json`: per run its band (and seed spread), per method the with-vs-without change and band."""
    runs = {run_name(m, a): {k: details[run_name(m, a)].get(k) for k in ("band", "seeds") if k in details[run_name(m, a)]}
            for m in methods for a in ("noaus", "aus")}
    changes = {m: {**diffs[m], **{k: {**diffs[m][k], "verdict": judge(diffs[m][k]["change"], diffs[m][k]["band"],
                                                                       diffs[m][k]["known"])}
                                  for k in BANDED}} for m in methods if m in diffs}
    return {"runs": runs, "with_vs_without": changes}
