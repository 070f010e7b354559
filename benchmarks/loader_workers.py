"""Training loader with images read from disk (`cache_images: false`) at 0, 2 and 4 DataLoader workers, beside the
in-RAM cache at 0 workers: throughput ratios to 0 workers from disk.

    PYTHONPATH=. python benchmarks/loader_workers.py [--n 1024] [--size 112] [--input 112] [--batch 32] [--repeats 3]

Each epoch decodes every PNG (cv2), reads its AU map from the HDF5 store (one handle per worker process), warps
both and collates; no model. Workers are started once (persistent, as in training) and warmed by one epoch. The
files sit in the OS page cache after the first epoch, so this measures decoding, not a cold disk. Variants are
alternated, so load drifts hit all alike.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from common import fmt, interleaved, machine, synthetic_dataset, training_loader
from torch.utils.data import DataLoader

from fer_pipeline.inputs.dataset import FERDataset
from fer_pipeline.train.augment import Augmentation
from fer_pipeline.train.epoch import set_cpu_threads


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--input", type=int, default=112)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    set_cpu_threads(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        manifest = synthetic_dataset(root, args.n, args.size)
        kw = {"image_root": root, "aumap_path": root / "aumaps.h5", "input_size": args.input, "augment": Augmentation()}
        disk = FERDataset(manifest, cache_images="false", **kw)
        ram = FERDataset(manifest, cache_images="true", **kw)
        loaders = {f"disk, {w} workers": training_loader(disk, args.batch, w) for w in (0, 2, 4)}
        loaders["RAM cache, 0 workers"] = training_loader(ram, args.batch, 0)

        def epoch(dl: DataLoader) -> None:
            for _ in dl:
                pass

        for dl in loaders.values():  # start the persistent workers, fill the page cache
            epoch(dl)
        times = interleaved({k: (lambda dl=dl: epoch(dl)) for k, dl in loaders.items()}, args.repeats)
    print(f"after: {machine()}")
    print(f"{args.n} PNG images {args.size} px -> {args.input} px, batch {args.batch}, one epoch per timing")
    print(fmt(times, 1.0, "s"))
    base = times["disk, 0 workers"]
    print("\n| loader | images/s | vs disk, 0 workers (paired median) |\n|---|---:|---:|")
    for name, t in times.items():
        ratio = statistics.median(b / x for b, x in zip(base, t, strict=True))
        print(f"| {name} | {args.n / statistics.median(t):.0f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
