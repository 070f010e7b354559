"""Where a training step's time goes: the real loop step (data + model) vs a bare step on random tensors, per thread setting.

Each thread setting runs in its own child process (OpenMP reads its environment once), the settings alternate
round after round, and each child times bare steps, data-only batches and real loop steps interleaved. Also times one
sample of the joint augmentation: the torchvision v2 chain this project used before vs the single cv2 warp now.

    python benchmarks/train_step.py [--steps 4] [--rounds 2] [--size 112] [--batch 32] [--backbone resnet18]
        [--output-stride 16]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, interleaved, machine, synthetic_dataset

VARIANTS: dict[str, dict[str, str]] = {
    "2 threads": {},  # the OpenMP runtime's own wait policy (OMP_WAIT_POLICY unset)
    "2 threads, OMP active": {"OMP_WAIT_POLICY": "ACTIVE"},
    "2 threads, OMP passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "1 thread": {"FER_BENCH_THREADS": "1"},
}


def child(data: Path, steps: int, size: int, batch: int, backbone: str, stride: int) -> dict[str, float]:
    """In a fresh process: median seconds of a bare step, a data-only batch and a real loop step."""
    import itertools

    import pandas as pd
    import torch

    from fer_pipeline.core.train_config import TrainConfig
    from fer_pipeline.inputs.dataset import FERDataset
    from fer_pipeline.models import create_model
    from fer_pipeline.models.loss import guided_loss
    from fer_pipeline.train import epoch
    from fer_pipeline.train.augment import Augmentation
    from fer_pipeline.train.distributed import EpochSampler

    threads = int(os.environ.get("FER_BENCH_THREADS", "0"))
    epoch.set_cpu_threads(threads)
    cfg = TrainConfig(
        backbone=backbone, output_stride=stride, input_size=size, batch_size=batch, device="cpu", cache_images="true"
    )
    manifest = pd.read_csv(data / "manifest.csv", dtype={"sample_id": str})
    model = create_model("cam", backbone=backbone, output_stride=stride).to(memory_format=torch.channels_last)
    ds = FERDataset(manifest, data, data / "aumaps.h5", size, augment=Augmentation(), cache_images="true", mean=model.mean,
                    std=model.std)
    sampler = EpochSampler(ds, seed=0)
    dl = epoch.make_loader(ds, cfg, train=True, device=torch.device("cpu"), generator=torch.Generator(), sampler=sampler)
    opt = epoch.make_optimizer(cfg, model)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    y, au, has = torch.arange(batch) % 7, torch.rand(batch, size, size), torch.ones(batch, dtype=torch.bool)

    def bare() -> None:
        model.train()
        total, _, _ = guided_loss(model(x, layers=(5,)), y, au, has, 4.0, (5,))
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()

    def data_only() -> None:
        next(batches)

    def real() -> None:
        one = list(itertools.islice(batches, 1))
        epoch.train_epoch(model, one, opt, sched, scaler, cfg=cfg, lam=4.0, device=torch.device("cpu"), dtype=None, desc="bench")

    batches = itertools.cycle(dl)
    bare()  # warm-up: oneDNN primitive creation, allocator
    real()
    times = interleaved({"bare step": bare, "data only": data_only, "real loop step": real}, steps)
    return {k: statistics.median(v) for k, v in times.items()} | {f"min {k}": min(v) for k, v in times.items()}


def augmentation_sample(size: int, repeats: int = 200) -> dict[str, float]:
    """Seconds per sample: the former torchvision v2 chain vs the cv2 single warp, at 1 and 2 torch threads."""
    import cv2
    import numpy as np
    import torch
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    from fer_pipeline.inputs import normalizer, to_tensor_planes, with_map
    from fer_pipeline.train.augment import colour_jitter, draw, geometry, sample_rng

    rgb = (np.random.default_rng(0).random((size, size, 3)) * 255).astype(np.uint8)
    au = np.random.default_rng(1).random((56, 56)).astype(np.float32)
    geo = v2.Compose(
        [
            v2.RandomResizedCrop(size, scale=(0.75, 1.0), ratio=(0.9, 1.1), antialias=True),
            v2.RandomRotation(10.0),
            v2.RandomHorizontalFlip(),
        ]
    )
    photo = v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.2)
    norm_v2 = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    norm = normalizer((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

    def before() -> None:  # the previous FERDataset.__getitem__ (train mode)
        img = tv_tensors.Image(torch.from_numpy(rgb).permute(2, 0, 1).contiguous())
        m = tv_tensors.Image(torch.from_numpy(cv2.resize(au, (size, size), interpolation=cv2.INTER_LINEAR))[None])
        img, m = geo(img, m)
        norm_v2(photo(img))

    rgba = with_map(rgb, (au * 255).astype(np.uint8))  # as the training cache holds it

    def after() -> None:  # the current FERDataset.__getitem__ (train mode)
        d = draw(sample_rng(0, 1, 2))
        channels = cv2.split(geometry(rgba, d, size))
        torch.from_numpy(to_tensor_planes(channels[:3], norm, colour_jitter(d)))
        torch.from_numpy(channels[3].astype(np.float32) / 255)

    out = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        times = interleaved({"before": before, "after": after}, repeats)
        out |= {f"{k}, {threads} thread(s)": statistics.median(v) for k, v in times.items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--backbone", default="resnet18", help="the demo's: resnet10t (with --output-stride 8 --size 64 --batch 16)")
    ap.add_argument("--output-stride", type=int, default=16)
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        result = child(args.child, args.steps, args.size, args.batch, args.backbone, args.output_stride)
        print("RESULT", json.dumps(result))
        return
    print(f"machine: {machine()}")
    aug = augmentation_sample(args.size)
    print(f"augmentation per sample ({args.size} px), median of 200:")
    for k, v in aug.items():
        print(f"  {k:<24} {v * 1e3:8.3f} ms")
    for t in (1, 2):
        print(f"  before / after at {t} thread(s): {aug[f'before, {t} thread(s)'] / aug[f'after, {t} thread(s)']:.1f}x")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        synthetic_dataset(data, max(4 * args.batch, 128), args.size).to_csv(data / "manifest.csv", index=False)
        results: dict[str, list[dict[str, float]]] = {k: [] for k in VARIANTS}
        for _ in range(args.rounds):
            for name, env in VARIANTS.items():
                t = time.perf_counter()
                cmd = [sys.executable, __file__, "--child", str(data), "--steps", str(args.steps), "--size", str(args.size)]
                cmd += ["--batch", str(args.batch), "--backbone", args.backbone, "--output-stride", str(args.output_stride)]
                inherited = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
                res = subprocess.run(
                    cmd,
                    env={**inherited, **env, "PYTHONPATH": str(ROOT)},
                    capture_output=True,
                    text=True,
                    check=True,
                )
                line = next(x for x in res.stdout.splitlines() if x.startswith("RESULT"))
                results[name].append(json.loads(line.split(" ", 1)[1]))
                print(f"  ({name}: child took {time.perf_counter() - t:.0f} s)", flush=True)
    setting = f"{args.backbone} os{args.output_stride}, {args.size} px, batch {args.batch}, lambda 4"
    print(f"{setting}, medians over {args.rounds} rounds x {args.steps} steps:")
    for name, rows in results.items():
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        over = med["real loop step"] / med["bare step"]
        print(
            f"  {name:<24} bare {med['bare step']:6.2f} s  data-only {med['data only'] * 1e3:7.1f} ms  "
            f"real {med['real loop step']:6.2f} s   real/bare {over:.3f}"
        )
    base = statistics.median(r["real loop step"] for r in results["2 threads"])
    for name, rows in results.items():
        print(f"  real step, {name} / 2 threads: {statistics.median(r['real loop step'] for r in rows) / base:.3f}")
    print(f"machine after: {machine()}")


if __name__ == "__main__":
    main()
