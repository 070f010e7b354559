"""λ = 0 vs codebook guidance vs active guidance, from `dvc exp show --json` (guide with the AUs a face shows).

The λ = 0 run is shared: its metrics come from the without-AUs run of a codebook-mode state (the baseline commit, not
retrained by `dvc exp run -S aumaps.mode=active`); codebook guidance from that state's with-AUs run; active guidance
from the with-AUs run of a state with `aumaps.mode: active`. All three are scored against the same reference, the true
active-AU map of each test face (evaluate's `active_*` keys), so they compare; the usual CAM-COS / ATT-COS are against
each run's own AU map store and are not comparable across modes.
"""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from fer_pipeline.core import paths
from fer_pipeline.evaluate.headline import flatten
from fer_pipeline.report.ablations import exp_states, file_data
from fer_pipeline.report.tables import run_name, to_markdown

#: Metrics compared (label, higher is better).
KEYS: dict[str, tuple[str, bool]] = {
    "cl": ("CL (%)", True),
    "macro_f1": ("macro-F1", True),
    "active_cam_cos": ("CAM-COS vs true AUs", True),
    "active_att_cos": ("ATT-COS vs true AUs", True),
    "active_cam_pointing": ("CAM pointing", True),
    "active_att_pointing": ("ATT pointing", True),
    "active_cam_energy": ("CAM energy share", True),
    "active_att_energy": ("ATT energy share", True),
    "att_absent_share": ("ATT on absent AUs (lower better)", False),
}
RUNS = ("λ = 0", "codebook guidance", "active guidance")


def git_details(rev: str, run: str) -> dict[str, Any]:
    """Every metric of `run` at git revision `rev` (`plots/<run>/details.json`, a git-tracked DVC output, so each
    experiment's ref holds it), or the workspace's file; {} where there is none."""
    path = paths.details_path(run)
    if rev == "workspace":
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    res = subprocess.run(["git", "show", f"{rev}:{path.as_posix()}"], capture_output=True, text=True, check=False)
    return json.loads(res.stdout) if res.returncode == 0 else {}


def guidance_table(
    entries: Sequence[Mapping[str, Any]],
    method: str = "cam",
    details: Callable[[str, str], Mapping[str, Any]] = git_details,
) -> pd.DataFrame:
    """One row per RUNS entry and `train.seed` found (first state of each mode and seed): run, seed, experiment,
    au_presence, λ, then KEYS. The true-AU scores are not headline metrics: they come from each state's
    `plots/<run>/details.json` (`details(rev, run)`), over the headline metrics `dvc exp show` lists."""
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for name, state in exp_states(entries):
        data = state["data"]
        params = file_data(data.get("params", {}), "params.yaml")
        mode = str(params.get("aumaps", {}).get("mode", "codebook"))
        seed = int(params.get("train", {}).get("seed", 0))
        common = {
            "seed": seed,
            "experiment": name,
            "au_presence": params.get("synthetic", {}).get("au_presence", math.nan),
            "lambda": float(params.get("train", {}).get("lambda", math.nan)),
        }
        for aus, run in (("noaus", RUNS[0]), ("aus", RUNS[1] if mode == "codebook" else RUNS[2])):
            if aus == "noaus" and mode != "codebook":
                continue  # an active-mode state's λ = 0 metrics are the shared baseline's (not retrained)
            raw = file_data(data.get("metrics", {}), f"metrics/{run_name(method, aus)}.json")
            m = {**raw, **flatten(raw), **details(str(state.get("rev")), run_name(method, aus))}
            if (run, seed) in found or "active_cam_cos" not in m:
                continue
            row = {"run": run, **common, "lambda": 0.0 if aus == "noaus" else common["lambda"]}
            found[run, seed] = row | {k: float(m[k]) if m.get(k) is not None else math.nan for k in KEYS}
    return pd.DataFrame([found[k] for k in sorted(found, key=lambda k: (k[1], RUNS.index(k[0])))])


def seed_means(table: pd.DataFrame) -> pd.DataFrame:
    """Mean of KEYS per run over the seeds that have all three runs (one row per run, RUNS order; `seeds` counted)."""
    full = table.groupby("seed")["run"].nunique()
    sub = table[table["seed"].isin(full[full == len(RUNS)].index)]
    means = sub.groupby("run")[list(KEYS)].mean().reindex([r for r in RUNS if r in set(sub["run"])])
    means.insert(0, "seeds", sub.groupby("run")["seed"].nunique())
    return means.reset_index()


def winners(table: pd.DataFrame) -> dict[str, str]:
    """Metric key -> the run that scores best on it ("tie: a, b" when equal to 4 decimals); one row per run."""
    out = {}
    for key, (_, higher) in KEYS.items():
        col = table[key].round(4)
        if col.isna().all():
            continue
        best = col.max() if higher else col.min()
        out[key] = ", ".join(table.loc[col == best, "run"])
        if (col == best).sum() > 1:
            out[key] = f"tie: {out[key]}"
    return out


def render_guidance(table: pd.DataFrame, notes: Sequence[str] = ()) -> str:
    """`reports/guidance.md`: the three-way table per seed, the mean over seeds, and the winner of each metric (means)."""
    labels = {k: label for k, (label, _) in KEYS.items()}
    shown = table.rename(columns=labels)
    for col in ("lambda", "au_presence"):
        shown[col] = [f"{float(v):g}" for v in table[col]]
    means = seed_means(table)
    win = winners(means)
    parts = [
        "# Guidance with the AUs a face shows (from `dvc exp show --json`)",
        "",
        "All map scores are against each test face's *true active-AU map* (the AUs the synthetic face really shows).",
        "",
        to_markdown(shown),
        "",
        f"Mean over the seeds with all three runs ({int(means['seeds'].min()) if len(means) else 0}):",
        "",
        to_markdown(means.rename(columns=labels)),
        "",
        "Best per metric (means):",
        "",
        *[f"- {KEYS[k][0]}: {who}" for k, who in win.items()],
    ]
    if notes:
        parts += ["", *[f"- {n}" for n in notes]]
    return "\n".join(parts) + "\n"
