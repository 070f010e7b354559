"""The aligned-face store `data/aligned/<dataset>.h5`: per manifest row the framed face (uint8, compressed, one row a
chunk for the loader's random reads), its 68 points in the frame, the 2x3 matrix, the landmark status + reason and the
fallback used. Its point datasets (`sample_id, landmarks, image_size, status, reason`) follow the landmark store's
schema, so the AU-map renderer and evaluation read it as a landmark store of the framed images. `mode: none` writes
attributes only: later stages then read the images and the landmark store as they are."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from fer_pipeline import __version__
from fer_pipeline.align.framing import AUTO, AUTO_PICKS, Framing
from fer_pipeline.align.warp import Alignment
from fer_pipeline.core import h5
from fer_pipeline.core.io import atomic_path
from fer_pipeline.landmarks.store import N_POINTS

#: Rows per HDF5 chunk of the small per-row datasets.
CHUNK_ROWS = 1024
#: gzip level of the faces (one face a chunk: a random read decodes one face).
GZIP_LEVEL = 4


@dataclass
class AlignedBlock:
    """Rows start..start+k-1 of the store, in memory."""

    start: int
    sample_id: list[str]
    faces: np.ndarray  # uint8 (k, S, S, 3)
    landmarks: np.ndarray  # float32 (k, 68, 2) in the frame, NaN where the row has no usable landmarks
    matrix: np.ndarray  # float64 (k, 2, 3) image -> frame (NaN where nothing was framed)
    status: np.ndarray  # uint8 (k,) the landmark store's status (unreadable where the image could not be read here)
    reason: list[str]
    fallback: np.ndarray  # uint8 (k,) Fallback code


def concat(blocks: list[AlignedBlock]) -> AlignedBlock:
    """Consecutive blocks as one."""
    if len(blocks) == 1:
        return blocks[0]
    return AlignedBlock(
        blocks[0].start, [i for b in blocks for i in b.sample_id], np.concatenate([b.faces for b in blocks]),
        np.concatenate([b.landmarks for b in blocks]), np.concatenate([b.matrix for b in blocks]),
        np.concatenate([b.status for b in blocks]), [r for b in blocks for r in b.reason],
        np.concatenate([b.fallback for b in blocks]),
    )


def part(b: AlignedBlock, lo: int, hi: int) -> AlignedBlock:
    """Rows lo..hi-1 of a block (relative to its start)."""
    return AlignedBlock(b.start + lo, b.sample_id[lo:hi], b.faces[lo:hi], b.landmarks[lo:hi], b.matrix[lo:hi],
                        b.status[lo:hi], b.reason[lo:hi], b.fallback[lo:hi])


def _missing(path: Path) -> FileNotFoundError:
    return FileNotFoundError(f"aligned-face store {path} not found; run `dvc repro align` (or `dvc pull {path}`)")


@contextlib.contextmanager
def stream_aligned_store(
    path: str | Path, n: int, alignment: Alignment, attrs: Mapping[str, Any] | None = None
) -> Iterator[Callable[[AlignedBlock], None]]:
    """Create the store for `n` rows and yield `put(block)`; atomic (temp file, then rename) and deterministic."""
    s, n = alignment.size, int(n)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        specs = {
            "sample_id": ((), h5.STR, None),
            "faces": ((s, s, 3), np.uint8, "gzip"),
            "landmarks": ((N_POINTS, 2), np.float32, "gzip"),
            "image_size": ((2,), np.int32, None),
            "matrix": ((2, 3), np.float64, None),
            "status": ((), np.uint8, None),
            "reason": ((), h5.STR, None),
            "fallback": ((), np.uint8, None),
        }
        ds = {
            name: f.create_dataset(
                name, shape=(n, *shape), dtype=dtype, track_times=False,
                chunks=((1 if name == "faces" else min(n, CHUNK_ROWS)), *shape) if n else None,
                compression=comp if n else None, compression_opts=GZIP_LEVEL if comp and n else None,
            )
            for name, (shape, dtype, comp) in specs.items()
        }

        def write(b: AlignedBlock) -> None:
            k = len(b.sample_id)
            if not 0 <= b.start <= n - k:
                raise ValueError(f"aligned store: rows {b.start}..{b.start + k - 1} outside its {n} rows")
            rows = slice(b.start, b.start + k)
            ds["sample_id"][rows] = np.array(b.sample_id, dtype=object)
            ds["faces"][rows] = b.faces
            ds["landmarks"][rows] = b.landmarks
            ds["image_size"][rows] = np.tile(np.int32([s, s]), (k, 1))
            ds["matrix"][rows] = b.matrix
            ds["status"][rows] = b.status
            ds["reason"][rows] = np.array(b.reason, dtype=object)
            ds["fallback"][rows] = b.fallback

        pending: list[AlignedBlock] = []

        def flush(final: bool) -> None:
            """Write the buffered rows in whole CHUNK_ROWS blocks (the rest at the end): a compressed chunk is written once,
            so the bytes do not depend on how the caller's blocks were cut (n_jobs, chunk_size)."""
            rows = sum(len(b.sample_id) for b in pending)
            cut = rows if final else rows // CHUNK_ROWS * CHUNK_ROWS
            if cut == 0:
                return
            whole = concat(pending)
            write(part(whole, 0, cut))
            pending[:] = [part(whole, cut, rows)] if cut < rows else []

        def put(b: AlignedBlock) -> None:
            expected = pending[-1].start + len(pending[-1].sample_id) if pending else None
            if expected is not None and b.start != expected:
                raise ValueError(f"aligned store: block at row {b.start}, expected row {expected} (blocks come in order)")
            pending.append(b)
            flush(final=False)

        yield put
        flush(final=True)
        h5.set_attrs(f, {**dict(attrs or {}), **alignment.to_dict(), "convention": "ibug68", "fer_pipeline": __version__})


def write_none_store(path: str | Path, alignment: Alignment) -> None:
    """`mode: none`: a store of attributes only (a few hundred bytes), saying the images are used as they are."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        h5.set_attrs(f, {**alignment.to_dict(), "fer_pipeline": __version__})


def _attrs(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise _missing(path)
    with h5py.File(path, "r") as f:
        return {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}


def store_alignment(path: str | Path) -> Alignment:
    """The alignment a store was written with (its attributes)."""
    return Alignment.from_dict(_attrs(path))


def store_framing(path: str | Path) -> Framing | None:
    """The landmarks' framing the store measured (`align.framing`; None for `mode: none` and stores written before it)."""
    return Framing.from_attrs(_attrs(path))


def resolve_alignment(align_params: Mapping[str, Any], store: str | Path) -> Alignment:
    """The one place `align.mode` becomes a concrete alignment for the stages after `align`: a fixed mode is itself;
    `auto` is the mode the `align` stage picked and wrote into the store (checked against the framing it recorded)."""
    mode = str(align_params.get("mode", "none"))
    if mode != AUTO:
        return Alignment.from_dict(align_params)
    theirs, framing = store_alignment(store), store_framing(store)
    if framing is None or theirs.mode not in AUTO_PICKS or theirs.mode != framing.pick:
        picked = "no framing recorded" if framing is None else f"auto picks {framing.pick}"
        raise ValueError(f"aligned-face store {store} was written with align.mode {theirs.mode} ({picked}), params.yaml "
                         "asks for auto; rerun `dvc repro align`")
    return Alignment.from_dict({**align_params, "mode": theirs.mode})


def check_store(path: str | Path, alignment: Alignment) -> None:
    """Raise unless the store at `path` was written with `alignment` (params `align.*` changed, stage not rerun)."""
    theirs = store_alignment(path)
    if theirs != alignment:
        raise ValueError(
            f"aligned-face store {path} was written with {theirs.to_dict()}, params.yaml asks for {alignment.to_dict()}; "
            "rerun `dvc repro align`"
        )


def read_fallback(path: str | Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """sample_id, fallback code and status of every row (the stage summary, tests)."""
    with h5py.File(path, "r") as f:
        return h5.read_strings(f["sample_id"]), f["fallback"][()], f["status"][()]


def read_matrices(path: str | Path, sample_ids: list[str]) -> np.ndarray:
    """(N, 2, 3) image -> frame matrices of `sample_ids` (to move points given in the image files into the frames)."""
    with h5py.File(path, "r") as f:
        row_of = {sid: i for i, sid in enumerate(h5.read_strings(f["sample_id"]))}
        missing = [s for s in sample_ids if s not in row_of]
        if missing:
            raise ValueError(f"{len(missing)} samples (e.g. {missing[0]!r}) are not in {path}; rerun `dvc repro align`")
        return f["matrix"][()][[row_of[s] for s in sample_ids]]


class AlignedFaces:
    """Row-indexable, picklable reader of the faces for a training Dataset: the file is opened lazily, once per process
    (DataLoader workers each open their own)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise _missing(self.path)
        self.alignment = store_alignment(self.path)
        if self.alignment.mode == "none":
            raise ValueError(f"{self.path} says align.mode none: it holds no faces; read the images instead")
        self._file: h5py.File | None = None
        self._pid: int | None = None

    def _faces(self) -> h5py.Dataset:
        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._file["faces"]

    def __len__(self) -> int:
        return int(self._faces().shape[0])

    def face(self, row: int) -> np.ndarray:
        """uint8 (S, S, 3) RGB face of store row `row`."""
        return self._faces()[int(row)]

    def sample_ids(self) -> list[str]:
        """Row keys (the manifest order)."""
        with h5py.File(self.path, "r") as f:
            return h5.read_strings(f["sample_id"])

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_file"], state["_pid"] = None, None  # h5py handles do not pickle
        return state




def stage_inputs(align_params: Mapping[str, Any], dataset: str) -> tuple[Alignment, Path | None, Path]:
    """What the stages after `align` read: (the alignment, `auto` resolved; the aligned-face store or None = read the
    images as they are; the store of the points in the framed images: the aligned store, else the landmark store)."""
    from fer_pipeline.core import paths

    store = paths.aligned_store(dataset)
    al = resolve_alignment(align_params, store)  # align.mode auto: the mode the align stage picked
    if al.mode == "none":
        return al, None, paths.landmark_store(dataset)
    check_store(store, al)
    return al, store, store
