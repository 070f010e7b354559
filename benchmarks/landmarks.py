"""Landmark throughput: faces/s/core of dlib68 with HOG detection and without detection, and the 2-job speed-up.

    PYTHONPATH=. python benchmarks/landmarks.py [--repeats 3] [--hog-faces 48] [--crop-faces 2048]

Both paths run side by side in one process, interleaved (hog n1, hog n2, none n1, none n2, ... repeated), so machine
load hits them alike; each cell is the median of the repeats. Times are whole `Dlib68Backend.extract` calls: image
read + detection + 68 points + store assembly, with warm workers (the model load is measured apart). "faces per
CPU-second" is the 1-job run's own CPU time, which a loaded machine inflates less than wall time. Prints a Markdown
table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from fer_pipeline.landmarks import dlib68
from fer_pipeline.landmarks.extract import Dlib68Backend

#: dlib's HOG box of the astronaut's face (left, top, right, bottom); the no-detection path gets this face, cropped.
FACE = (175, 76, 265, 166)


def write_images(folder: Path, n_photos: int, n_crops: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`n_photos` 512x512 astronaut photos (shifted, half mirrored) and `n_crops` ~110 px face crops, as JPEG files."""
    from skimage.data import astronaut

    img = astronaut()
    left, top, right, bottom = FACE
    pad = (right - left) // 10
    crop = img[top - pad : bottom + pad + 1, left - pad : right + pad + 1]
    rows: dict[str, list[tuple[str, str]]] = {"photo": [], "crop": []}
    for kind, n, base in (("photo", n_photos, img), ("crop", n_crops, crop)):
        for i in range(n):
            variant = np.roll(base, (i % 5) * 3, axis=1)
            variant = variant[:, ::-1] if i % 2 else variant
            rel = f"{kind}/{i:04d}.jpg"
            (folder / kind).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.ascontiguousarray(variant)).save(folder / rel, quality=92)
            rows[kind].append((f"{kind}{i}", rel))
    return (pd.DataFrame(rows["photo"], columns=["sample_id", "path"]), pd.DataFrame(rows["crop"], columns=["sample_id", "path"]))


def timed(backend: Dlib68Backend, manifest: pd.DataFrame, root: Path) -> tuple[float, float, int]:
    """Wall seconds and this process's CPU seconds for one extraction, and the number of rows with status ok."""
    t0, c0 = time.perf_counter(), time.process_time()
    table = backend.extract(manifest, root)
    return time.perf_counter() - t0, time.process_time() - c0, int((table.status == 0).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--hog-faces", type=int, default=48)
    # 2048 crops = 8 joblib chunks of 256: with 3 chunks (600 crops) 2 workers cannot beat 1.5x (2 rounds vs 3).
    ap.add_argument("--crop-faces", type=int, default=2048)
    args = ap.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        photos, crops = write_images(root, args.hog_faces, args.crop_faces)
        t0 = time.perf_counter()
        dlib68.shape_predictor()
        model_load = time.perf_counter() - t0
        paths = {"hog (512 px photos)": (photos, "hog", 4), "none (110 px crops)": (crops, "none", 50)}
        backends = {
            (name, n_jobs): Dlib68Backend(dlib68.Dlib68Config(det, ()), n_jobs=n_jobs, chunk_size=chunk, progress=False)
            for name, (_, det, chunk) in paths.items()
            for n_jobs in (1, 2)
        }
        for (name, _), backend in backends.items():  # warm-up: start the workers, load their models
            timed(backend, paths[name][0].head(2 * backend.chunk_size), root)
        times: dict[tuple[str, int], list[float]] = {k: [] for k in backends}
        cpu: dict[str, list[float]] = {name: [] for name in paths}
        found: dict[str, int] = {}
        for _ in range(args.repeats):
            for (name, n_jobs), backend in backends.items():
                seconds, cpu_seconds, ok = timed(backend, paths[name][0], root)
                times[(name, n_jobs)].append(seconds)
                if n_jobs == 1:  # in-process: its CPU time is all the work, whatever else the machine runs
                    cpu[name].append(cpu_seconds)
                found[name] = ok
    load_after = os.getloadavg()

    cpu_name = platform.processor() or platform.machine()
    print(f"machine: {cpu_name}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}")
    print(f"load average (1 min) before / after: {load_before[0]:.2f} / {load_after[0]:.2f}")
    print(f"shape predictor load: {model_load:.2f} s (once per worker)\n")
    print("| path | faces | ok | faces per CPU-second | 1 job faces/s | 2 jobs faces/s | 2 jobs faces/s/core | 2-job speed-up |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, (manifest, _, _) in paths.items():
        t1, t2, c1 = statistics.median(times[(name, 1)]), statistics.median(times[(name, 2)]), statistics.median(cpu[name])
        n = len(manifest)
        print(
            f"| {name} | {n} | {found[name]} | {n / c1:.1f} | {n / t1:.1f} | {n / t2:.1f} | {n / t2 / 2:.1f} | {t1 / t2:.2f}x |"
        )


if __name__ == "__main__":
    main()
