"""What the landmark store says about bad rows: the stage summary (rows per status and per reason), a capped log
of the bad rows naming file, row and what to do, and the filter that lets training/evaluation skip unusable images.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fer_pipeline.data.probe import ADVICE
from fer_pipeline.landmarks.store import LandmarkTable, Status, read_status

log = logging.getLogger(__name__)

#: Statuses that are not failures (a reason is only expected on the others).
GOOD = (Status.OK, Status.IMPORTED)
#: Advice for failures that are not image problems.
STATUS_ADVICE: dict[Status, str] = {
    Status.NO_FACE: "no face found: check the image, or use a detector fallback / `detector: none` for face crops",
    Status.INVALID_IMPORT: "fix or add the row in the landmark file (68 finite points inside the image)",
    Status.FALLBACK: "landmarks come from a fallback detector: check them in the QA figure",
    Status.IMPLAUSIBLE: "the points fail landmarks.min_quality (inner points outside the image, or a shape far from a "
    "face): check the row in `fer landmarks qa`, try another detector, or raise min_quality",
}
#: Bad rows logged one by one per reason before the log says "... and N more".
LOG_LIMIT = 20


def row_reasons(status: np.ndarray, reason: list[str]) -> list[str]:
    """Each row's reason, falling back to the status name where a backend gave none ("" for good rows)."""
    out = []
    for s, r in zip(np.asarray(status).tolist(), reason, strict=True):
        out.append("" if Status(s) in GOOD else (r or Status(s).name.lower()))
    return out


def summarize_table(table: LandmarkTable) -> dict[str, Any]:
    """Rows, rows per status (every status, zeros included) and rows per failure reason (sorted by name)."""
    reasons = Counter(r for r in row_reasons(table.status, table.reason or [""] * len(table.status)) if r)
    return {"rows": len(table.sample_id), "status": table.status_counts(), "reasons": dict(sorted(reasons.items()))}


def merge_summaries(a: dict[str, Any] | None, b: dict[str, Any]) -> dict[str, Any]:
    """The summary of two blocks' rows together (`a` None: `b`)."""
    if a is None:
        return b
    reasons = Counter(a["reasons"]) + Counter(b["reasons"])
    return {
        "rows": a["rows"] + b["rows"],
        "status": {k: a["status"][k] + b["status"][k] for k in a["status"]},
        "reasons": dict(sorted(reasons.items())),
    }


def format_summary(summary: dict[str, Any]) -> str:
    """Two-line human form of `summarize_table`."""
    status = ", ".join(f"{k} {v}" for k, v in summary["status"].items())
    reasons = ", ".join(f"{k} {v}" for k, v in summary["reasons"].items()) or "none"
    return f"  status: {status}\n  failure reasons: {reasons}"


def advice(status: int, reason: str) -> str:
    """One line saying what to do about a bad row."""
    if reason in ADVICE:
        return ADVICE[reason]
    return STATUS_ADVICE.get(Status(status), "see the landmark backend's log")


class BadRowLog:
    """Warn once per bad row (file, manifest row, status, reason, what to do), at most `limit` per reason, over the
    blocks of a streamed stage; `close` says how many more each reason had."""

    def __init__(self, source: str, limit: int = LOG_LIMIT) -> None:
        self.source, self.limit, self.seen = source, int(limit), Counter[str]()

    def add(self, table: LandmarkTable, paths: list[str], first_row: int = 0) -> None:
        """Log the bad rows of a block whose first row is manifest row `first_row` (0-based)."""
        reasons = row_reasons(table.status, table.reason or [""] * len(paths))
        for i, r in enumerate(reasons):
            if not r:
                continue
            self.seen[r] += 1
            if self.seen[r] <= self.limit:
                status = int(table.status[i])
                log.warning(
                    "%s row %d (%s, %s): status %s: %s (%s)",
                    self.source,
                    first_row + i + 2,
                    table.sample_id[i],
                    paths[i],
                    Status(status).name.lower(),
                    r,
                    advice(status, r),
                )

    def close(self) -> None:
        """One line per reason that had more rows than were logged."""
        for r, n in sorted(self.seen.items()):
            if n > self.limit:
                log.warning("%s: ... and %d more rows with reason %r (the store's `reason` lists them all)",
                            self.source, n - self.limit, r)


def log_bad_rows(table: LandmarkTable, paths: list[str], source: str, limit: int = LOG_LIMIT) -> None:
    """`BadRowLog` over one in-memory table."""
    bad = BadRowLog(source, limit)
    bad.add(table, paths)
    bad.close()


def skip_unusable_images(manifest: pd.DataFrame, store: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows to use, rows skipped because the landmarks stage found their image unusable, with a `reason` column).

    Training and evaluation call this once up front instead of failing on image 211,877 mid-run. Rows are matched
    by sample_id; a manifest id missing from the store means the store is stale.
    """
    ids, status, reason = read_status(store)
    at = {sid: i for i, sid in enumerate(ids)}
    sid = manifest["sample_id"].astype(str).tolist()
    missing = [s for s in sid if s not in at]
    if missing:
        raise ValueError(
            f"{len(missing)} manifest sample ids (e.g. {missing[0]!r}) are not in the landmark store {store}; "
            "rerun `dvc repro landmarks`"
        )
    rows = np.fromiter((at[s] for s in sid), dtype=np.int64, count=len(sid))
    bad = status[rows] == int(Status.UNREADABLE)
    skipped = manifest[bad].copy()
    skipped["reason"] = [reason[r] or "unreadable" for r in rows[bad]]
    return manifest[~bad], skipped


def describe_skipped(skipped: pd.DataFrame, what: str, splits: tuple[str, ...] = ("train", "val", "test")) -> str:
    """One line for the stage log: how many rows of `splits` were skipped, per reason, with the first example."""
    skipped = skipped[skipped["split"].isin(splits)]
    if skipped.empty:
        return f"{what}: every image is usable"
    counts = ", ".join(f"{k} {v}" for k, v in sorted(Counter(skipped["reason"]).items()))
    first = skipped.iloc[0]
    return (
        f"{what}: skipping {len(skipped)} rows whose image is unusable ({counts}); "
        f"e.g. {first['sample_id']} {first['path']}: {first['reason']} ({advice(int(Status.UNREADABLE), first['reason'])})"
    )
