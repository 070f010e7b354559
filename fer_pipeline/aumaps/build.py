"""Build every row's AU map from the manifest labels and the landmark store: chunked, joblib-parallel, ordered."""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from fer_pipeline.aumaps.active import au_weights, render_active
from fer_pipeline.aumaps.render import BLOCK, render_maps, to_uint8
from fer_pipeline.aumaps.store import stream_aumap_store
from fer_pipeline.aus.store import au_rows, open_au_store
from fer_pipeline.core.cluster import dask_client, ordered_map
from fer_pipeline.core.codebook import CODEBOOKS
from fer_pipeline.core.labels import LABELS, NEUTRAL
from fer_pipeline.data.manifest import iter_manifest
from fer_pipeline.landmarks.store import LandmarkTable, landmark_rows, open_landmark_store


def aumap_attrs(codebook: str, size: int, radius: float, smoothing: float) -> dict[str, Any]:
    """The store attributes that describe how the maps were rendered (plain types, for `write_aumap_store`)."""
    return {"codebook": str(codebook), "size": int(size), "radius": float(radius), "smoothing": float(smoothing)}


def check_alignment(sample_ids: Sequence[str], table: LandmarkTable, first_row: int = 0) -> None:
    """Raise if `sample_ids` (manifest order) is not exactly the landmark store's row order, naming the first bad row
    (`first_row`: the row number of both lists' first entry, when they are one block of the stage's rows)."""
    ours, theirs = list(sample_ids), table.sample_id
    if ours == theirs:
        return
    first = next((i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b), min(len(ours), len(theirs)))
    mine = repr(ours[first]) if first < len(ours) else "<end of manifest>"
    store = repr(theirs[first]) if first < len(theirs) else "<end of landmark store>"
    raise ValueError(
        f"manifest and landmark store disagree at row {first + first_row}: manifest has {mine}, landmark store has "
        f"{store}. The landmark store is stale or from another manifest: rerun the landmarks stage "
        "(`dvc repro landmarks`, or `dvc pull` the store that matches this manifest)."
    )


@dataclass(frozen=True)
class RowBlock:
    """Consecutive manifest rows from `start` with their labels and landmark-store rows (already matched by id)."""

    start: int
    sample_ids: list[str]
    labels: np.ndarray
    table: LandmarkTable
    aus: np.ndarray | None = None  # float32 (k, len(AUS)) per-image AU intensities (NaN unknown); active mode only


def table_blocks(
    sample_ids: Sequence[str],
    labels: np.ndarray | Sequence[int],
    table: LandmarkTable,
    chunk_size: int,
    aus: np.ndarray | None = None,
) -> Iterator[RowBlock]:
    """Blocks of an in-memory manifest and landmark table (checked whole first), with AU intensities (N, 18) if given."""
    check_alignment(sample_ids, table)
    lab = np.asarray(labels)
    n = len(table.sample_id)
    if lab.shape != (n,):
        raise ValueError(f"labels must have one entry per row ({n}), got shape {lab.shape}")
    ids = list(sample_ids)
    for s in range(0, n, chunk_size):
        rows = slice(s, s + chunk_size)
        part = LandmarkTable(ids[rows], table.landmarks[rows], table.image_size[rows], table.status[rows],
                             table.attrs, (table.reason or [])[rows])
        yield RowBlock(s, ids[rows], lab[rows], part, None if aus is None else np.asarray(aus, np.float32)[rows])


def file_blocks(
    manifest: str | Path, landmarks: str | Path, chunk_size: int, aus: str | Path | None = None
) -> tuple[int, Iterator[RowBlock]]:
    """(row count, blocks) read from the manifest CSV and the landmark store (and the AU store `aus`, active mode)
    `chunk_size` rows at a time: the reader holds one block, so the stage's memory does not grow with N. Each block is
    matched by id as it is read."""
    with open_landmark_store(landmarks) as f:
        n = int(f["status"].shape[0])

    def blocks() -> Iterator[RowBlock]:
        seen = 0
        with open_landmark_store(landmarks) as f, (
            open_au_store(aus, n_rows=n) if aus is not None else contextlib.nullcontext()
        ) as fa:
            for start, rows in iter_manifest(manifest, chunk_size):
                ids = rows["sample_id"].tolist()
                block = slice(start, start + len(ids))
                part = landmark_rows(f, block)
                check_alignment(ids, part, first_row=start)
                seen = start + len(ids)
                intensity = None if fa is None else au_rows(fa, block, ids, first_row=start)
                yield RowBlock(start, ids, rows["label"].to_numpy(), part, intensity)
        if seen != n:
            raise ValueError(
                f"manifest {manifest} has {seen} rows but landmark store {landmarks} has {n}: the landmark store is "
                "stale or from another manifest: rerun the landmarks stage (`dvc repro landmarks`)."
            )

    return n, blocks()


#: (start row, sample ids, uint8 maps (k,S,S), has_map (k,)) of one rendered block.
Rendered = tuple[int, list[str], np.ndarray, np.ndarray]


def _render_block(
    block: RowBlock, codebook: str, size: int, radius: float, smoothing: float, restrict: bool = True
) -> Rendered:
    """Worker: (start, ids, uint8 maps, has_map) of one block, rendered BLOCK rows at a time (float32 maps and their
    temporaries, ~50 KB a row at S=56, exist for BLOCK rows only: a worker's memory does not grow with chunk_size)."""
    t = block.table
    pts = np.where(t.usable[:, None, None], t.landmarks, np.float32(np.nan)).astype(np.float32)
    n = len(block.labels)
    out, has_map = np.zeros((n, size, size), dtype=np.uint8), np.zeros(n, dtype=bool)
    for s in range(0, n, BLOCK):
        rows = slice(s, s + BLOCK)
        if block.aus is None:
            maps, has = render_maps(pts[rows], t.image_size[rows], block.labels[rows], codebook=codebook, size=size,
                                    radius=radius, smoothing=smoothing)
        else:
            w = au_weights(block.aus[rows], block.labels[rows], codebook=codebook, restrict_to_codebook=restrict)
            maps, has = render_active(pts[rows], t.image_size[rows], w, size=size, radius=radius, smoothing=smoothing)
        out[rows], has_map[rows] = to_uint8(maps), has
    return block.start, block.sample_ids, out, has_map


def render_blocks(
    blocks: Iterable[RowBlock],
    total: int,
    *,
    codebook: str = "reference",
    size: int = 56,
    radius: float = 0.25,
    smoothing: float = 0.5,
    n_jobs: int = 1,
    chunk_size: int = 512,
    backend: str | None = None,
    progress: bool = True,
    restrict_to_codebook: bool = True,
) -> Iterator[Rendered]:
    """(start row, ids, uint8 maps, has_map) per block, in order, at most 2 blocks a worker read or rendered at once,
    so memory does not grow with the number of blocks. `chunk_size` only sets the single-worker shortcut. Blocks that
    carry AU intensities are drawn in active mode (`aumaps/active.py`, `restrict_to_codebook`), the others by codebook.
    `backend`: None or "loky" (joblib processes), "dask" (`fer_pipeline.core.cluster`: the same blocks, so the same bytes)."""
    if codebook not in CODEBOOKS:
        raise ValueError(f"unknown codebook {codebook!r}; valid: {', '.join(CODEBOOKS)}")
    if backend == "dask":
        args = (codebook, int(size), float(radius), float(smoothing), bool(restrict_to_codebook))
        with (
            dask_client(n_jobs) as client,
            tqdm(total=total, unit="maps", desc="aumaps (dask)", disable=not progress, dynamic_ncols=True) as bar,
        ):
            for out in ordered_map(_render_block, ((b, *args) for b in blocks), client, what="aumaps"):
                yield out
                bar.update(len(out[3]))
        return
    backend = None if backend == "loky" else backend
    workers = n_jobs if total > int(chunk_size) else 1  # one chunk gains nothing from workers (~1 s start-up)
    # Waves of 2 blocks a worker: joblib dispatches a new task whenever one finishes, whether or not its result was
    # consumed, so with a slower consumer (the gzip writer) the results of ALL blocks would pile up in memory.
    wave = 2 * max(1, workers if workers > 0 else (os.cpu_count() or 1))
    it = iter(blocks)
    with (
        tqdm(total=total, unit="maps", desc="aumaps", disable=not progress, dynamic_ncols=True) as bar,
        Parallel(n_jobs=workers, backend=backend, return_as="generator") as parallel,
    ):
        while batch := list(itertools.islice(it, wave)):
            for out in parallel(
                delayed(_render_block)(b, codebook, int(size), float(radius), float(smoothing), bool(restrict_to_codebook))
                for b in batch
            ):
                yield out
                bar.update(len(out[3]))


def _check_chunk_size(chunk_size: Any) -> int:
    """`aumaps.chunk_size` as a positive int."""
    if int(chunk_size) < 1:
        raise ValueError(f"aumaps.chunk_size must be >= 1, got {chunk_size}")
    return int(chunk_size)


def build_aumaps(
    sample_ids: Sequence[str],
    labels: np.ndarray | Sequence[int],
    table: LandmarkTable,
    aus: np.ndarray | None = None,
    **options: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 maps (N,size,size) and has_map bool (N,) for every manifest row, in manifest order, in memory.

    Rows are split into fixed chunks of `chunk_size` (independent of `n_jobs`, so the bytes are the same for any
    `n_jobs`); each chunk is rendered by a joblib worker (`backend`: None = loky, or e.g. "dask"). Rows whose
    landmark status is not usable, and neutral rows, get an all-zero map and has_map False. Options: codebook, size,
    radius, smoothing, n_jobs, chunk_size, backend, progress, restrict_to_codebook (`render_blocks`). `aus`: (N, 18)
    AU intensities for active mode (None: codebook mode). The stage streams instead
    (`build_aumap_store_from_files`): its memory does not grow with N.
    """
    size, chunk = int(options.get("size", 56)), _check_chunk_size(options.get("chunk_size", 512))
    n = len(table.sample_id)
    maps = np.zeros((n, size, size), dtype=np.uint8)
    has_map = np.zeros(n, dtype=bool)
    for s, _, u8, has in render_blocks(table_blocks(sample_ids, labels, table, chunk, aus), n, **options):
        maps[s : s + len(has)] = u8
        has_map[s : s + len(has)] = has
    return maps, has_map


def _stream(path: str | Path, n: int, blocks: Iterable[RowBlock], attrs: dict[str, Any], options: dict[str, Any]) -> np.ndarray:
    """Render `blocks` into the store at `path`, ids written block by block; has_map (N,) (1 byte a row)."""
    has_map = np.zeros(n, dtype=bool)
    with stream_aumap_store(path, n, int(options.get("size", 56)), attrs) as put:
        for s, ids, u8, has in render_blocks(blocks, n, **options):
            put(s, u8, has, ids)
            has_map[s : s + len(has)] = has
    return has_map


def build_aumap_store(
    path: str | Path,
    sample_ids: Sequence[str],
    labels: np.ndarray | Sequence[int],
    table: LandmarkTable,
    attrs: dict[str, Any],
    **options: Any,
) -> np.ndarray:
    """Render every row's map of an in-memory table and stream it chunk by chunk into the store; returns has_map (N,)."""
    chunk = _check_chunk_size(options.get("chunk_size", 512))
    return _stream(path, len(table.sample_id), table_blocks(sample_ids, labels, table, chunk), attrs, options)


def build_aumap_store_from_files(
    path: str | Path,
    manifest: str | Path,
    landmarks: str | Path,
    attrs: dict[str, Any],
    aus: str | Path | None = None,
    **options: Any,
) -> np.ndarray:
    """The stage: read the manifest and the landmark store (and the AU store `aus`: active mode) `chunk_size` rows at a
    time, render, and stream into the store at `path` (peak memory set by chunk_size and n_jobs, not by N); returns
    has_map (N,)."""
    n, blocks = file_blocks(manifest, landmarks, _check_chunk_size(options.get("chunk_size", 512)), aus)
    return _stream(path, n, blocks, attrs, options)


def summarize(
    labels: np.ndarray | Sequence[int], has_map: np.ndarray, table: LandmarkTable | None = None, usable: np.ndarray | None = None
) -> dict[str, Any]:
    """Counts for the stage log / metrics: rows, maps drawn, neutral rows, AU-class rows left without a map, per class.

    With the landmark `table` (or its `usable` mask): AU-class rows without usable landmarks, and AU-class rows whose
    landmarks are usable but none of whose class's regions reaches the image (`au_rows_off_image`: no map drawn)."""
    lab = np.asarray(labels)
    has_map = np.asarray(has_map, dtype=bool)
    au_rows = lab != NEUTRAL
    out: dict[str, Any] = {
        "rows": int(lab.size),
        "with_map": int(has_map.sum()),
        "neutral": int((~au_rows).sum()),
        "au_rows_without_map": int((au_rows & ~has_map).sum()),
        "per_class_with_map": {name: int((has_map & (lab == i)).sum()) for i, name in enumerate(LABELS) if i != NEUTRAL},
    }
    if table is not None:
        usable = table.usable
    if usable is not None:
        usable = np.asarray(usable, dtype=bool)
        out["au_rows_unusable_landmarks"] = int((au_rows & ~usable).sum())
        out["au_rows_off_image"] = int((au_rows & usable & ~has_map).sum())
    return out
