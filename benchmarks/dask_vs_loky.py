"""dask.distributed (a LocalCluster of 2 worker processes) vs loky with 2 jobs for `landmarks` (dlib68 HOG) and `aumaps`.

    PYTHONPATH=. python benchmarks/dask_vs_loky.py [--repeats 3] [--photos 48] [--rows 40000]

Same chunks on both engines (the bytes are checked equal). Warm: workers started and models loaded beforehand (loky
keeps its pool; the dask cluster is one Client for all calls), engines alternated loky, dask, loky, ... so load drifts
hit both. Cold: what one stage run pays when dask starts its own LocalCluster (no DASK_SCHEDULER_ADDRESS), beside
loky starting its pool. Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import distributed
import numpy as np
from common import interleaved, machine
from joblib.externals.loky import get_reusable_executor
from landmarks import write_images

from fer_pipeline.aumaps.build import build_aumaps
from fer_pipeline.landmarks import dlib68
from fer_pipeline.landmarks.extract import Dlib68Backend
from fer_pipeline.landmarks.store import LandmarkTable

ENGINES = ("loky", "dask")


def aumap_input(rows: int) -> tuple[list[str], np.ndarray, LandmarkTable]:
    """`rows` rows of synthetic-like landmarks (a 112 px face, jittered) with labels, as the aumaps stage reads them."""
    rng = np.random.default_rng(0)
    from fer_pipeline.data.synthetic import SyntheticConfig, make_sample

    base = make_sample(0, 0, 1, "train", SyntheticConfig(size=112)).landmarks
    points = (base[None] + rng.normal(0, 1.0, (rows, 68, 2))).astype(np.float32)
    ids = [f"r{i:06d}" for i in range(rows)]
    table = LandmarkTable(ids, points, np.tile([112, 112], (rows, 1)), np.zeros(rows, np.uint8))
    return ids, np.arange(rows) % 7, table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--photos", type=int, default=48)
    ap.add_argument("--rows", type=int, default=40000)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        photos, _ = write_images(root, args.photos, 0)
        cfg = dlib68.Dlib68Config("hog", ())
        ids, labels, table = aumap_input(args.rows)
        aumap_kw = {"n_jobs": 2, "chunk_size": 1024, "progress": False}

        def stages(engine: str) -> dict[str, Callable[[], object]]:
            backend = Dlib68Backend(cfg, n_jobs=2, chunk_size=4, joblib_backend=engine, progress=False)
            return {
                "landmarks": lambda: backend.extract(photos, root).landmarks.tobytes(),
                "aumaps": lambda: build_aumaps(ids, labels, table, backend=engine, **aumap_kw)[0].tobytes(),
            }

        cold: dict[str, list[float]] = {e: [] for e in ENGINES}
        for _ in range(args.repeats):  # a fresh pool / cluster each time: the landmarks stage as one run pays it
            for engine in ENGINES:
                get_reusable_executor().shutdown(wait=True)
                backend = Dlib68Backend(cfg, n_jobs=2, chunk_size=4, joblib_backend=engine, progress=False)
                t = time.perf_counter()
                backend.extract(photos, root)
                backend.close()  # the stage closes its LocalCluster at the end
                cold[engine].append(time.perf_counter() - t)

        with distributed.Client(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"):
            runs = {(stage, e): fn for e in ENGINES for stage, fn in stages(e).items()}
            outputs = {k: fn() for k, fn in runs.items()}  # warm-up: pools, clusters and models up; bytes compared
            for stage in ("landmarks", "aumaps"):
                assert outputs[(stage, "loky")] == outputs[(stage, "dask")], f"{stage}: dask and loky differ"
            times = interleaved({f"{s} {e}": fn for (s, e), fn in runs.items()}, args.repeats)
    print(f"after: {machine()}\n")
    print(f"| work | loky 2 jobs | dask 2 workers | dask / loky time (paired median) |  (median of {args.repeats})")
    print("|---|---:|---:|---:|")
    rows = {
        f"landmarks, {args.photos} 512 px photos, HOG, warm": ("landmarks loky", "landmarks dask"),
        f"aumaps, {args.rows} rows, warm": ("aumaps loky", "aumaps dask"),
    }
    for name, (a, b) in rows.items():
        ratio = statistics.median(y / x for x, y in zip(times[a], times[b], strict=True))
        print(f"| {name} | {statistics.median(times[a]):.2f} s | {statistics.median(times[b]):.2f} s | {ratio:.2f} |")
    ratio = statistics.median(y / x for x, y in zip(cold["loky"], cold["dask"], strict=True))
    print(f"| landmarks, {args.photos} photos, cold (pool / LocalCluster started) | {statistics.median(cold['loky']):.2f} s | "
          f"{statistics.median(cold['dask']):.2f} s | {ratio:.2f} |")


if __name__ == "__main__":
    main()
