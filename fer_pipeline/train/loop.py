"""`train_model`: CE + λ·alignment training, per-epoch validation, best-on-val selection, DVCLive, resumable checkpoints.

The epoch and the validation pass are in `epoch.py`, the checkpoint's contents in `checkpoint.py`."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from fer_pipeline.align.warp import LEGACY_BORDER, RECORD_KEY, Alignment
from fer_pipeline.core.io import file_sha256
from fer_pipeline.core.labels import NUM_CLASSES
from fer_pipeline.core.numerics import check_cpu_kernels, intra_op_threads
from fer_pipeline.core.train_config import TrainConfig, run_config
from fer_pipeline.evaluate.run import resolve_device
from fer_pipeline.inputs.dataset import FERDataset
from fer_pipeline.models import FERModel, create_model, save_model
from fer_pipeline.train.augment import Augmentation
from fer_pipeline.train.balance import ce_weights, describe, make_sampler
from fer_pipeline.train.checkpoint import fingerprint, load_checkpoint, restore, save_checkpoint, training_state
from fer_pipeline.train.distributed import (
    finish,
    init_distributed,
    live_logger,
    per_rank_batch,
    rank_device,
    wrap_model,
)
from fer_pipeline.train.epoch import (
    amp_dtype,
    lr_factor,
    make_loader,
    make_optimizer,
    seed_everything,
    set_cpu_threads,
    train_epoch,
    validate,
)


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
    faces_path: Path | None = None, alignment: Mapping[str, Any] | None = None, augment_border: str = LEGACY_BORDER,
) -> dict[str, Any]:
    """Train on split "train", select the best val-accuracy epoch, save it to `model_out`; returns a summary.

    `stop_after_epoch` ends the run early after that epoch (checkpoint written, no model saved): a simulated
    interruption or a time-boxed job that a later `resume: true` run continues. `model_kwargs` are the method's
    options (params.yaml `methods.<method>`). `live_dir=None` logs nothing (no DVCLive). `faces_path`/`alignment`: align stage.
    `augment_border`: the image fill of the augmentation's crop and rotation (`align.border`: `warp.augment_border`).

    λ = 0 is the baseline: cross-entropy only, no AU maps read (`aumap_path` is ignored), no layer aligned or logged, so
    its model depends on none of `train.lambda`, `train.layers`, `train.align_loss`, `train.att_norm` or the AU-map store.
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
    train_ds = FERDataset(train_rows, augment=Augmentation(cfg.seed, augment_border), **common)
    val_ds = FERDataset(val_rows, **common) if not val_rows.empty and info.is_main else None
    if info.is_main:
        print(f"train: {train_ds.cache_note}")
    sampler = make_sampler(cfg.balance, train_ds, seed=cfg.seed, info=info)  # none / weights: the plain epoch permutation
    class_weight = ce_weights(cfg.balance, train_ds.labels, device)
    if info.is_main:
        print(describe(cfg.balance, train_ds.labels))
    per_rank = per_rank_batch(cfg.batch_size, info)
    train_loader = make_loader(train_ds, cfg, train=True, device=device, generator=generator, sampler=sampler,
                               batch_size=per_rank)
    val_loader = make_loader(val_ds, cfg, train=False, device=device, generator=generator) if val_ds else None

    opt = make_optimizer(cfg, model)
    steps = len(train_loader)
    warmup = cfg.warmup_epochs * steps if cfg.epochs > cfg.warmup_epochs else 0
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total=cfg.epochs * steps, warmup=warmup))
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    recorded = run_config(cfg, lam, model.init_config["model_kwargs"]) | {RECORD_KEY: Alignment.from_dict(alignment).to_dict()}
    maps_sha = file_sha256(maps) if maps is not None and Path(maps).is_file() else ""
    fill = {} if augment_border == LEGACY_BORDER else {"augment_border": augment_border}  # older checkpoints still match
    fp = fingerprint(recorded | fill, train_rows["sample_id"].astype(str).tolist(), maps_sha)  # resume on the same fill only
    ckpt_path = Path(checkpoint_dir) / "last.pt" if checkpoint_dir is not None else None
    start, best_acc, best_epoch, best_state = 0, -math.inf, 0, None
    history: list[dict[str, float]] = []  # what DVCLive logged per epoch, kept in the checkpoint (plain floats)
    state = load_checkpoint(ckpt_path, fp) if (cfg.resume and ckpt_path is not None) else None
    if state is not None:
        restore(state, model=model, opt=opt, sched=sched, scaler=scaler, generator=generator)
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
                val_acc, val_att = validate(model, val_loader, device=device, layer=first_layer, dtype=dtype)
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
                    training_state(model=model, opt=opt, sched=sched, scaler=scaler, generator=generator, epoch=epoch,
                                   best_acc=best_acc, best_epoch=best_epoch, best_state=best_state, fingerprint=fp,
                                   history=history),
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
