"""The landmarks stage, streamed: manifest blocks in, store blocks out, so its memory does not grow with N."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from fer_pipeline.core import paths
from fer_pipeline.data.manifest import iter_manifest, read_manifest
from fer_pipeline.landmarks.extract import explain_unreadable, make_backend
from fer_pipeline.landmarks.quality import Quality, implausible, min_quality_of
from fer_pipeline.landmarks.store import LandmarkTable, Status, stream_landmark_store
from fer_pipeline.landmarks.summary import BadRowLog, merge_summaries, summarize_table

#: Manifest rows read, processed and written at a time (at least 16 of the backend's joblib chunks, so workers stay busy).
BLOCK_ROWS = 4096


def block_rows(params: dict[str, Any]) -> int:
    """Rows per block for `landmarks` params: BLOCK_ROWS, or 16 joblib chunks when those are larger."""
    return max(BLOCK_ROWS, 16 * int(params.get("chunk_size", 256)))


def apply_min_quality(table: LandmarkTable, min_quality: float) -> LandmarkTable:
    """Usable rows that fail `landmarks.min_quality` (inner points outside the image, or a shape residual above it)
    become IMPLAUSIBLE with the check as reason (their points stay in the store for the QA figure); 0 = off."""
    if min_quality <= 0:
        return table
    quality = Quality(table.outside_jaw, table.outside_inner, table.residual)
    reasons = implausible(quality, table.usable, min_quality)
    bad = [i for i, r in enumerate(reasons) if r]
    table.status[bad] = int(Status.IMPLAUSIBLE)
    table.reason = [r or old for r, old in zip(reasons, table.reason or [""] * len(reasons), strict=True)]
    table.attrs = {**table.attrs, "min_quality": float(min_quality)}
    return table


def build_landmark_store(
    out: str | Path, manifest: str | Path, root: str | Path, params: dict[str, Any], *, dataset: str
) -> dict[str, Any]:
    """Run `landmarks.backend` over the manifest at `manifest` block by block into the store `out`; every manifest row
    gets a row (a failure is a status with a reason, logged naming the file and row). Returns `summarize_table`'s
    summary of all rows."""
    backend = make_backend(params, dataset, paths.prepared_dir(dataset))
    min_q = min_quality_of(params)
    bad = BadRowLog(str(manifest))
    summary: dict[str, Any] | None = None
    root = Path(root)
    with contextlib.ExitStack() as stack, stream_landmark_store(out) as put:
        if hasattr(backend, "close"):  # a dask backend's Client lives for the whole stage
            stack.callback(backend.close)
        for start, block in iter_manifest(manifest, block_rows(params)):
            table = apply_min_quality(explain_unreadable(backend.extract(block, root, first_row=start), block, root), min_q)
            put(table)
            bad.add(table, block["path"].tolist(), start)
            summary = merge_summaries(summary, summarize_table(table))
        if summary is None:  # an empty manifest still gets a store, with the backend's attributes
            empty = read_manifest(manifest)
            table = backend.extract(empty, root)
            put(table)
            summary = summarize_table(table)
    bad.close()
    return summary
