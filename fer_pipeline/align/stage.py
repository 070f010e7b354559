"""The `align` stage, streamed: manifest + landmark-store blocks in, framed faces out, fixed chunks run on loky (joblib)
or dask (the landmarks stage's engine), written in manifest order; a bad row is a status, never a dropped row."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from fer_pipeline.align.framing import CHOICES, landmark_framing, resolve_mode
from fer_pipeline.align.store import AlignedBlock, stream_aligned_store, write_none_store
from fer_pipeline.align.warp import Alignment, Fallback, frame_face, framing_matrix, map_points
from fer_pipeline.core.cluster import ENGINES, dask_client, ordered_map
from fer_pipeline.core.paths import resolve_inside
from fer_pipeline.data.affectnet import BOX_COLUMNS
from fer_pipeline.data.images import ImageError, read_image
from fer_pipeline.data.manifest import iter_manifest
from fer_pipeline.landmarks.store import N_POINTS, USABLE, Status, landmark_rows, open_landmark_store

log = logging.getLogger(__name__)

#: (faces, points, matrices, statuses, reasons, fallback codes) of one chunk.
Chunk = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str], np.ndarray]


def align_chunk(
    paths: list[str], points: np.ndarray, status: np.ndarray, reason: list[str], boxes: np.ndarray, root: str,
    alignment: dict[str, Any],
) -> Chunk:
    """Worker: read each image once and frame it (`frame_face`); rows the landmarks stage could not read are not read."""
    al = Alignment.from_dict(alignment)
    n, s = len(paths), al.size
    faces = np.zeros((n, s, s, 3), np.uint8)
    pts = np.full((n, N_POINTS, 2), np.nan, np.float32)
    mats = np.full((n, 2, 3), np.nan)
    fallback = np.full(n, int(Fallback.NONE), np.uint8)
    status, reason = np.asarray(status, np.uint8).copy(), list(reason)
    usable = np.isin(status, [int(u) for u in USABLE])
    for i, rel in enumerate(paths):
        if status[i] == Status.UNREADABLE:
            continue
        try:
            rgb = read_image(resolve_inside(Path(root), rel))
        except (ImageError, ValueError) as e:
            status[i], reason[i] = int(Status.UNREADABLE), str(e)
            continue
        p = points[i] if usable[i] else None
        matrix, fb = framing_matrix(p, rgb.shape[:2], al, boxes[i])
        faces[i], _ = frame_face(rgb, p if fb == Fallback.LANDMARKS else None, al, boxes[i] if fb == Fallback.BOX else None)
        mats[i], fallback[i] = matrix, int(fb)
        if usable[i]:
            pts[i] = map_points(points[i], matrix)
    return faces, pts, mats, status, reason, fallback


def chunk_results(chunks: list[tuple[Any, ...]], n_jobs: int, engine: str, client: Any = None) -> Iterator[Chunk]:
    """`align_chunk` over the chunks, in order: loky (joblib) or dask (`fer_pipeline.core.cluster`)."""
    if engine == "dask":
        with contextlib.ExitStack() as stack:
            client = client or stack.enter_context(dask_client(n_jobs))
            yield from ordered_map(align_chunk, chunks, client, what="align")
        return
    if engine != "loky":
        raise ValueError(f"align.backend_joblib={engine!r} is not one of {', '.join(ENGINES)}")
    parallel = Parallel(n_jobs=int(n_jobs) if len(chunks) > 1 else 1, backend="loky", return_as="generator")
    yield from parallel(delayed(align_chunk)(*c) for c in chunks)


def _boxes(block: pd.DataFrame) -> np.ndarray:
    """(k, 4) dataset face boxes x, y, w, h of a manifest block (NaN where the manifest has none)."""
    if all(c in block.columns for c in BOX_COLUMNS):
        return block[list(BOX_COLUMNS)].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    return np.full((len(block), 4), np.nan)


def build_aligned_store(
    out: str | Path, manifest: str | Path, landmarks: str | Path, root: str | Path, params: dict[str, Any],
    *, progress: bool = True, framed_like: str | Path | None = None,
) -> dict[str, Any]:
    """Frame every manifest row into the store `out` (`align` params: mode, template, size, n_jobs, chunk_size,
    backend_joblib); `mode: none` writes the attributes-only store; `mode: auto` measures the landmarks' framing and
    frames as the mode it picks (the store then holds that mode's bytes); `framed_like`: the landmark store whose framing
    decides instead (an extra test dataset is framed as the model's training faces). Returns mode, framing, fallbacks."""
    requested = str(params.get("mode", "none"))
    if requested == "none":
        al = Alignment.from_dict(params)
        write_none_store(out, al)
        return {"mode": "none", "requested": "none", "rows": 0}
    source = framed_like or landmarks
    framing = landmark_framing(source) if requested in CHOICES else None
    al = Alignment.from_dict({**params, "mode": resolve_mode(requested, framing, source)})
    chunk = int(params.get("chunk_size", 256))
    if chunk < 1:
        raise ValueError(f"align.chunk_size must be >= 1, got {chunk}")
    with open_landmark_store(landmarks) as f:
        n = int(f["status"].shape[0])
        attrs = {f"landmarks_{k}": (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}
    attrs |= framing.to_attrs() if framing is not None else {}  # every warping mode: auto's store is its pick's bytes
    counts = dict.fromkeys([fb.name.lower() for fb in Fallback], 0)
    seen = 0
    with (
        open_landmark_store(landmarks) as f,
        stream_aligned_store(out, n, al, attrs) as put,
        tqdm(total=n, unit="faces", desc=f"align {al.mode}", disable=not progress, dynamic_ncols=True) as bar,
    ):
        for start, block in iter_manifest(manifest, 8 * chunk):
            ids = block["sample_id"].astype(str).tolist()
            table = landmark_rows(f, slice(start, start + len(ids)))
            if table.sample_id != ids:
                pairs = enumerate(zip(ids, table.sample_id, strict=False))
                bad = next((i for i, (a, b) in pairs if a != b), min(len(ids), len(table.sample_id)))
                raise ValueError(
                    f"manifest {manifest} and landmark store {landmarks} disagree at row {start + bad}: the store is stale "
                    "or from another manifest; rerun `dvc repro landmarks`"
                )
            rels, boxes = block["path"].astype(str).tolist(), _boxes(block)
            chunks = [
                (rels[a : a + chunk], table.landmarks[a : a + chunk], table.status[a : a + chunk],
                 (table.reason or [""] * len(ids))[a : a + chunk], boxes[a : a + chunk], str(root), al.to_dict())
                for a in range(0, len(ids), chunk)
            ]
            a = start
            for faces, pts, mats, st, reason, fb in chunk_results(chunks, int(params.get("n_jobs", 1)),
                                                                   str(params.get("backend_joblib", "loky"))):
                k = len(st)
                put(AlignedBlock(a, ids[a - start : a - start + k], faces, pts, mats, st, reason, fb))
                for code in fb:
                    counts[Fallback(int(code)).name.lower()] += 1
                a += k
                bar.update(k)
            seen = start + len(ids)
    if seen != n:
        raise ValueError(f"manifest {manifest} has {seen} rows, landmark store {landmarks} {n}: rerun `dvc repro landmarks`")
    return {"mode": al.mode, "requested": requested, "framing": framing, "rows": n, "fallback": counts}
