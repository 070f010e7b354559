"""The AU map store `data/aumaps/<dataset>.h5`: one uint8 map per manifest row, same order (schema:
docs/reference/architecture.md, "The stores")."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from fer_pipeline import __version__
from fer_pipeline.aumaps.render import from_uint8
from fer_pipeline.core import h5
from fer_pipeline.core.io import atomic_path

#: Maps per HDF5 chunk: a random read decompresses 8 maps (~0.3 ms vs ~0.8 ms at 64) for ~5 % more bytes than 64.
CHUNK_ROWS = 8
GZIP_LEVEL = 6


@dataclass
class AUMapTable:
    """In-memory form of the store."""

    sample_id: list[str]
    maps: np.ndarray  # uint8 (N, S, S); float = maps / 255
    has_map: np.ndarray  # bool (N,)
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Map side S."""
        return int(self.maps.shape[-1])


def _missing(path: Path) -> FileNotFoundError:
    """The error for a store that is not there, with what to run."""
    return FileNotFoundError(f"AU map store {path} not found; run `dvc repro aumaps` (or `dvc pull {path}`)")


#: put(start, maps_u8 (k,S,S), has_map (k,)[, ids (k,)]): write rows start..start+k-1 of a store being streamed.
PutRows = Callable[..., None]


@contextlib.contextmanager
def stream_aumap_store(
    path: str | Path, sample_ids: Sequence[str] | int, size: int, attrs: Mapping[str, Any]
) -> Iterator[PutRows]:
    """Create the store and yield `put` to write it block by block (memory: one block, not N rows); atomic on success.

    `sample_ids`: every row's id, written now, or the row count N, the ids then coming with each block
    (`put(start, maps, has, ids)`), so that not even the id list is held. Rows never `put` stay all-zero with
    has_map False. Same blocks in the same order → same bytes.
    """
    ids_now = not isinstance(sample_ids, (int, np.integer))
    n, size = (len(sample_ids) if ids_now else int(sample_ids)), int(size)
    if "size" in attrs and int(attrs["size"]) != size:
        raise ValueError(f"attrs size={attrs['size']} but the maps are {size}x{size}")
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        if ids_now:
            h5.create_strings(f, "sample_id", list(sample_ids))
        else:
            ids_ds = f.create_dataset("sample_id", shape=(n,), dtype=h5.STR, track_times=False)
        maps = f.create_dataset(
            "maps",
            shape=(n, size, size),
            dtype=np.uint8,
            chunks=(min(n, CHUNK_ROWS), size, size) if n else None,
            compression="gzip" if n else None,
            compression_opts=GZIP_LEVEL if n else None,
            track_times=False,
        )
        has_map = f.create_dataset("has_map", shape=(n,), dtype=bool, track_times=False)

        def put(start: int, block: np.ndarray, has: np.ndarray, ids: Sequence[str] | None = None) -> None:
            block, has = np.asarray(block), np.asarray(has, dtype=bool)
            if block.dtype != np.uint8 or block.shape[1:] != (size, size) or has.shape != block.shape[:1]:
                raise ValueError(f"put({start}): need uint8 (k,{size},{size}) maps and (k,) has_map, got {block.dtype} "
                                 f"{block.shape} and {has.shape}")
            if not 0 <= start <= n - len(block):
                raise ValueError(f"put({start}): rows {start}..{start + len(block) - 1} outside the store's {n} rows")
            if not ids_now:
                if ids is None or len(ids) != len(block):
                    raise ValueError(f"put({start}): a store opened with a row count needs the block's {len(block)} ids")
                ids_ds[start : start + len(block)] = np.array(list(ids), dtype=object)
            maps[start : start + len(block)] = block
            has_map[start : start + len(block)] = has

        yield put
        h5.set_attrs(f, {**attrs, "size": size, "fer_pipeline": __version__})


def write_aumap_store(
    path: str | Path, sample_ids: Sequence[str], maps_u8: np.ndarray, has_map: np.ndarray, attrs: Mapping[str, Any]
) -> None:
    """Write the store atomically and deterministically (same inputs -> same bytes); adds the fer_pipeline version."""
    maps_u8 = np.asarray(maps_u8)
    has_map = np.asarray(has_map, dtype=bool)
    n = len(sample_ids)
    if maps_u8.dtype != np.uint8 or maps_u8.ndim != 3 or maps_u8.shape[0] != n or maps_u8.shape[1] != maps_u8.shape[2]:
        raise ValueError(f"maps_u8 must be uint8 (N, S, S) with N = {n} sample ids; got {maps_u8.dtype} {maps_u8.shape}")
    if has_map.shape != (n,):
        raise ValueError(f"has_map must be bool ({n},), got shape {has_map.shape}")
    with stream_aumap_store(path, sample_ids, maps_u8.shape[-1], attrs) as put:
        if n:
            put(0, maps_u8, has_map)


def read_aumap_store(path: str | Path) -> AUMapTable:
    """Read the whole store (≈ 3 KB a row in memory at S=56: use `open_maps` for lazy per-row reads)."""
    path = Path(path)
    if not path.exists():
        raise _missing(path)
    with h5py.File(path, "r") as f:
        return AUMapTable(
            sample_id=h5.read_strings(f["sample_id"]),
            maps=f["maps"][()],
            has_map=f["has_map"][()].astype(bool),
            attrs={k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()},
        )


class AUMapReader:
    """Row-indexable, picklable view of a store for a training Dataset: `reader[i]` -> float32 (S,S) in [0,1].

    `has_map` and `attrs` are read eagerly (tiny); the maps file is opened lazily, once per process (a handle
    inherited through fork is never reused), so DataLoader workers each open their own.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise _missing(self.path)
        with h5py.File(self.path, "r") as f:
            self.has_map: np.ndarray = f["has_map"][()].astype(bool)
            self.attrs: dict[str, Any] = {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}
            self.size: int = int(f["maps"].shape[-1])
        self._file: h5py.File | None = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return int(self.has_map.shape[0])

    def _maps(self) -> h5py.Dataset:
        """The `maps` dataset, opened in this process on first use."""
        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._file["maps"]

    def __getitem__(self, index: int) -> np.ndarray:
        """float32 (S,S) map of row `index` in [0,1] (all zeros where has_map is False)."""
        return from_uint8(self._maps()[int(index)])

    def read_u8(self, rows: np.ndarray | Sequence[int]) -> np.ndarray:
        """uint8 (len(rows),S,S) maps for several rows (sorted internally for h5py, returned in the given order)."""
        rows = np.asarray(rows, dtype=np.int64)
        order = np.argsort(rows, kind="stable")
        uniq, inverse = np.unique(rows[order], return_inverse=True)
        block = self._maps()[uniq] if uniq.size else np.zeros((0, self.size, self.size), np.uint8)
        out = np.empty((rows.size, self.size, self.size), dtype=np.uint8)
        out[order] = block[inverse]
        return out

    def sample_ids(self) -> list[str]:
        """Row keys, read on demand (the manifest order)."""
        with h5py.File(self.path, "r") as f:
            return h5.read_strings(f["sample_id"])

    def close(self) -> None:
        """Close this process's handle (reopened on the next read)."""
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None
        self._pid = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_file"] = None  # h5py handles do not pickle; each process opens its own
        state["_pid"] = None
        return state


def open_maps(path: str | Path) -> AUMapReader:
    """A lazy, picklable per-row reader of the store (see `AUMapReader`)."""
    return AUMapReader(path)


class NoMaps:
    """A reader with no AU maps (`has_map` False everywhere, all-zero maps): training that reads no store, the λ = 0
    baseline, whose model must not depend on the AU maps."""

    path = None
    attrs: dict[str, Any] = {}
    #: Side of the zero maps handed out (they are never scored: has_map is False).
    size = 8

    def __init__(self, sample_ids: Sequence[str]) -> None:
        self._ids = [str(s) for s in sample_ids]
        self.has_map: np.ndarray = np.zeros(len(self._ids), dtype=bool)

    def __len__(self) -> int:
        return len(self._ids)

    def read_u8(self, rows: np.ndarray | Sequence[int]) -> np.ndarray:
        """uint8 zeros (len(rows), size, size)."""
        return np.zeros((len(rows), self.size, self.size), dtype=np.uint8)

    def sample_ids(self) -> list[str]:
        """Row keys: the sample ids it was made for, in that order."""
        return list(self._ids)
