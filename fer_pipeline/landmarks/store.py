"""The landmark store `data/landmarks/<dataset>.h5` (schema in DESIGN.md): one row per manifest row."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from fer_pipeline.core import h5
from fer_pipeline.core.io import atomic_path

N_POINTS = 68


class Status(IntEnum):
    """Per-row outcome; a failure is a status, never a dropped row."""

    OK = 0
    NO_FACE = 1
    UNREADABLE = 2
    FALLBACK = 3
    IMPORTED = 4
    INVALID_IMPORT = 5


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

    def __post_init__(self) -> None:
        n = len(self.sample_id)
        self.landmarks = np.asarray(self.landmarks, dtype=np.float32).reshape(n, N_POINTS, 2)
        self.image_size = np.asarray(self.image_size, dtype=np.int32).reshape(n, 2)
        self.status = np.asarray(self.status, dtype=np.uint8).reshape(n)
        self.reason = [""] * n if self.reason is None else [str(r) for r in self.reason]
        if len(self.reason) != n:
            raise ValueError(f"reason must have one entry per row ({n}), got {len(self.reason)}")

    @property
    def usable(self) -> np.ndarray:
        """bool (N,): rows whose landmarks can be used."""
        return np.isin(self.status, [int(s) for s in USABLE])

    def status_counts(self) -> dict[str, int]:
        """Count of rows per status name (every status listed, zeros included)."""
        return {s.name.lower(): int((self.status == s).sum()) for s in Status}


def write_landmark_store(path: str | Path, table: LandmarkTable) -> None:
    """Write the store atomically and deterministically."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        h5.create_strings(f, "sample_id", table.sample_id)
        n = len(table.sample_id)
        chunk = (min(max(n, 1), 1024), N_POINTS, 2)
        h5.create(f, "landmarks", table.landmarks, chunks=chunk if n else None, compression="gzip" if n else None)
        h5.create(f, "image_size", table.image_size)
        h5.create(f, "status", table.status)
        h5.create_strings(f, "reason", table.reason or [])
        h5.set_attrs(f, {"convention": "ibug68", **table.attrs})


def read_landmark_store(path: str | Path) -> LandmarkTable:
    """Read the whole store (≈ 550 bytes a row: 300k rows ≈ 165 MB)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"landmark store {path} not found; run `dvc repro landmarks` (or `dvc pull {path}`)")
    with h5py.File(path, "r") as f:
        return LandmarkTable(
            sample_id=h5.read_strings(f["sample_id"]),
            landmarks=f["landmarks"][()],
            image_size=f["image_size"][()],
            status=f["status"][()],
            attrs={k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()},
            reason=h5.read_strings(f["reason"]) if "reason" in f else None,
        )


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
