"""GPU throughput (CUDA only): ResNet50 at 224, batch 32 — the real loader end to end vs the same model fed synthetic
tensors already on the GPU. Target: end-to-end images/s ≥ 0.9× synthetic. Prints "skipped: no CUDA" without a GPU.

Both use the training loop's `train_epoch` (AMP bf16 where supported, channels_last, the guided loss, λ = 4); the
loader uses pinned memory and persistent workers sized to the machine; `--compile` adds torch.compile.

    python benchmarks/gpu.py [--n 2048] [--batch 32] [--size 224] [--workers auto] [--amp auto] [--compile] [--steps 40]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from common import machine, synthetic_dataset

from fer_pipeline.models import create_model
from fer_pipeline.train.config import TrainConfig
from fer_pipeline.train.dataset import FERDataset
from fer_pipeline.train.distributed import EpochSampler
from fer_pipeline.train.loop import _loader, amp_dtype, make_optimizer, train_epoch


def images_per_s(model: torch.nn.Module, batches: list | torch.utils.data.DataLoader, cfg: TrainConfig, n_images: int) -> float:
    """Images/s of one pass of `train_epoch` over `batches` (synchronised before and after)."""
    device = torch.device("cuda")
    opt = make_optimizer(cfg, model)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    dtype = amp_dtype(device, cfg.amp)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    torch.cuda.synchronize()
    t = time.perf_counter()
    train_epoch(model, batches, opt, sched, scaler, cfg=cfg, lam=4.0, device=device, dtype=dtype, desc="gpu")
    torch.cuda.synchronize()
    return n_images / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--workers", default="auto")
    ap.add_argument("--amp", default="auto", choices=("auto", "bf16", "fp16", "off"))
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--steps", type=int, default=40, help="synthetic-tensor steps")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    if not torch.cuda.is_available():
        print("skipped: no CUDA")
        return
    print(f"device: {torch.cuda.get_device_name(0)}, bf16 supported: {torch.cuda.is_bf16_supported()}")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = min(8, max(1, cores - 1)) if args.workers == "auto" else int(args.workers)
    cfg = TrainConfig(backbone="resnet50", input_size=args.size, batch_size=args.batch, device="cuda", amp=args.amp,
                      num_workers=workers, cache_images="true", compile=args.compile)
    device = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    model = create_model("cam", backbone="resnet50").to(device).to(memory_format=torch.channels_last)
    forward = torch.compile(model) if args.compile else model

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        manifest = synthetic_dataset(root, args.n, args.size)
        ds = FERDataset(manifest, root, root / "aumaps.h5", args.size, train=True, cache_images="true",
                        mean=model.mean, std=model.std)
        sampler = EpochSampler(ds, seed=0)
        loader = _loader(ds, cfg, train=True, device=device, generator=torch.Generator(), sampler=sampler)
        x = torch.randn(args.batch, 3, args.size, args.size, device=device).contiguous(memory_format=torch.channels_last)
        au = torch.rand(args.batch, args.size, args.size, device=device)
        fake = [(x, au, torch.ones(args.batch, dtype=torch.bool, device=device),
                 torch.arange(args.batch, device=device) % 7, None)] * args.steps

        images_per_s(forward, fake[:5], cfg, 5 * args.batch)  # warm-up: cudnn autotuning, compilation
        sampler.set_epoch(0)
        images_per_s(forward, loader, cfg, len(loader) * args.batch)  # warm-up: workers start, page cache
        rates = {"synthetic tensors": [], "end to end": []}
        for epoch in range(1, 4):
            rates["synthetic tensors"].append(images_per_s(forward, fake, cfg, args.steps * args.batch))
            sampler.set_epoch(epoch)
            rates["end to end"].append(images_per_s(forward, loader, cfg, len(loader) * args.batch))
    best = {k: max(v) for k, v in rates.items()}
    for k, v in rates.items():
        print(f"  {k:<18} {best[k]:8.1f} images/s (best of {len(v)}: {', '.join(f'{r:.0f}' for r in v)})")
    ratio = best["end to end"] / best["synthetic tensors"]
    print(f"resnet50 {args.size} px, batch {args.batch}, amp {args.amp}, compile {args.compile}, {workers} loader workers")
    print(f"end to end / synthetic tensors: {ratio:.3f}  (target >= 0.9: {'met' if ratio >= 0.9 else 'NOT met'})")


if __name__ == "__main__":
    main()
