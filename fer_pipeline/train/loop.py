"""`train_model`: CE + λ·alignment training, per-epoch validation, best-on-val selection, DVCLive, resumable checkpoints."""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm

from fer_pipeline.align.warp import RECORD_KEY, Alignment
from fer_pipeline.core.io import file_sha256
from fer_pipeline.core.labels import NUM_CLASSES
from fer_pipeline.core.numerics import check_cpu_kernels, intra_op_threads
from fer_pipeline.evaluate.metrics import accuracy
from fer_pipeline.evaluate.run import au_macro_cos, infer, resolve_device
from fer_pipeline.models import FERModel, create_model, save_model
from fer_pipeline.models.loss import guided_loss
from fer_pipeline.train.balance import ce_weights, describe, make_sampler
from fer_pipeline.train.checkpoint import fingerprint, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from fer_pipeline.train.config import TrainConfig, run_config
from fer_pipeline.train.dataset import FERDataset, collate
from fer_pipeline.train.distributed import (
    SINGLE,
    DistInfo,
    cpu_threads,
    finish,
    init_distributed,
    live_logger,
    per_rank_batch,
    rank_device,
    reduce_sum,
    wrap_model,
)


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
    """SGD with momentum and weight decay (the paper's), or AdamW."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def _loader(
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
        total, ce, align = guided_loss(out, y, au, has_map, lam, layers, cfg.align_loss, class_weight=class_weight)
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


def train_model(
    cfg: TrainConfig,
    *,
    lam: float,
    manifest: pd.DataFrame,
    image_root: Path,
    aumap_path: Path,
    model_out: Path,
    live_dir: Path | None,
    checkpoint_dir: Path | None = None,
    stop_after_epoch: int | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    faces_path: Path | None = None, alignment: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Train on split "train", select the best val-accuracy epoch, save it to `model_out`; returns a summary.

    `stop_after_epoch` ends the run early after that epoch (checkpoint written, no model saved): a simulated
    interruption or a time-boxed job that a later `resume: true` run continues. `model_kwargs` are the method's
    options (params.yaml `methods.<method>`). `live_dir=None` logs nothing (no DVCLive). `faces_path`/`alignment`: align stage.

    λ = 0 is the baseline: cross-entropy only, no AU maps read (`aumap_path` is ignored), no layer aligned or logged, so
    its model depends on none of `train.lambda`, `train.layers`, `train.align_loss` or the AU-map store.
    """
    if lam < 0:
        raise ValueError(f"lambda must be >= 0, got {lam}")
    baseline = lam == 0
    layers: tuple[int, ...] = () if baseline else tuple(cfg.layers)
    maps: Path | None = None if baseline else aumap_path
    device = resolve_device(cfg.device)
    info = init_distributed(device)  # torchrun: one process per GPU (nccl) or per CPU share (gloo)
    device = rank_device(device, info)
    if device.type == "cpu":
        check_cpu_kernels(cfg.cpu_kernels)  # portable: the AVX2 caps must be in place (set before torch loaded)
        set_cpu_threads(intra_op_threads(cfg.cpu_kernels, cfg.threads), info)  # portable: a fixed count
    else:  # loader workers inherit it: one cv2 thread each, not a pool per worker oversubscribing the cores
        cv2.setNumThreads(1)
        torch.backends.cudnn.benchmark = True  # fixed input size: autotuned convolutions pay off after the first steps
    seed_everything(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    dtype = amp_dtype(device, cfg.amp)

    model: FERModel = create_model(
        cfg.method, backbone=cfg.backbone, pretrained=cfg.pretrained, num_classes=NUM_CLASSES, output_stride=cfg.output_stride,
        input_size=cfg.input_size, **dict(model_kwargs or {}),
    )
    model.check_layers(layers)
    model.to(device)
    model = model.to(memory_format=torch.channels_last)
    forward: nn.Module = wrap_model(model, device, info)
    forward = torch.compile(forward) if cfg.compile else forward

    train_rows = manifest[manifest["split"] == "train"]
    val_rows = manifest[manifest["split"] == "val"]
    if train_rows.empty:
        raise ValueError("the manifest has no 'train' rows")
    common = {
        "image_root": image_root,
        "aumap_path": maps,
        "input_size": cfg.input_size,
        "cache_images": cfg.cache_images,
        "mean": model.mean,
        "std": model.std,
        "faces_path": faces_path,
    }
    train_ds = FERDataset(train_rows, train=True, seed=cfg.seed, **common)
    val_ds = FERDataset(val_rows, train=False, **common) if not val_rows.empty and info.is_main else None
    if info.is_main:
        print(f"train: {train_ds.cache_note}")
    sampler = make_sampler(cfg.balance, train_ds, seed=cfg.seed, info=info)  # none / weights: the plain epoch permutation
    class_weight = ce_weights(cfg.balance, train_ds.labels, device)
    if info.is_main:
        print(describe(cfg.balance, train_ds.labels))
    per_rank = per_rank_batch(cfg.batch_size, info)
    train_loader = _loader(train_ds, cfg, train=True, device=device, generator=generator, sampler=sampler, batch_size=per_rank)
    val_loader = _loader(val_ds, cfg, train=False, device=device, generator=generator) if val_ds else None

    opt = make_optimizer(cfg, model)
    steps = len(train_loader)
    warmup = cfg.warmup_epochs * steps if cfg.epochs > cfg.warmup_epochs else 0
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total=cfg.epochs * steps, warmup=warmup))
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    recorded = run_config(cfg, lam, model.init_config["model_kwargs"]) | {RECORD_KEY: Alignment.from_dict(alignment).to_dict()}
    maps_sha = file_sha256(maps) if maps is not None and Path(maps).is_file() else ""
    fp = fingerprint(recorded, train_rows["sample_id"].astype(str).tolist(), maps_sha)
    ckpt_path = Path(checkpoint_dir) / "last.pt" if checkpoint_dir is not None else None
    start, best_acc, best_epoch, best_state = 0, -math.inf, 0, None
    history: list[dict[str, float]] = []  # what DVCLive logged per epoch, kept in the checkpoint (plain floats)
    state = load_checkpoint(ckpt_path, fp) if (cfg.resume and ckpt_path is not None) else None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"], generator)
        start, best_acc, best_epoch, best_state = state["epoch"], state["best_acc"], state["best_epoch"], state["best_state"]
        history = [dict(h) for h in state.get("history", [])]
        print(f"resume: continuing after epoch {start} of {cfg.epochs} (best val acc {best_acc:.2f} at epoch {best_epoch})")

    first_layer = layers[0] if layers else None
    t0, train_seconds, done_steps = time.perf_counter(), 0.0, 0
    last = min(cfg.epochs, stop_after_epoch) if stop_after_epoch is not None else cfg.epochs
    # DVCLive (rank 0 only) writes into a temp folder that replaces `live_dir` when the run ends (killed: `live_dir`
    # untouched). On resume the epochs before the checkpoint are replayed from its history, so the logs equal an
    # uninterrupted run's even when DVC deleted `live_dir` or the kill fell between a log line and the checkpoint.
    with live_logger(live_dir, info.is_main) as live:
        live.log_params({**recorded, "layers": ",".join(map(str, layers))})
        for logged in history:
            for name, value in logged.items():
                live.log_metric(name, value)
            live.next_step()
        live.step = start  # (equal unless the checkpoint predates the history)
        for epoch in range(start + 1, last + 1):
            lr, t_epoch = opt.param_groups[0]["lr"], time.perf_counter()
            sampler.set_epoch(epoch)
            stats = train_epoch(
                forward,
                train_loader,
                opt,
                sched,
                scaler,
                cfg=cfg,
                lam=lam,
                device=device,
                dtype=dtype,
                desc=f"epoch {epoch}/{cfg.epochs}",
                info=info,
                layers=layers,
                class_weight=class_weight,
            )
            train_seconds += time.perf_counter() - t_epoch
            done_steps += steps
            val_acc, val_att = math.nan, math.nan
            if val_loader is not None:
                val_layers = (first_layer,) if first_layer is not None else ()
                inf = infer(model, val_loader, device=device, layers=val_layers, amp_dtype=dtype)
                val_acc = accuracy(inf.y, inf.pred)
                if first_layer is not None:
                    val_att = au_macro_cos(inf.att_cos[first_layer], inf.y, inf.has_map)
            # Strictly better only: a tie keeps the earlier epoch. Without val rows the last epoch is kept.
            if val_loader is None or val_acc > best_acc:
                best_acc, best_epoch = val_acc, epoch
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            logged = {f"train/{k}": float(v) for k, v in stats.items() if not (baseline and k == "align")}
            logged["val/acc"] = float(val_acc)
            if not baseline:  # the baseline aligns no layer: nothing of train.layers in its logs
                logged["val/att_cos"] = float(val_att)
            logged["lr"] = float(lr)
            for name, value in logged.items():
                live.log_metric(name, value)
            history.append(logged)
            if info.is_main:
                align = "" if baseline else f", align {stats['align']:.4f}"
                att = "" if baseline else f"  att_cos {val_att:.3f}"
                tqdm.write(
                    f"epoch {epoch}/{cfg.epochs}: loss {stats['loss']:.4f} (ce {stats['ce']:.4f}{align})"
                    f"  val acc {val_acc:.2f}{att}  lr {lr:.4g}"
                )
            if ckpt_path is not None and info.is_main:
                save_checkpoint(
                    ckpt_path,
                    {
                        "model": model.state_dict(),
                        "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict(),
                        "scaler": scaler.state_dict(),
                        "epoch": epoch,
                        "best_acc": best_acc,
                        "best_epoch": best_epoch,
                        "best_state": best_state,
                        "rng": rng_state(generator),
                        "fingerprint": fp,
                        "history": history,
                    },
                )
            live.next_step()
        seconds = time.perf_counter() - t0
        summary = {
            "best_epoch": best_epoch,
            "best_val_acc": best_acc,
            "seconds": seconds,
            "train_seconds": train_seconds,
            "steps_per_s": done_steps / train_seconds if train_seconds > 0 else math.nan,
            "epochs_run": max(0, last - start),
            "finished": last == cfg.epochs,
        }
        if summary["finished"]:
            live.log_metric("best/val_acc", best_acc, plot=False)
            live.log_metric("best/epoch", best_epoch, plot=False)
    if summary["finished"] and info.is_main:
        if best_state is not None:
            model.load_state_dict(best_state)
        save_model(model_out, model, {**recorded, "best_epoch": best_epoch, "best_val_acc": best_acc})
    finish(info)
    return summary
