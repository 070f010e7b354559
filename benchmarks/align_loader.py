"""Training loader on large photos: whole JPEGs decoded every epoch (`align.mode: none`) vs the aligned-face store
(`align.mode: similarity`), side by side; also the one-off cost of the `align` stage per photo.

Photos: a synthetic face scaled up to ~600 px, pasted off-centre into a W x H scene, saved as JPEG (quality 90); its
landmarks are the generator's, moved with it. Both loaders are the training loader (`cache_images: false`, joint
augmentation, batch `--batch`, `--workers` processes), epochs alternate between them.

    python benchmarks/align_loader.py [--n 64] [--width 2000] [--height 1500] [--input 112] [--repeats 3] [--workers 0]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from common import interleaved, machine, training_loader

from fer_pipeline.align.stage import build_aligned_store
from fer_pipeline.aumaps.render import render_maps, to_uint8
from fer_pipeline.aumaps.store import write_aumap_store
from fer_pipeline.core.labels import NUM_CLASSES
from fer_pipeline.data.photo import scene
from fer_pipeline.data.synthetic import SyntheticConfig, make_sample
from fer_pipeline.inputs.dataset import FERDataset
from fer_pipeline.landmarks.store import LandmarkTable, write_landmark_store
from fer_pipeline.train.augment import Augmentation
from fer_pipeline.train.epoch import set_cpu_threads


def photos(root: Path, n: int, width: int, height: int) -> tuple[pd.DataFrame, np.ndarray]:
    """n large JPEG photos with one face each; the manifest and the (n, 68, 2) landmarks."""
    (root / "img").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    pts = np.zeros((n, 68, 2), np.float32)
    for i in range(n):
        s = make_sample(0, i, i % NUM_CLASSES, "train", SyntheticConfig(size=112))
        side = int(rng.integers(450, 750))
        face = cv2.resize(s.image, (side, side), interpolation=cv2.INTER_CUBIC)
        frame = cv2.resize(scene(rng, 256), (width, height), interpolation=cv2.INTER_LINEAR)
        x0, y0 = int(rng.integers(0, width - side)), int(rng.integers(0, height - side))
        frame[y0 : y0 + side, x0 : x0 + side] = face
        k = side / 112
        pts[i] = (s.landmarks + 0.5) * k - 0.5 + [x0, y0]
        cv2.imwrite(str(root / f"img/p{i:04d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    ids = [f"p{i:04d}" for i in range(n)]
    manifest = pd.DataFrame({"sample_id": ids, "path": [f"img/{s}.jpg" for s in ids], "label": np.arange(n) % NUM_CLASSES,
                             "split": "train"})
    return manifest, pts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--width", type=int, default=2000)
    ap.add_argument("--height", type=int, default=1500)
    ap.add_argument("--input", type=int, default=112, help="train.input_size (and align.size)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=0)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    set_cpu_threads(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        manifest, pts = photos(root, args.n, args.width, args.height)
        manifest.to_csv(root / "manifest.csv", index=False)
        n = args.n
        write_landmark_store(root / "lm.h5", LandmarkTable(manifest["sample_id"].tolist(), pts,
                                                           np.tile([args.height, args.width], (n, 1)), np.zeros(n)))
        t = time.perf_counter()
        params = {"mode": "similarity", "size": args.input, "n_jobs": 1, "chunk_size": 256}
        build_aligned_store(root / "aligned.h5", root / "manifest.csv", root / "lm.h5", root, params, progress=False)
        align_s = time.perf_counter() - t
        # the AU maps do not change the comparison (both loaders warp one): drawn once for the framed points
        maps, has = render_maps(np.full((n, 68, 2), np.nan, np.float32), np.tile([1, 1], (n, 1)), manifest["label"].to_numpy())
        write_aumap_store(root / "aumaps.h5", manifest["sample_id"].tolist(), to_uint8(maps), has, {"size": maps.shape[-1]})
        kw = {"image_root": root, "aumap_path": root / "aumaps.h5", "input_size": args.input, "augment": Augmentation(),
              "cache_images": "false"}
        loaders = {
            "whole photos (mode none)": training_loader(FERDataset(manifest, **kw), args.batch, args.workers),
            "aligned store (similarity)": training_loader(FERDataset(manifest, faces_path=root / "aligned.h5", **kw),
                                                          args.batch, args.workers),
        }
        for loader in loaders.values():  # warm up: worker start, first file opens
            next(iter(loader))
        imgs = (n // args.batch) * args.batch
        times = interleaved({k: (lambda ld=ld: [None for _ in ld]) for k, ld in loaders.items()}, args.repeats)
        mb = sum(p.stat().st_size for p in (root / "img").iterdir()) / n / 2**20
        store_mb = (root / "aligned.h5").stat().st_size / n / 2**10
    print(f"{n} photos {args.width}x{args.height} JPEG ({mb:.2f} MiB each), input {args.input} px, batch {args.batch}, "
          f"{args.workers} workers, {args.repeats} epochs each (alternated)")
    rate = {k: imgs / statistics.median(v) for k, v in times.items()}
    for k, r in rate.items():
        print(f"  {k:<28} {r:8.1f} images/s   (median epoch {statistics.median(times[k]):.2f} s)")
    names = list(rate)
    print(f"  ratio aligned / whole: {rate[names[1]] / rate[names[0]]:.1f}x images/s")
    print(f"  align stage, once: {align_s / n * 1e3:.1f} ms a photo (1 process); store {store_mb:.1f} KiB a face")


if __name__ == "__main__":
    main()
