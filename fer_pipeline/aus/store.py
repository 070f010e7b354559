"""The AU store `data/aus/<dataset>.h5`: one row per manifest row, an intensity in [0, 1] per codebook AU (NaN unknown).

| dataset | dtype, shape | meaning |
|---|---|---|
| `sample_id` | utf-8 str (N,) | manifest key, manifest order |
| `intensity` | float32 (N, len(AUS)) | column j = AU `attrs["aus"][j]`; NaN = unknown (not measured, or a bad row) |
| `status` | uint8 (N,) | `AuStatus`: 0 ok, 1 no row in the file, 2 invalid row |
| `reason` | utf-8 str (N,) | why a row is not ok ("" where it is) |
| attrs | | `source` (none / synthetic / import), `format`, `file`, `aus` ("1,2,4,…") |

With `aus.source: none` the store has no rows (attrs only): nothing downstream reads it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from fer_pipeline.aus.formats import AUS, AuFile
from fer_pipeline.core import h5
from fer_pipeline.core.io import atomic_path

log = logging.getLogger(__name__)

SOURCES = ("none", "synthetic", "import")


class AuStatus(IntEnum):
    """Per-row outcome of matching an AU file to the manifest; a bad row is a status, never dropped."""

    OK = 0
    MISSING = 1
    INVALID = 2


@dataclass
class AuTable:
    """In-memory form of the store."""

    sample_id: list[str]
    intensity: np.ndarray  # float32 (N, len(AUS))
    status: np.ndarray  # uint8 (N,)
    reason: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)

    def status_counts(self) -> dict[str, int]:
        """Rows per status name (every status listed)."""
        return {s.name.lower(): int((np.asarray(self.status) == s).sum()) for s in AuStatus}


def align_aus(sample_ids: list[str], parsed: AuFile, source: str, attrs: dict[str, Any]) -> AuTable:
    """The file's rows in manifest order: a sample without a row is MISSING, a bad row INVALID (reason kept), NaN both."""
    index = {s: i for i, s in enumerate(parsed.sample_id)}
    n = len(sample_ids)
    out = np.full((n, len(AUS)), np.nan, np.float32)
    status = np.full(n, int(AuStatus.MISSING), np.uint8)
    reason = ["no AU row for this sample"] * n
    for r, sid in enumerate(sample_ids):
        i = index.get(sid)
        if i is None:
            continue
        if parsed.reason[i]:
            status[r], reason[r] = int(AuStatus.INVALID), parsed.reason[i]
        else:
            out[r], status[r], reason[r] = parsed.intensity[i], int(AuStatus.OK), ""
    bad = [(sid, why) for sid, why in zip(sample_ids, reason, strict=True) if why]
    if bad:
        log.warning(
            "%s: %d of %d manifest rows have no usable AU row (e.g. %s: %s)", source, len(bad), n, bad[0][0], bad[0][1]
        )
    return AuTable(list(sample_ids), out, status, reason, {**attrs, "format": parsed.format})


def write_au_store(path: str | Path, table: AuTable) -> None:
    """Write the store atomically and deterministically (no timestamps)."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        h5.create_strings(f, "sample_id", table.sample_id)
        h5.create(f, "intensity", np.asarray(table.intensity, np.float32).reshape(-1, len(AUS)))
        h5.create(f, "status", np.asarray(table.status, np.uint8))
        h5.create_strings(f, "reason", list(table.reason))
        h5.set_attrs(f, {"aus": ",".join(str(a) for a in AUS), **table.attrs})


def read_au_store(path: str | Path) -> AuTable:
    """Read the whole store (72 bytes of intensities a row); a missing file says what makes it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"AU store {path} not found; run `dvc repro aus`")
    with h5py.File(path, "r") as f:
        attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}
        aus = tuple(int(a) for a in str(attrs.get("aus", "")).split(",") if a)
        if aus != AUS:
            raise ValueError(f"AU store {path} holds AUs {aus}, this code expects {AUS}: rerun `dvc repro aus`")
        return AuTable(
            h5.read_strings(f["sample_id"]), f["intensity"][()], f["status"][()], h5.read_strings(f["reason"]), attrs
        )


def open_au_store(path: str | Path, *, n_rows: int) -> h5py.File:
    """The store opened read-only for block reads (`au_rows`), checked to hold per-image AUs for `n_rows` manifest rows."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"AU store {path} not found; run `dvc repro aus`")
    f = h5py.File(path, "r")
    source = str(f.attrs.get("source", "none"))
    aus = tuple(int(a) for a in str(f.attrs.get("aus", "")).split(",") if a)
    n = int(f["status"].shape[0])
    problem = (
        "aus.source is none: set aus.source to synthetic or import (or aumaps.mode: codebook)" if source == "none"
        else f"it holds AUs {aus}, this code expects {AUS}: rerun `dvc repro aus`" if aus != AUS
        else f"it has {n} rows, the manifest {n_rows}: rerun `dvc repro aus`" if n != n_rows
        else ""
    )
    if problem:
        f.close()
        raise ValueError(f"AU store {path} cannot give per-image AUs: {problem}")
    return f


def au_rows(f: h5py.File, rows: slice, sample_ids: list[str], first_row: int = 0) -> np.ndarray:
    """float32 (k, len(AUS)) intensities of `rows`, checked to be the rows of `sample_ids` (NaN where status is not ok)."""
    ids = h5.read_strings(f["sample_id"], rows)
    if ids != list(sample_ids):
        bad = next(i for i, (a, b) in enumerate(zip(ids + [""] * len(sample_ids), sample_ids, strict=False)) if a != b)
        raise ValueError(
            f"manifest and AU store disagree at row {first_row + bad}: manifest has {sample_ids[bad]!r}, AU store "
            f"{ids[bad] if bad < len(ids) else '<end>'!r}: the AU store is stale; rerun `dvc repro aus`"
        )
    values = f["intensity"][rows].astype(np.float32)
    values[f["status"][rows] != int(AuStatus.OK)] = np.nan
    return values
