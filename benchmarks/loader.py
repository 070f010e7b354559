"""Data loading: the training loader with AU maps vs the same loader without (joint augmentation included). Target ≥ 0.95×.

Both read decoded images from the in-RAM cache (`train.cache_images`); "without" is FERDataset minus the map
(no read, no warp), i.e. what a loader for plain classification would cost. Batches alternate between the two.

    python benchmarks/loader.py [--n 512] [--size 112] [--batch 32] [--repeats 5] [--workers 0]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from common import fmt, interleaved, machine, paired, summary, synthetic_dataset, training_loader
from torch.utils.data import DataLoader

from fer_pipeline.inputs.dataset import FERDataset
from fer_pipeline.train.augment import Augmentation, Draw, geometry
from fer_pipeline.train.epoch import set_cpu_threads


class NoMaps(FERDataset):
    """The same dataset without AU maps: the image alone goes through the same augmentation (no map read, no map warp)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.cache is not None:  # plain RGB in the cache, as a loader without maps would keep it
            self.cache = [np.ascontiguousarray(c[:, :, :3]) for c in self.cache]

    def planes(self, i: int, d: Draw | None = None) -> tuple[list[np.ndarray], np.ndarray | None]:
        image = self.image(i) if d is None else geometry(self.image(i), d, self.input_size)
        return list(cv2.split(image)), None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--workers", type=int, default=0)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    set_cpu_threads(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        manifest = synthetic_dataset(root, args.n, args.size)
        kw = {"image_root": root, "aumap_path": root / "aumaps.h5", "input_size": args.size, "augment": Augmentation()}
        loaders = {
            "with AU maps": training_loader(FERDataset(manifest, cache_images="true", **kw), args.batch, args.workers),
            "without AU maps": training_loader(NoMaps(manifest, cache_images="true", **kw), args.batch, args.workers),
        }
        sample = next(iter(loaders["with AU maps"]))
        assert sample[1].shape == (args.batch, args.size, args.size), sample[1].shape

        def run_epoch(dl: DataLoader) -> None:
            for _ in dl:
                pass

        times = interleaved({k: (lambda dl=dl: run_epoch(dl)) for k, dl in loaders.items()}, args.repeats)
    n_batches = args.n // args.batch
    print(f"{args.n} cached {args.size} px images, batch {args.batch}, {args.workers} workers, {torch.get_num_threads()} threads")
    print(f"one epoch = {n_batches} batches")
    print(fmt(times))
    med, low = summary(times, "without AU maps", "with AU maps")  # time ratio without/with = throughput with/without
    pair = 1.0 / paired(times, "with AU maps", "without AU maps")
    ok = "met" if med >= 0.95 else "NOT met"
    print(f"throughput with maps / without: medians {med:.3f}, minima {low:.3f}, paired median {pair:.3f}")
    print(f"  target >= 0.95 (ratio of medians): {ok}")
    per = {k: np.median(v) / args.n * 1e3 for k, v in times.items()}
    print("per sample: " + ", ".join(f"{k} {v:.3f} ms" for k, v in per.items()))
    print(f"machine after: {machine()}")


if __name__ == "__main__":
    main()
