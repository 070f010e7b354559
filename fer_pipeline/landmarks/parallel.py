"""Run an image backend over the manifest: fixed chunks, joblib (loky or dask), one model per worker, manifest order."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed, parallel_config
from tqdm.auto import tqdm

from fer_pipeline.core.paths import resolve_inside
from fer_pipeline.data.images import ImageError, read_image
from fer_pipeline.landmarks import dlib68
from fer_pipeline.landmarks.store import N_POINTS, Status

log = logging.getLogger(__name__)
JOBLIB_BACKENDS = ("loky", "dask")

Chunk = tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]


def run_chunk(paths: list[str], boxes: np.ndarray, root: str, cfg: dlib68.Dlib68Config) -> Chunk:
    """Worker: read each image once, find its face and 68 points; (points, H W sizes, statuses, unreadable-image messages)."""
    model = dlib68.load(cfg)
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


@contextlib.contextmanager
def joblib_backend(name: str) -> Iterator[str]:
    """`loky` (local processes) or `dask` (the cluster at DASK_SCHEDULER_ADDRESS, else a local dask cluster)."""
    if name == "loky":
        yield name
        return
    if name != "dask":
        raise ValueError(f"landmarks.backend_joblib={name!r} is not one of {', '.join(JOBLIB_BACKENDS)}")
    try:
        from distributed import Client, get_client
    except ImportError:
        raise ImportError("landmarks.backend_joblib=dask needs `pip install dask distributed`") from None
    try:
        client, owned = get_client(), False
    except ValueError:  # no client yet: connect to DASK_SCHEDULER_ADDRESS (dask config) or start a local cluster
        client, owned = Client(), True
    try:
        with parallel_config(backend="dask"):
            yield name
    finally:
        if owned:
            client.close()


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
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N,68,2) points, (N,2) sizes, (N,) statuses in manifest order; chunks ignore `n_jobs`, so the bytes do too."""
    if int(chunk_size) < 1:
        raise ValueError(f"landmarks.chunk_size must be >= 1, got {chunk_size}")
    n, chunk_size = len(paths), int(chunk_size)
    boxes = np.full((n, 4), np.nan) if boxes is None else np.asarray(boxes, dtype=np.float64).reshape(n, 4)
    points = np.full((n, N_POINTS, 2), np.nan, dtype=np.float32)
    sizes = np.zeros((n, 2), dtype=np.int32)
    status = np.zeros(n, dtype=np.uint8)
    starts = range(0, n, chunk_size)
    jobs = (delayed(run_chunk)(paths[s : s + chunk_size], boxes[s : s + chunk_size], str(root), cfg) for s in starts)
    unreadable = 0
    with joblib_backend(joblib_backend_name) as backend:
        # One chunk gains nothing from workers and would pay process start-up plus a second model load.
        parallel = Parallel(n_jobs=int(n_jobs) if len(starts) > 1 else 1, backend=backend, return_as="generator")
        with tqdm(
            total=n, unit="faces", desc=f"landmarks dlib68/{cfg.detector}", disable=not progress, dynamic_ncols=True
        ) as bar:
            for s, (pts, size, st, errors) in zip(starts, parallel(jobs), strict=True):
                points[s : s + len(st)], sizes[s : s + len(st)], status[s : s + len(st)] = pts, size, st
                for message in errors:
                    if unreadable < 20:
                        log.warning("unreadable image, status unreadable: %s", message)
                    unreadable += 1
                bar.update(len(st))
    if unreadable > 20:
        log.warning("%d unreadable images in all (first 20 listed)", unreadable)
    return points, sizes, status
