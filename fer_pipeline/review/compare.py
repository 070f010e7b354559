"""Compare two revisions' runs (pure functions): before, after, change, the band of the change and a verdict.

The band of a change counts both noises. The test images: the paired bootstrap band when both revisions scored the
same images (`plots/<run>/scores.csv`), else each revision's own band (`details.json`), taken as independent. The
training: a run trained over several seeds brings its own spread (Student's t on the seed mean); a one-seed run takes
the committed seed-noise measurement (`review.noise`). A one-seed run with neither gets no verdict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fer_pipeline.evaluate.bootstrap import BANDED, LEVEL, NO_BAND, Scores, difference_band, t_half, verdict
from fer_pipeline.evaluate.headline import DIGITS, HEADLINE
from fer_pipeline.review.noise import SeedNoise

#: Headline metrics reviewed (dotted as `dvc metrics diff` prints them) with their details key; counts are left out.
REVIEWED = tuple((".".join(path), key) for path, key, _ in HEADLINE if key not in ("n", "n_skipped_unusable_images"))
ADDED, REMOVED = "added", "removed"
#: The verdict of a change between runs whose training noise is not measured: never better or worse.
UNKNOWN = "1 seed, training noise unknown"


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


def seed_half(data: RunData, run: str, key: str, noise: SeedNoise | None) -> float | None:
    """95 % half-width of the training noise of the run's value of `key`: Student's t on its own seed mean when it was
    trained over several seeds, else the committed one-seed measurement; None when neither exists."""
    spread = data.seeds.get(key) or {}
    own = t_half(spread.get("sd"), len([v for v in spread.get("values") or [] if v is not None]))
    if own is not None:
        return own
    return noise.half(run, key) if noise is not None else None


def change_band(before: RunData, after: RunData, key: str, change: float, paired: Mapping[str, Any] | None,
                noise: SeedNoise | None = None, names: tuple[str, str] = ("", "")) -> tuple[tuple[float, float] | None, bool]:
    """(band of `after - before` for details key `key`, whether it counts the training noise). The band is None when
    neither has a test-image band for it; `names` are the two runs' names, under which `noise` holds their sd."""
    halves = [seed_half(before, names[0], key, noise), seed_half(after, names[1], key, noise)]
    known = all(h is not None for h in halves)
    seed = math.hypot(*(h or 0.0 for h in halves))
    if paired is not None and (paired.get(key) or {}).get("band") is not None:
        lo, hi = paired[key]["band"]
        boot_half = (float(hi) - float(lo)) / 2.0
        if seed == 0.0:
            return (float(lo), float(hi)), known
    else:
        ha, hb = _half(before.band.get(key)), _half(after.band.get(key))
        if ha is None or hb is None:
            return None, known
        boot_half = math.hypot(ha, hb)
    half = math.hypot(boot_half, seed)
    return (change - half, change + half), known


def judge(change: float | None, band: Sequence[float] | None, known: bool) -> str:
    """`bootstrap.verdict`, except that a change with no measure of its training noise gets `UNKNOWN` (when it moved)."""
    result = verdict(change, band)
    return UNKNOWN if not known and result != NO_BAND and change != 0 else result


def _paired(before: RunData, after: RunData, run: str) -> dict[str, Any] | None:
    """The paired bootstrap band of the change when both revisions scored the same test images, else None."""
    if before.scores is None or after.scores is None or before.scores.sample_id != after.scores.sample_id:
        return None
    return difference_band(after.scores, before.scores, what=run)


def compare_runs(before: Mapping[str, RunData], after: Mapping[str, RunData], noise: SeedNoise | None = None) -> list[Row]:
    """Rows for every run in either revision and every reviewed metric it has (sorted by run, headline order); `noise`
    is the training noise of one-seed runs (None: such a change gets no verdict)."""
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
            band, known = None, True
            if change is not None and key in BANDED:
                band, known = change_band(a, b, key, change, paired, noise, (run, run))
            rows.append(Row(run, metric, old, new, change, band, judge(change, band, known)))
    return rows


def worse(rows: Sequence[Row]) -> list[Row]:
    """The rows judged worse beyond noise (what `--fail-on-worse` fails on)."""
    return [r for r in rows if r.verdict == "worse"]


def _fmt(value: float | None, digits: int, sign: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def render(rows: Sequence[Row], before_name: str, after_name: str, header: Sequence[str] = ()) -> str:
    """A fixed-width table like `asv compare`: run, metric, before, after, change, band of the change, verdict;
    `header` lines (where the training noise came from) go under the title."""
    head = ("run", "metric", "before", "after", "change", f"{round(LEVEL * 100)}% band of change", "verdict")
    lines = [head]
    for r in rows:
        digits = DIGITS.get(r.metric, 4)
        band = "–" if r.band is None else f"[{r.band[0]:+.{digits}f}, {r.band[1]:+.{digits}f}]"
        lines.append((r.run, r.metric, _fmt(r.before, digits), _fmt(r.after, digits), _fmt(r.change, digits, True),
                      band, r.verdict))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    text = [f"fer review: {before_name} -> {after_name}", *header, ""]
    for line in lines:
        text.append("  ".join(cell.ljust(w) if i in (0, 1, 6) else cell.rjust(w)
                              for i, (cell, w) in enumerate(zip(line, widths, strict=True))).rstrip())
    counts = {v: sum(r.verdict == v for r in rows) for v in ("better", "worse", "within noise", UNKNOWN, NO_BAND)}
    text += ["", ", ".join(f"{n} {v}" for v, n in counts.items() if n) or "no metrics found"]
    return "\n".join(text) + "\n"
