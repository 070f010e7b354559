"""Preprocessing memory: peak RSS of the real `landmarks` and `aumaps` stage scripts at 10k vs 40k synthetic samples.

Generating 40k faces would take minutes, so each project copy gets a synthetic landmark table directly: the
ground-truth landmarks of 700 generated faces, tiled with jitter, and one real PNG hard-linked N times (the
landmarks stage reads every image header). The stages themselves are the real `pipeline/*.py` scripts, run in a
child process each; peak RSS is the child's own (wait4) and the sampled sum over its process tree (joblib workers).
"Before" is each stage as it was: the whole manifest and table in memory, then one write.

    python benchmarks/memory.py [--sizes 10000,40000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import psutil
import yaml
from common import ROOT, machine

from fer_pipeline.core.labels import NUM_CLASSES
from fer_pipeline.core.paths import GT_LANDMARKS
from fer_pipeline.data.datasets import write_landmark_csv
from fer_pipeline.data.manifest import write_manifest
from fer_pipeline.data.synthetic import SyntheticConfig, make_sample

SIZE = 112
#: The aumaps stage as it was before streaming: every map in one (N, S, S) array, then one write.
BEFORE_AUMAPS = """
from fer_pipeline.aumaps.build import build_aumaps
from fer_pipeline.aumaps.store import write_aumap_store
from fer_pipeline.core import paths
from fer_pipeline.core.io import load_params
from fer_pipeline.data.manifest import read_manifest
from fer_pipeline.landmarks.store import read_landmark_store
p = load_params()["aumaps"]
m = read_manifest(paths.manifest_path("synthetic"))
t = read_landmark_store(paths.landmark_store("synthetic"))
maps, has = build_aumaps(m["sample_id"].tolist(), m["label"].to_numpy(), t, codebook=p["codebook"], size=p["size"],
                         radius=p["radius"], smoothing=p["smoothing"], n_jobs=p["n_jobs"], chunk_size=p["chunk_size"])
write_aumap_store(paths.aumap_store("synthetic"), m["sample_id"].tolist(), maps, has, {"size": p["size"]})
"""
#: The landmarks stage as it was before streaming: the whole manifest through the backend at once, then one write.
BEFORE_LANDMARKS = """
from fer_pipeline.core import paths
from fer_pipeline.core.io import load_params
from fer_pipeline.data.datasets import image_root
from fer_pipeline.data.manifest import read_manifest
from fer_pipeline.landmarks.extract import extract_landmarks
from fer_pipeline.landmarks.store import write_landmark_store
p = load_params()
m = read_manifest(paths.manifest_path("synthetic"))
write_landmark_store(paths.landmark_store("synthetic"), extract_landmarks(m, image_root(p["data"]), p["landmarks"]))
"""


def make_project(root: Path, n: int, base: np.ndarray) -> None:
    """params.yaml, manifest, ground-truth landmark CSV and n hard-linked images: what `prepare` would leave."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["dataset"] = "synthetic"
    params["landmarks"]["backend"] = "synthetic"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    prepared = root / "data" / "prepared" / "synthetic"
    (prepared / "images").mkdir(parents=True)
    rng = np.random.default_rng(n)
    pts = base[np.arange(n) % len(base)] + rng.normal(0.0, 0.5, (n, 68, 2)).astype(np.float32)
    ids = [f"syn_{i:06d}" for i in range(n)]
    one = prepared / "one.png"
    cv2.imwrite(str(one), np.full((SIZE, SIZE, 3), 128, np.uint8))
    for sid in ids:
        os.link(one, prepared / "images" / f"{sid}.png")
    labels = np.arange(n) % NUM_CLASSES
    split = np.where(np.arange(n) % 10 < 7, "train", np.where(np.arange(n) % 10 < 8, "val", "test"))
    manifest = pd.DataFrame({"sample_id": ids, "path": [f"images/{s}.png" for s in ids], "label": labels, "split": split})
    write_manifest(prepared / "manifest.csv", manifest)
    write_landmark_csv(prepared / GT_LANDMARKS, ids, pts)


#: Runs the stage from a bare interpreter and writes the stage's ru_maxrss (KiB) and exit status to argv[1]. Why: a
#: child's ru_maxrss starts at its parent's peak RSS (exec keeps the vfork'd parent image's high-water mark), so a
#: stage started straight from this benchmark, which has just built an N-row project, would report ITS peak.
WRAP = (
    "import os, subprocess, sys; p = subprocess.Popen(sys.argv[2:]); _, st, ru = os.wait4(p.pid, 0); "
    "open(sys.argv[1], 'w').write(f'{ru.ru_maxrss} {st}')"
)


def peak_rss(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """(peak RSS of the stage process itself, peak sampled RSS of its whole tree, joblib workers included), in MiB."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = cwd / ".peak_rss"
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([sys.executable, "-c", WRAP, str(result), *cmd], cwd=cwd, env=env,
                                stdout=subprocess.DEVNULL, stderr=log)
        tree_peak, done = 0, threading.Event()

        def sample() -> None:
            nonlocal tree_peak
            ps = psutil.Process(proc.pid)
            while not done.is_set():
                try:
                    kids = ps.children(recursive=True)  # the stage and its workers (not the bare wrapper)
                    tree_peak = max(tree_peak, sum(c.memory_info().rss for c in kids))
                except psutil.Error:
                    pass
                done.wait(0.05)

        watcher = threading.Thread(target=sample, daemon=True)
        watcher.start()
        proc.wait()
        done.set()
        watcher.join()
        maxrss, status = (int(v) for v in result.read_text().split())
        result.unlink()
        if status != 0:
            log.seek(0)
            raise RuntimeError(f"{' '.join(cmd)} failed: {log.read().decode()[-2000:]}")
    return maxrss / 1024, tree_peak / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,40000")
    args = ap.parse_args()
    sizes = [int(v) for v in args.sizes.split(",")]
    print(f"machine: {machine()}")
    cfg = SyntheticConfig(size=SIZE)
    base = np.stack([make_sample(0, i, i % NUM_CLASSES, "train", cfg).landmarks for i in range(700)]).astype(np.float32)
    stages = {
        "landmarks": [sys.executable, str(ROOT / "pipeline" / "landmarks.py")],
        "landmarks (before: in-memory)": [sys.executable, "-c", BEFORE_LANDMARKS],
        "aumaps": [sys.executable, str(ROOT / "pipeline" / "aumaps.py")],
        "aumaps (before: in-memory)": [sys.executable, "-c", BEFORE_AUMAPS],
    }
    rows: dict[str, dict[int, tuple[float, float]]] = {k: {} for k in stages}
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            make_project(root, n, base)
            for name, cmd in stages.items():
                rows[name][n] = peak_rss(cmd, root)
                own, tree = rows[name][n]
                print(f"  N={n:6d}  {name:<28} peak RSS {own:7.1f} MiB (process), {tree:7.1f} MiB (tree)", flush=True)
            shutil.rmtree(root / "data", ignore_errors=True)
    lo, hi = sizes[0], sizes[-1]
    print(f"growth from N={lo} to N={hi} ({hi - lo} more rows):")
    for name, by_n in rows.items():
        grow = by_n[hi][0] - by_n[lo][0]
        tree = by_n[hi][1] - by_n[lo][1]
        print(f"  {name:<28} process +{grow:6.1f} MiB ({grow * 2**20 / (hi - lo):5.0f} B/row), "
              f"tree +{tree:6.1f} MiB; ratio {by_n[hi][0] / by_n[lo][0]:.2f}")
    print(f"machine after: {machine()}")


if __name__ == "__main__":
    main()
