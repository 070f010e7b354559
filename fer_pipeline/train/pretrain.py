"""Offline pretraining: a backbone trained once on other synthetic faces, in the role ImageNet weights play in the paper.

The paper starts every method from ImageNet. Without internet no hub weights can be had, so stage `pretrain` trains the
runs' backbone on faces drawn with another generator seed (never a face of the runs' train, val or test splits) and
writes its weights where `train.pretrained` can read them. Two tasks:

- `rotation` (self-supervised, no labels): which of 0/90/180/270 degrees the face was turned by (Gidaris et al., 2018).
  Generic features of faces (where the eyes, brows and mouth are, their edges), no knowledge of expressions.
- `expression`: the seven classes on the other faces: transfer from a second expression dataset, closer to a copy of
  the target task than ImageNet is.

Pure functions: the faces come from the generator in memory; the stage script (`pipeline/pretrain.py`) saves the result.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from fer_pipeline.align.warp import resize_square
from fer_pipeline.core.labels import NUM_CLASSES
from fer_pipeline.core.train_config import TrainConfig
from fer_pipeline.models.backbone import Backbone

#: `pretrain.task`: none (no stage work: runs use `train.pretrained` as it is) or one of the tasks below.
TASKS = ("none", "rotation", "expression")
#: Outputs of each task's head.
CLASSES = {"rotation": 4, "expression": NUM_CLASSES}
#: Share of the pretraining faces held out to score the task (not trained on).
HELD_OUT = 0.15


@dataclass(frozen=True)
class PretrainConfig:
    """The `pretrain` section of params.yaml, cast and validated."""

    task: str = "rotation"
    n: int = 2000
    seed: int = 1000
    image_size: int = 112
    epochs: int = 4
    batch_size: int = 64
    lr: float = 0.002
    weight_decay: float = 0.0001

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> PretrainConfig:
        """From the `pretrain` dict; strings from `dvc exp run -S` are cast, unknown keys refused with the valid ones."""
        names = {f: type(getattr(cls, f)) for f in cls.__dataclass_fields__}
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise ValueError(f"params.yaml pretrain: unknown key(s) {unknown}; valid: {', '.join(names)}")
        out: dict[str, Any] = {}
        for key, value in params.items():
            kind = names[key]
            try:
                out[key] = str(value).strip().lower() if kind is str else kind(float(value)) if kind is int else float(value)
            except (TypeError, ValueError):
                raise ValueError(f"params.yaml pretrain.{key}={value!r} is not a {kind.__name__}") from None
        return cls(**out)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"params.yaml pretrain.task={self.task!r} unknown; valid: {', '.join(TASKS)}")
        if self.n < 10 * NUM_CLASSES:
            raise ValueError(f"params.yaml pretrain.n={self.n}: need at least {10 * NUM_CLASSES} faces")
        if self.epochs < 1 or self.batch_size < 2 or self.lr <= 0 or self.weight_decay < 0 or self.image_size < 32:
            raise ValueError(f"params.yaml pretrain: need epochs >= 1, batch_size >= 2, lr > 0, weight_decay >= 0 and "
                             f"image_size >= 32; got {self}")


def check_disjoint(cfg: PretrainConfig, synthetic_seed: int, dataset: str) -> None:
    """Refuse pretraining faces that are the runs' own: the synthetic dataset drawn with the same generator seed."""
    if dataset == "synthetic" and cfg.task != "none" and int(cfg.seed) == int(synthetic_seed):
        raise ValueError(f"params.yaml pretrain.seed={cfg.seed} equals synthetic.seed: the pretraining faces would be "
                         f"the runs' own train and test faces; pick another pretrain.seed")


def pretrain_faces(cfg: PretrainConfig, input_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 (n, S, S, 3) faces at the runs' input size, int64 (n,) expression labels), drawn with `cfg.seed`.

    The generator's default framing (wider than the demo's aligned crops: other scales, poses and places)."""
    from fer_pipeline.data.datasets import synthetic_labels
    from fer_pipeline.data.synthetic import SyntheticConfig, make_sample

    gen = SyntheticConfig(size=cfg.image_size)
    labels = synthetic_labels(cfg.n, cfg.seed)
    faces = np.stack([resize_square(make_sample(cfg.seed, i, int(labels[i]), "train", gen).image, input_size)
                      for i in range(cfg.n)])
    return faces, labels.astype(np.int64)


def task_batch(task: str, faces: Tensor, labels: Tensor, generator: torch.Generator, train: bool) -> tuple[Tensor, Tensor]:
    """Inputs and targets of one batch. rotation: each face turned by k * 90 degrees, target k (random when training,
    k = index mod 4 when scoring); expression: the faces, horizontally flipped at random when training, their labels."""
    n = faces.shape[0]
    if task == "rotation":
        k = torch.randint(0, 4, (n,), generator=generator) if train else torch.arange(n) % 4
        turned = torch.stack([torch.rot90(f, int(r), dims=(1, 2)) for f, r in zip(faces, k.tolist(), strict=True)])
        return turned, k
    if train:
        flip = torch.rand(n, generator=generator) < 0.5
        faces = torch.where(flip[:, None, None, None], faces.flip(3), faces)
    return faces, labels


class PretrainNet(nn.Module):
    """The backbone with a linear head on its globally pooled last layer (the head is dropped after pretraining)."""

    def __init__(self, backbone: str, classes: int) -> None:
        super().__init__()
        self.backbone = Backbone(backbone, pretrained="none", output_stride=32)  # ImageNet weights are stride 32 too
        self.head = nn.Linear(self.backbone.head_channels, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.backbone(x)[-1].mean(dim=(2, 3)))


def _normalise(faces: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> Tensor:
    """uint8 NHWC -> normalised float NCHW, as the runs' inputs are (`inputs.tensor`)."""
    x = torch.from_numpy(faces).permute(0, 3, 1, 2).float().div_(255.0)
    return (x - torch.tensor(mean)[None, :, None, None]) / torch.tensor(std)[None, :, None, None]


def _accuracy(net: PretrainNet, task: str, x: Tensor, y: Tensor, batch: int) -> float:
    """Held-out accuracy (%) of the task, in fixed order."""
    net.eval()
    hits = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb, yb = task_batch(task, x[i : i + batch], y[i : i + batch], torch.Generator(), train=False)
            hits += int((net(xb).argmax(1) == yb).sum())
    net.train()
    return 100.0 * hits / max(1, len(x))


def pretrain_backbone(cfg: PretrainConfig, train: TrainConfig) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Train `train.backbone` on `cfg.task` over other synthetic faces at `train.input_size`; returns the backbone's
    state_dict (what `train.pretrained` loads) and a summary (held-out task accuracy, steps, seconds)."""
    from fer_pipeline.train.epoch import lr_factor, make_optimizer, seed_everything

    if cfg.task == "none":
        raise ValueError("pretrain.task is none: there is nothing to pretrain")
    seed_everything(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    t0 = time.perf_counter()
    faces, labels = pretrain_faces(cfg, train.input_size)
    net = PretrainNet(train.backbone, CLASSES[cfg.task])
    x, y = _normalise(faces, net.backbone.mean, net.backbone.std), torch.from_numpy(labels)
    n_val = int(round(len(x) * HELD_OUT))
    x_fit, y_fit, x_val, y_val = x[n_val:], y[n_val:], x[:n_val], y[:n_val]
    opt_cfg = TrainConfig(backbone=train.backbone, optimizer="adamw", lr=cfg.lr, weight_decay=cfg.weight_decay)
    opt = make_optimizer(opt_cfg, net)
    steps = len(x_fit) // cfg.batch_size
    total, warmup = cfg.epochs * steps, steps if cfg.epochs > 1 else 0
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total=total, warmup=warmup))
    loss_fn, history = nn.CrossEntropyLoss(), []
    net.train()
    for epoch in range(1, cfg.epochs + 1):
        order = torch.randperm(len(x_fit), generator=generator)
        running = 0.0
        for s in range(steps):
            idx = order[s * cfg.batch_size : (s + 1) * cfg.batch_size]
            xb, yb = task_batch(cfg.task, x_fit[idx], y_fit[idx], generator, train=True)
            loss = loss_fn(net(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running += float(loss.detach())
        acc = _accuracy(net, cfg.task, x_val, y_val, 256)
        history.append({"epoch": epoch, "loss": running / max(1, steps), "held_out_acc": acc})
        print(f"pretrain {cfg.task} epoch {epoch}/{cfg.epochs}: loss {running / max(1, steps):.4f}  held-out acc {acc:.2f}")
    summary = {"task": cfg.task, "backbone": train.backbone, "input_size": train.input_size, "faces": cfg.n,
               "seed": cfg.seed, "held_out_acc": history[-1]["held_out_acc"] if history else math.nan,
               "chance_acc": 100.0 / CLASSES[cfg.task], "history": history, "steps": total}
    print(f"pretrain: {total} steps in {time.perf_counter() - t0:.0f} s")  # not in the summary: its bytes stay fixed
    return {k: v.detach().clone() for k, v in net.backbone.body.state_dict().items()}, summary
