"""One epoch of training and one pass of validation, and what they run on: seeds, threads, optimizer, LR schedule,
data loaders, autocast dtype."""

from __future__ import annotations

import contextlib
import math
import os
import random

import cv2
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm

from fer_pipeline.core.train_config import TrainConfig
from fer_pipeline.evaluate.metrics import accuracy
from fer_pipeline.evaluate.run import au_macro_cos, infer
from fer_pipeline.inputs.dataset import FERDataset, collate
from fer_pipeline.models.loss import guided_loss
from fer_pipeline.train.distributed import SINGLE, DistInfo, cpu_threads, global_denominators, reduce_sum


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def amp_dtype(device: torch.device, mode: str) -> torch.dtype | None:
    """Autocast dtype: bf16 where the GPU supports it, else fp16; None (fp32) on CPU or with amp: off."""
    if device.type != "cuda" or mode == "off":
        return None
    if mode == "fp16" or (mode == "auto" and not torch.cuda.is_bf16_supported()):
        return torch.float16
    return torch.bfloat16


def set_cpu_threads(threads: int, info: DistInfo = SINGLE) -> None:
    """Intra-op threads: `threads`, else OMP_NUM_THREADS when set, else this process's share of the CPUs.

    OpenCV runs single-threaded: the data path works one small image at a time, where a thread pool only adds
    hand-offs that stall when other processes hold the cores (BENCHMARKS.md, "Training step").
    """
    cv2.setNumThreads(1)
    if not threads and os.environ.get("OMP_NUM_THREADS"):
        return
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(cpu_threads(threads, info, available))


def lr_factor(step: int, *, total: int, warmup: int) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to 0 at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """SGD with momentum and weight decay (the paper's), or AdamW.

    AdamW runs torch's fused kernel on CPU and CUDA: the default (foreach) step gave other bytes on AMD than on Intel
    processors, the fused one the same (docs/guides/reproducibility.md)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adamw":
        fused = bool(params) and all(p.device.type in ("cpu", "cuda") for p in params)
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused or None)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def make_loader(
    ds: FERDataset,
    cfg: TrainConfig,
    *,
    train: bool,
    device: torch.device,
    generator: torch.Generator,
    sampler: Sampler | None = None,
    batch_size: int | None = None,
) -> DataLoader:
    """Training: `sampler`'s (epoch, index) keys, last partial batch dropped; validation: in order."""
    batch_size = batch_size or cfg.batch_size
    return DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=train and sampler is None,
        sampler=sampler,
        drop_last=train and len(sampler if sampler is not None else ds) > batch_size,
        num_workers=cfg.num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=cfg.num_workers > 0,
        generator=generator,
        collate_fn=collate,
    )


def unwrap(model: nn.Module) -> nn.Module:
    """The FERModel inside `torch.compile` (`_orig_mod`) and DDP (`module`) wrappers."""
    while True:
        inner = getattr(model, "_orig_mod", None) or getattr(model, "module", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def train_epoch(
    model: nn.Module,
    loader: DataLoader,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    *,
    cfg: TrainConfig,
    lam: float,
    device: torch.device,
    dtype: torch.dtype | None,
    desc: str,
    info: DistInfo = SINGLE,
    layers: tuple[int, ...] | None = None,
    memory_format: torch.memory_format = torch.channels_last,
    class_weight: torch.Tensor | None = None,
) -> dict[str, float]:
    """One pass over the training loader; mean loss / ce / align over batches (and over processes under DDP).

    `layers`: the aligned layers (default `cfg.layers`; () for the λ = 0 baseline, which aligns nothing).
    `memory_format` is the inputs' layout; the model's must match (channels_last: `train_model`; contiguous: the
    GPU check's layout comparison). `class_weight`: cross-entropy weights per class (`train.balance: weights`)."""
    layers = cfg.layers if layers is None else tuple(layers)
    model.train()
    core = unwrap(model)  # method hooks live on the FERModel, not on a DDP / torch.compile wrapper
    sums = torch.zeros(3, dtype=torch.float64, device=device)
    n = 0
    autocast = torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
    fmt = memory_format  # channels_last is faster on CUDA and on CPU (oneDNN): 1.2 vs 1.6 s/step for resnet18 os16 @112 bs32
    bar = tqdm(loader, desc=desc, leave=False, dynamic_ncols=True, disable=not info.is_main)
    for x, au, has_map, y, _ in bar:
        x = x.to(device, non_blocking=True, memory_format=fmt)
        au, has_map, y = au.to(device, non_blocking=True), has_map.to(device, non_blocking=True), y.to(device, non_blocking=True)
        x, au, has_map, y = core.mix_batch(x, au, has_map, y)  # the method's batch augmentation (CutMix), else unchanged
        with autocast:
            out = model(x, layers=layers)
            extra = core.extra_loss(out, y)  # the method's own loss term (ACoL's branch B), else None
        # DDP: the alignment and weighted-CE means over all processes' rows (nothing to count for a plain baseline)
        counted = bool(layers) or class_weight is not None
        mapped, weight_sum = global_denominators(has_map, y, class_weight, info) if counted else (None, None)
        total, ce, align = guided_loss(
            out, y, au, has_map, lam, layers, cfg.align_loss, class_weight=class_weight, att_norm=cfg.att_norm,
            mapped=mapped, weight_sum=weight_sum,
        )
        if extra is not None:
            total = total + extra
        opt.zero_grad(set_to_none=True)
        scaler.scale(total).backward()
        scaler.step(opt)
        scaler.update()
        sched.step()
        sums += torch.stack([total.detach(), ce.detach(), align.detach()]).double()
        n += 1
        if device.type == "cpu" or n % 20 == 0:  # avoid a GPU sync on every step
            bar.set_postfix(loss=f"{sums[0].item() / n:.3f}", refresh=False)
    sums, n = reduce_sum(sums, info), n * info.world  # every process runs the same number of steps
    means = (sums / max(n, 1)).tolist()
    return {"loss": means[0], "ce": means[1], "align": means[2]}


def validate(
    model: nn.Module, loader: DataLoader, *, device: torch.device, layer: int | None, dtype: torch.dtype | None
) -> tuple[float, float]:
    """(accuracy, AU macro ATT-COS of `layer`) on the validation loader; ATT-COS is NaN without a layer (baseline)."""
    inf = infer(model, loader, device=device, layers=(layer,) if layer is not None else (), amp_dtype=dtype)
    att = au_macro_cos(inf.att_cos[layer], inf.y, inf.has_map) if layer is not None else math.nan
    return accuracy(inf.y, inf.pred), att
