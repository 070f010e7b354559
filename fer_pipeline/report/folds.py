"""k-fold by subject from `dvc exp show --json`: the mean and spread of each run's headline metrics over the folds.

A fold sweep (`data.folds: k`, `dvc exp run --queue -S 'data.fold=range(0,k)'`) leaves one experiment per fold. The
experiments whose params differ only in `data.fold` form one sweep; for each sweep, run and metric the report gives the
folds found (and those missing), the mean, the standard deviation, min and max (`bootstrap.seed_spread`, as for seeds)
and a 95 % Student-t interval of the mean, and, per method, the with-vs-without-AUs change paired by fold with its
interval and verdict (`bootstrap.verdict`). CK+ and JAFFE results are reported this way (mean ± sd over the folds).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from fer_pipeline.core.presets import flatten as flatten_params
from fer_pipeline.evaluate.bootstrap import BANDED, seed_spread, t_half, verdict
from fer_pipeline.evaluate.headline import flatten
from fer_pipeline.report.ablations import exp_states, file_data
from fer_pipeline.report.tables import METRICS, to_markdown

LABEL = dict(METRICS)
def _runs(metrics: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Run name -> flattened test metrics, for every `metrics/<run>.json` (not the validation files)."""
    out = {}
    for path, content in (metrics or {}).items():
        parts = str(path).replace("\\", "/").split("/")
        if len(parts) >= 2 and parts[-2] == "metrics" and parts[-1].endswith(".json") and isinstance(content, Mapping):
            out[parts[-1][: -len(".json")]] = flatten(content.get("data") or {})
    return out


def fold_table(entries: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per (fold experiment, run): name, rev, sweep (the params other than `data.fold`, as JSON), folds, fold,
    run and the banded metrics. Experiments without `data.folds` > 1 are not part of a fold sweep and are left out."""
    rows = []
    for name, state in exp_states(entries):
        rev = str(state.get("rev"))
        params = flatten_params(file_data(state["data"].get("params", {}), "params.yaml"))
        try:
            folds, fold = int(params.get("data.folds") or 0), int(params.get("data.fold") or 0)
        except (TypeError, ValueError):
            continue
        if folds < 2:
            continue
        sweep = json.dumps({k: v for k, v in params.items() if k != "data.fold"}, sort_keys=True, default=str)
        for run, m in sorted(_runs(state["data"].get("metrics", {})).items()):
            rows.append({"name": name, "rev": rev[:7], "sweep": sweep, "folds": folds, "fold": fold, "run": run,
                         **{k: float(m[k]) if m.get(k) is not None else math.nan for k in BANDED}})
    return pd.DataFrame(rows, columns=["name", "rev", "sweep", "folds", "fold", "run", *BANDED])


def sweep_labels(table: pd.DataFrame) -> dict[str, str]:
    """A short name per sweep: the params in which the sweeps differ (`train.lambda=8`), else `k folds`."""
    sweeps = list(dict.fromkeys(table["sweep"]))
    params = [json.loads(s) for s in sweeps]
    differ = sorted({k for p in params for k in p if len({json.dumps(q.get(k), default=str) for q in params}) > 1})
    out = {}
    for s, p in zip(sweeps, params, strict=True):
        label = ", ".join(f"{k}={p.get(k)}" for k in differ) if differ else f"{p.get('data.folds')} folds"
        out[s] = label
    return out


def _one_fold_each(sub: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The first experiment of each fold (a fold run twice with the same params gives the same numbers) and how many
    repeats were dropped."""
    kept = sub.drop_duplicates(["run", "fold"], keep="first")
    return kept, len(sub) - len(kept)


def fold_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per sweep, run and banded metric: folds found, missing, mean, sd, min, max and the 95 % t interval of the mean."""
    labels = sweep_labels(table) if not table.empty else {}
    rows = []
    for sweep, sub in table.groupby("sweep", sort=False):
        sub, _ = _one_fold_each(sub)
        k = int(sub["folds"].iloc[0])
        for run, runs in sub.groupby("run", sort=True):
            per_fold = {int(f): dict(r) for f, r in zip(runs["fold"], runs[list(BANDED)].to_dict("records"), strict=True)}
            spread = seed_spread(per_fold)
            missing = sorted(set(range(k)) - set(per_fold))
            for key in BANDED:
                s = spread[key]
                n = sum(v is not None for v in s["values"])
                half = t_half(s["sd"], n)
                rows.append({"sweep": labels[sweep], "run": run, "metric": key, "folds": n, "of": k,
                             "missing": ",".join(map(str, missing)), "mean": s["mean"], "sd": s["sd"], "min": s["min"],
                             "max": s["max"], "lo": None if half is None else s["mean"] - half,
                             "hi": None if half is None else s["mean"] + half})
    return pd.DataFrame(rows)


def fold_changes(table: pd.DataFrame) -> pd.DataFrame:
    """Per sweep, method and banded metric: the with-vs-without-AUs change paired by fold (folds where both runs ran),
    its mean, sd, 95 % t interval and verdict."""
    labels = sweep_labels(table) if not table.empty else {}
    rows = []
    for sweep, sub in table.groupby("sweep", sort=False):
        sub, _ = _one_fold_each(sub)
        wide = sub.pivot(index="fold", columns="run", values=list(BANDED))
        methods = sorted({r[: -len("-aus")] for r in sub["run"] if r.endswith("-aus")}
                         & {r[: -len("-noaus")] for r in sub["run"] if r.endswith("-noaus")})
        for method in methods:
            for key in BANDED:
                diff = (wide[(key, f"{method}-aus")] - wide[(key, f"{method}-noaus")]).dropna()
                n = len(diff)
                mean = float(diff.mean()) if n else None
                sd = float(diff.std(ddof=1)) if n > 1 else None
                half = t_half(sd, n)
                band = None if half is None or mean is None else (mean - half, mean + half)
                rows.append({"sweep": labels[sweep], "method": method, "metric": key, "folds": n, "change": mean,
                             "sd": sd, "lo": None if band is None else band[0], "hi": None if band is None else band[1],
                             "verdict": verdict(mean, band)})
    return pd.DataFrame(rows)


def _num(value: Any, digits: int, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{float(value):{'+' if sign else ''}.{digits}f}"


def render_folds(table: pd.DataFrame) -> str:
    """`reports/folds.md`: per sweep, each run's mean ± sd over the folds with min–max and the interval of the mean,
    then the change with AUs paired by fold, and the experiments read."""
    if table.empty:
        return "# k-fold by subject\n\nNo finished experiment has `data.folds` > 1: run a fold sweep first.\n"
    summary, changes = fold_summary(table), fold_changes(table)
    parts = ["# k-fold by subject (from `dvc exp show --json`)", "",
             "Mean ± standard deviation over the folds; the interval is the 95 % Student-t interval of the mean. "
             "With AUs − without is paired by fold.", ""]
    for label, sub in summary.groupby("sweep", sort=False):
        parts += [f"## {label}", ""]
        rows = []
        for r in sub.itertuples(index=False):
            d = 2 if r.metric == "cl" else 4
            rows.append({"run": r.run, "metric": LABEL.get(r.metric, r.metric), "folds": f"{r.folds} of {r.of}",
                         "mean ± sd": f"{_num(r.mean, d)} ± {_num(r.sd, d)}", "min – max": f"{_num(r.min, d)} – {_num(r.max, d)}",
                         "95 % interval": f"[{_num(r.lo, d)}, {_num(r.hi, d)}]", "missing folds": r.missing or "none"})
        parts += [to_markdown(pd.DataFrame(rows)), ""]
        ch = changes[changes["sweep"] == label] if not changes.empty else changes
        if not ch.empty:
            rows = []
            for r in ch.itertuples(index=False):
                d = 2 if r.metric == "cl" else 4
                rows.append({"method": r.method, "metric": LABEL.get(r.metric, r.metric), "folds": r.folds,
                             "change with AUs": _num(r.change, d, True), "sd": _num(r.sd, d),
                             "95 % interval": f"[{_num(r.lo, d, True)}, {_num(r.hi, d, True)}]", "verdict": r.verdict})
            parts += ["With AUs − without, paired by fold:", "", to_markdown(pd.DataFrame(rows)), ""]
    labels = sweep_labels(table)
    exps = table.drop_duplicates("rev")[["name", "rev", "sweep", "fold"]].assign(sweep=lambda d: d["sweep"].map(labels))
    parts += ["## Experiments", "", to_markdown(exps.sort_values(["sweep", "fold"], kind="stable")), ""]
    return "\n".join(parts)
