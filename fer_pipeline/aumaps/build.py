"""Build every row's AU map from the manifest labels and the landmark store: chunked, joblib-parallel, ordered."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from fer_pipeline.aumaps.render import BLOCK, render_maps, to_uint8
from fer_pipeline.aumaps.store import stream_aumap_store
from fer_pipeline.core.codebook import CODEBOOKS
from fer_pipeline.core.labels import LABELS, NEUTRAL
from fer_pipeline.landmarks.store import LandmarkTable


def aumap_attrs(codebook: str, size: int, radius: float, smoothing: float) -> dict[str, Any]:
    """The store attributes that describe how the maps were rendered (plain types, for `write_aumap_store`)."""
    return {"codebook": str(codebook), "size": int(size), "radius": float(radius), "smoothing": float(smoothing)}


def check_alignment(sample_ids: Sequence[str], table: LandmarkTable) -> None:
    """Raise if `sample_ids` (manifest order) is not exactly the landmark store's row order, naming the first bad row."""
    ours, theirs = list(sample_ids), table.sample_id
    if ours == theirs:
        return
    first = next((i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b), min(len(ours), len(theirs)))
    mine = repr(ours[first]) if first < len(ours) else "<end of manifest>"
    store = repr(theirs[first]) if first < len(theirs) else "<end of landmark store>"
    raise ValueError(
        f"manifest and landmark store disagree at row {first}: manifest has {mine}, landmark store has {store} "
        f"({len(ours)} vs {len(theirs)} rows). The landmark store is stale or from another manifest: rerun the "
        "landmarks stage (`dvc repro landmarks`, or `dvc pull` the store that matches this manifest)."
    )


def _render_chunk(
    landmarks: np.ndarray,
    image_size: np.ndarray,
    labels: np.ndarray,
    usable: np.ndarray,
    codebook: str,
    size: int,
    radius: float,
    smoothing: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Worker: render one chunk as uint8, BLOCK rows at a time (float32 maps and their temporaries, ~50 KB a row at
    S=56, exist for one block only: a worker's memory does not grow with chunk_size)."""
    pts = np.where(usable[:, None, None], landmarks, np.float32(np.nan)).astype(np.float32)
    n = len(labels)
    out, has_map = np.zeros((n, size, size), dtype=np.uint8), np.zeros(n, dtype=bool)
    for s in range(0, n, BLOCK):
        rows = slice(s, s + BLOCK)
        maps, has = render_maps(pts[rows], image_size[rows], labels[rows], codebook=codebook, size=size, radius=radius,
                                smoothing=smoothing)
        out[rows], has_map[rows] = to_uint8(maps), has
    return out, has_map


def render_chunks(
    sample_ids: Sequence[str],
    labels: np.ndarray | Sequence[int],
    table: LandmarkTable,
    *,
    codebook: str = "reference",
    size: int = 56,
    radius: float = 0.25,
    smoothing: float = 0.5,
    n_jobs: int = 1,
    chunk_size: int = 512,
    backend: str | None = None,
    progress: bool = True,
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(start row, uint8 maps, has_map) per chunk of `chunk_size` rows, in manifest order (see `build_aumaps`)."""
    if codebook not in CODEBOOKS:
        raise ValueError(f"unknown codebook {codebook!r}; valid: {', '.join(CODEBOOKS)}")
    if int(chunk_size) < 1:
        raise ValueError(f"aumaps.chunk_size must be >= 1, got {chunk_size}")
    check_alignment(sample_ids, table)
    lab = np.asarray(labels)
    n = len(table.sample_id)
    if lab.shape != (n,):
        raise ValueError(f"labels must have one entry per row ({n}), got shape {lab.shape}")
    size, chunk_size = int(size), int(chunk_size)
    usable = table.usable
    starts = range(0, n, chunk_size)
    jobs = (
        delayed(_render_chunk)(
            table.landmarks[s : s + chunk_size],
            table.image_size[s : s + chunk_size],
            lab[s : s + chunk_size],
            usable[s : s + chunk_size],
            codebook,
            size,
            radius,
            smoothing,
        )
        for s in starts
    )
    # One chunk gains nothing from workers and would pay ~1 s of process start-up.
    parallel = Parallel(n_jobs=n_jobs if len(starts) > 1 else 1, backend=backend, return_as="generator")
    with tqdm(total=n, unit="maps", desc="aumaps", disable=not progress, dynamic_ncols=True) as bar:
        for s, (u8, has) in zip(starts, parallel(jobs), strict=True):
            yield s, u8, has
            bar.update(len(has))


def build_aumaps(
    sample_ids: Sequence[str],
    labels: np.ndarray | Sequence[int],
    table: LandmarkTable,
    **options: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 maps (N,size,size) and has_map bool (N,) for every manifest row, in manifest order, in memory.

    Rows are split into fixed chunks of `chunk_size` (independent of `n_jobs`, so the bytes are the same for any
    `n_jobs`); each chunk is rendered by a joblib worker (`backend`: None = loky, or e.g. "dask"). Rows whose
    landmark status is not usable, and neutral rows, get an all-zero map and has_map False. Options: codebook, size,
    radius, smoothing, n_jobs, chunk_size, backend, progress (`render_chunks`). The stage streams instead
    (`build_aumap_store`): memory does not grow with N.
    """
    size = int(options.get("size", 56))
    n = len(table.sample_id)
    maps = np.zeros((n, size, size), dtype=np.uint8)
    has_map = np.zeros(n, dtype=bool)
    for s, u8, has in render_chunks(sample_ids, labels, table, **options):
        maps[s : s + len(has)] = u8
        has_map[s : s + len(has)] = has
    return maps, has_map


def build_aumap_store(
    path: str | Path,
    sample_ids: Sequence[str],
    labels: np.ndarray | Sequence[int],
    table: LandmarkTable,
    attrs: dict[str, Any],
    **options: Any,
) -> np.ndarray:
    """Render every row's map and stream it chunk by chunk into the store at `path`; returns has_map (N,)."""
    size = int(options.get("size", 56))
    with stream_aumap_store(path, sample_ids, size, attrs) as put:
        has_map = np.zeros(len(table.sample_id), dtype=bool)
        for s, u8, has in render_chunks(sample_ids, labels, table, **options):
            put(s, u8, has)
            has_map[s : s + len(has)] = has
    return has_map


def summarize(labels: np.ndarray | Sequence[int], has_map: np.ndarray, table: LandmarkTable | None = None) -> dict[str, Any]:
    """Counts for the stage log / metrics: rows, maps drawn, neutral rows, AU-class rows left without a map, per class."""
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
        out["au_rows_unusable_landmarks"] = int((au_rows & ~table.usable).sum())
    return out
