"""Compare two revisions' runs (pure functions): before, after, change, the band of the change and a verdict.

The band of a change is the paired bootstrap band over the test images when both revisions scored the same images
(`plots/<run>/scores.csv`); else it is built from each revision's own band (`details.json`), taken as independent.
When a run was trained over several seeds, the spread of the seed mean widens the band.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fer_pipeline.evaluate.bootstrap import BANDED, LEVEL, NO_BAND, Scores, difference_band, verdict
from fer_pipeline.evaluate.headline import DIGITS, HEADLINE

#: Headline metrics reviewed (dotted as `dvc metrics diff` prints them) with their details key; counts are left out.
REVIEWED = tuple((".".join(path), key) for path, key, _ in HEADLINE if key not in ("n", "n_skipped_unusable_images"))
#: Normal quantile of the band's level (1.96 for 95 %), for bands built from half-widths.
Z = 1.959964
ADDED, REMOVED = "added", "removed"


@dataclass
class RunData:
    """What one revision holds of one run: its headline metrics (details key names), band, seed spread, scores."""

    metrics: dict[str, Any]
    band: dict[str, Any] = field(default_factory=dict)
    seeds: dict[str, Any] = field(default_factory=dict)
    scores: Scores | None = None


@dataclass(frozen=True)
class Row:
    """One line of the review."""

    run: str
    metric: str
    before: float | None
    after: float | None
    change: float | None
    band: tuple[float, float] | None
    verdict: str


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(float(value)) else None


def _half(interval: Sequence[float] | None) -> float | None:
    return None if interval is None else (float(interval[1]) - float(interval[0])) / 2.0


def _seed_half(data: RunData, key: str) -> float:
    """Half-width (at the band's level) of the seed mean of `key`: z * sd / sqrt(n seeds); 0 with one seed."""
    spread = data.seeds.get(key) or {}
    sd, values = spread.get("sd"), [v for v in spread.get("values") or [] if v is not None]
    return Z * float(sd) / math.sqrt(len(values)) if sd is not None and len(values) > 1 else 0.0


def change_band(before: RunData, after: RunData, key: str, change: float,
                paired: Mapping[str, Any] | None) -> tuple[float, float] | None:
    """The band of `after - before` for details key `key` (None when neither revision has a band for it)."""
    seed_half = math.hypot(_seed_half(before, key), _seed_half(after, key))
    if paired is not None and (paired.get(key) or {}).get("band") is not None:
        lo, hi = paired[key]["band"]
        if seed_half == 0.0:
            return float(lo), float(hi)
        boot_half = (hi - lo) / 2.0
    else:
        ha, hb = _half(before.band.get(key)), _half(after.band.get(key))
        if ha is None or hb is None:
            return None
        boot_half = math.hypot(ha, hb)
    half = math.hypot(boot_half, seed_half)
    return change - half, change + half


def _paired(before: RunData, after: RunData, run: str) -> dict[str, Any] | None:
    """The paired bootstrap band of the change when both revisions scored the same test images, else None."""
    if before.scores is None or after.scores is None or before.scores.sample_id != after.scores.sample_id:
        return None
    return difference_band(after.scores, before.scores, what=run)


def compare_runs(before: Mapping[str, RunData], after: Mapping[str, RunData]) -> list[Row]:
    """Rows for every run in either revision and every reviewed metric it has (sorted by run, headline order)."""
    rows: list[Row] = []
    for run in sorted(set(before) | set(after)):
        a, b = before.get(run), after.get(run)
        paired = _paired(a, b, run) if a is not None and b is not None else None
        for metric, key in REVIEWED:
            old = _num(a.metrics.get(key)) if a is not None else None
            new = _num(b.metrics.get(key)) if b is not None else None
            if old is None and new is None:
                continue
            if a is None or b is None:
                rows.append(Row(run, metric, old, new, None, None, ADDED if a is None else REMOVED))
                continue
            change = None if old is None or new is None else new - old
            band = None
            if change is not None and key in BANDED:
                band = change_band(a, b, key, change, paired)
            rows.append(Row(run, metric, old, new, change, band, verdict(change, band)))
    return rows


def worse(rows: Sequence[Row]) -> list[Row]:
    """The rows judged worse beyond noise (what `--fail-on-worse` fails on)."""
    return [r for r in rows if r.verdict == "worse"]


def _fmt(value: float | None, digits: int, sign: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def render(rows: Sequence[Row], before_name: str, after_name: str) -> str:
    """A fixed-width table like `asv compare`: run, metric, before, after, change, band of the change, verdict."""
    head = ("run", "metric", "before", "after", "change", f"{round(LEVEL * 100)}% band of change", "verdict")
    lines = [head]
    for r in rows:
        digits = DIGITS.get(r.metric, 4)
        band = "–" if r.band is None else f"[{r.band[0]:+.{digits}f}, {r.band[1]:+.{digits}f}]"
        lines.append((r.run, r.metric, _fmt(r.before, digits), _fmt(r.after, digits), _fmt(r.change, digits, True),
                      band, r.verdict))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    text = [f"fer review: {before_name} -> {after_name}", ""]
    for line in lines:
        text.append("  ".join(cell.ljust(w) if i in (0, 1, 6) else cell.rjust(w)
                              for i, (cell, w) in enumerate(zip(line, widths, strict=True))).rstrip())
    counts = {v: sum(r.verdict == v for r in rows) for v in ("better", "worse", "within noise", NO_BAND)}
    text += ["", ", ".join(f"{n} {v}" for v, n in counts.items() if n) or "no metrics found"]
    return "\n".join(text) + "\n"
