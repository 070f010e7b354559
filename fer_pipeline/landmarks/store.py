"""The landmark store `data/landmarks/<dataset>.h5`: one row per manifest row (schema: docs/reference/architecture.md,
"The stores")."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from fer_pipeline.core import h5
from fer_pipeline.core.io import atomic_path
from fer_pipeline.landmarks.quality import landmark_quality

N_POINTS = 68


class Status(IntEnum):
    """Per-row outcome; a failure is a status, never a dropped row."""

    OK = 0
    NO_FACE = 1
    UNREADABLE = 2
    FALLBACK = 3
    IMPORTED = 4
    INVALID_IMPORT = 5
    IMPLAUSIBLE = 6  # points found, but they fail `landmarks.min_quality` (reason: which check); no AU map on them


#: Statuses whose landmarks are usable for AU maps.
USABLE = (Status.OK, Status.FALLBACK, Status.IMPORTED)


@dataclass
class LandmarkTable:
    """In-memory form of the store."""

    sample_id: list[str]
    landmarks: np.ndarray  # float32 (N, 68, 2), x/y pixels, NaN where failed
    image_size: np.ndarray  # int32 (N, 2) H, W
    status: np.ndarray  # uint8 (N,)
    attrs: dict[str, Any] = field(default_factory=dict)
    reason: list[str] | None = None  # why a row is not ok ("" where it is); None -> all ""
    # Per-row quality (`quality.py`): jaw / inner points outside the image, shape residual (IODs); None -> computed
    # from the landmarks (a store written before these datasets existed reads the same way).
    outside_jaw: np.ndarray | None = None
    outside_inner: np.ndarray | None = None
    residual: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.sample_id)
        self.landmarks = np.asarray(self.landmarks, dtype=np.float32).reshape(n, N_POINTS, 2)
        self.image_size = np.asarray(self.image_size, dtype=np.int32).reshape(n, 2)
        self.status = np.asarray(self.status, dtype=np.uint8).reshape(n)
        self.reason = [""] * n if self.reason is None else [str(r) for r in self.reason]
        if len(self.reason) != n:
            raise ValueError(f"reason must have one entry per row ({n}), got {len(self.reason)}")
        if self.outside_jaw is None or self.outside_inner is None or self.residual is None:
            q = landmark_quality(self.landmarks, self.image_size)
            self.outside_jaw, self.outside_inner, self.residual = q.outside_jaw, q.outside_inner, q.residual
        self.outside_jaw = np.asarray(self.outside_jaw, dtype=np.uint8).reshape(n)
        self.outside_inner = np.asarray(self.outside_inner, dtype=np.uint8).reshape(n)
        self.residual = np.asarray(self.residual, dtype=np.float32).reshape(n)

    @property
    def usable(self) -> np.ndarray:
        """bool (N,): rows whose landmarks can be used."""
        return np.isin(self.status, [int(s) for s in USABLE])

    def status_counts(self) -> dict[str, int]:
        """Count of rows per status name (every status listed, zeros included)."""
        return {s.name.lower(): int((self.status == s).sum()) for s in Status}


#: Per-row quality datasets of the store and their dtypes (absent in stores written before: computed on reading).
QUALITY = {"outside_jaw": np.uint8, "outside_inner": np.uint8, "residual": np.float32}
#: Rows per HDF5 chunk of the per-row datasets (the stores grow block by block, so the chunking cannot follow N).
CHUNK_ROWS = 1024


@contextlib.contextmanager
def stream_landmark_store(path: str | Path, attrs: Mapping[str, Any] | None = None) -> Iterator[Callable[[LandmarkTable], None]]:
    """Create the store and yield `put(table)`, which appends a block of rows (memory: one block, not N rows); the
    attributes (`attrs`, else the first block's) are written at the end; atomic and deterministic (same blocks →
    same bytes)."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        shapes = {"sample_id": (), "landmarks": (N_POINTS, 2), "image_size": (2,), "status": (), "reason": ()}
        shapes.update(dict.fromkeys(QUALITY, ()))
        dtypes = {"sample_id": h5.STR, "landmarks": np.float32, "image_size": np.int32, "status": np.uint8, "reason": h5.STR}
        dtypes.update(QUALITY)
        ds = {
            name: f.create_dataset(
                name, shape=(0, *shape), maxshape=(None, *shape), dtype=dtypes[name], chunks=(CHUNK_ROWS, *shape),
                compression="gzip" if name == "landmarks" else None, track_times=False,
            )
            for name, shape in shapes.items()
        }
        seen: dict[str, Any] = {} if attrs is None else dict(attrs)
        first = [attrs is None]

        def put(table: LandmarkTable) -> None:
            n0, k = int(ds["status"].shape[0]), len(table.sample_id)
            if first[0]:
                seen.update(table.attrs)
                first[0] = False
            values = {
                "sample_id": np.array(table.sample_id, dtype=object),
                "landmarks": table.landmarks,
                "image_size": table.image_size,
                "status": table.status,
                "reason": np.array(table.reason or [""] * k, dtype=object),
                **{name: getattr(table, name) for name in QUALITY},
            }
            for name, d in ds.items():
                d.resize(n0 + k, axis=0)
                if k:
                    d[n0 : n0 + k] = values[name]

        yield put
        h5.set_attrs(f, {"convention": "ibug68", **seen})


def write_landmark_store(path: str | Path, table: LandmarkTable) -> None:
    """Write a whole in-memory table atomically and deterministically (one block of `stream_landmark_store`)."""
    with stream_landmark_store(path) as put:
        put(table)


def open_landmark_store(path: str | Path) -> h5py.File:
    """The store opened read-only; a missing file says what makes it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"landmark store {path} not found; run `dvc repro landmarks` (or `dvc pull {path}`)")
    return h5py.File(path, "r")


def landmark_rows(f: h5py.File, rows: slice) -> LandmarkTable:
    """Rows `rows` of an open store (a block reader's memory then does not grow with N)."""
    return LandmarkTable(
        sample_id=h5.read_strings(f["sample_id"], rows),
        landmarks=f["landmarks"][rows],
        image_size=f["image_size"][rows],
        status=f["status"][rows],
        attrs={k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()},
        reason=h5.read_strings(f["reason"], rows) if "reason" in f else None,
        **{name: (f[name][rows] if name in f else None) for name in QUALITY},
    )


def read_landmark_store(path: str | Path) -> LandmarkTable:
    """Read the whole store (≈ 550 bytes a row: 300k rows ≈ 165 MB; `landmark_rows` reads a slice)."""
    with open_landmark_store(path) as f:
        return landmark_rows(f, slice(None))


def read_status(path: str | Path) -> tuple[list[str], np.ndarray, list[str]]:
    """sample_id, status and reason only (what the train/evaluate stages need to skip unusable images; no landmarks)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"landmark store {path} not found; run `dvc repro landmarks` (or `dvc pull {path}`)")
    with h5py.File(path, "r") as f:
        ids = h5.read_strings(f["sample_id"])
        status = f["status"][()].astype(np.uint8)
        reason = h5.read_strings(f["reason"]) if "reason" in f else [""] * len(ids)
    return ids, status, reason
