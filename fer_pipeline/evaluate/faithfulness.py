"""Deletion faithfulness (Petsiuk et al., RISE 2018): does removing the pixels a CAM ranks first destroy the prediction?

For each image the predicted class's CAM (through the method's `cam` hook) is upsampled to the input, pixels are
deleted most-salient first in `steps` equal chunks (set to 0 in normalised space, i.e. the mean colour), and the
softmax probability of that class is recorded after each chunk. The area under that curve (x = fraction deleted,
trapezoid) is low for a faithful map. The same curve with a seeded random pixel order is the baseline, and
`deletion_score = AUC_random − AUC_cam` (> 0: the map finds pixels that matter more than chance).

Written here rather than taken from the `grad-cam` package's ROAD metrics: that package is optional in this
project and its imputation solves a sparse system per image, too slow for a CPU evaluation stage. Known limit of
deletion with a constant fill: the fill's shape itself is out of distribution (what ROAD's imputation addresses).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from fer_pipeline.models import FERModel


@dataclass
class Deletion:
    """Per-sample deletion AUCs (probability of the explained class vs fraction of pixels deleted)."""

    target: np.ndarray  # explained class (the prediction)
    auc_cam: np.ndarray
    auc_random: np.ndarray

    @property
    def score(self) -> np.ndarray:
        """AUC_random − AUC_cam per sample."""
        return self.auc_random - self.auc_cam


def pixel_ranks(saliency: Tensor, size: tuple[int, int]) -> Tensor:
    """(B, H·W) rank of each input pixel when sorted by the bilinear-upsampled saliency, most salient = 0 (stable ties)."""
    up = F.interpolate(saliency.float().unsqueeze(1), size=size, mode="bilinear", align_corners=False).flatten(1)
    order = torch.argsort(-up, dim=1, stable=True)
    return _ranks(order)


def random_ranks(batch: int, size: tuple[int, int], generator: torch.Generator) -> Tensor:
    """(B, H·W) ranks of a seeded random pixel order per image."""
    order = torch.argsort(torch.rand(batch, size[0] * size[1], generator=generator), dim=1)
    return _ranks(order)


def _ranks(order: Tensor) -> Tensor:
    """Inverse permutation of each row of `order`."""
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order).contiguous())
    return ranks


@torch.no_grad()
def deletion_curve(model: FERModel, x: Tensor, target: Tensor, ranks: Tensor, steps: int) -> Tensor:
    """(B, steps+1) probability of `target` after deleting the first k/steps of pixels by `ranks` (k = 0..steps)."""
    b, _, h, w = x.shape
    n = h * w
    probs = []
    for k in range(steps + 1):
        keep = (ranks >= int(round(k * n / steps))).view(b, 1, h, w).to(x.dtype)
        logits = model(x * keep, layers=()).logits.float()
        probs.append(logits.softmax(dim=1).gather(1, target.view(-1, 1)).squeeze(1))
    return torch.stack(probs, dim=1)


def auc(curve: Tensor) -> np.ndarray:
    """Trapezoid area under (B, steps+1) curves on x = 0..1."""
    c = curve.double().cpu().numpy()
    return (c[:, 1:] + c[:, :-1]).sum(axis=1) / (2.0 * (c.shape[1] - 1))


def deletion_scores(
    model: FERModel, batches: list[Tensor], *, steps: int = 8, seed: int = 0, device: torch.device | None = None
) -> Deletion:
    """Deletion AUCs (CAM order and random order) for every image of `batches` (normalised (B,3,H,W) inputs)."""
    if steps < 1:
        raise ValueError(f"evaluate.deletion_steps must be >= 1, got {steps}")
    device = device or next(model.parameters()).device
    model.eval()
    gen = torch.Generator().manual_seed(int(seed))
    targets, cams, rands = [], [], []
    for x in batches:
        x = x.to(device)
        with torch.no_grad():
            target = model(x, layers=()).logits.argmax(dim=1)
        saliency = model.cam(x, target)  # the method's own hook; gradient methods need grad, so no no_grad here
        size = (x.shape[-2], x.shape[-1])
        r_cam = pixel_ranks(saliency.detach(), size).to(device)
        r_rand = random_ranks(x.shape[0], size, gen).to(device)
        cams.append(auc(deletion_curve(model, x, target, r_cam, steps)))
        rands.append(auc(deletion_curve(model, x, target, r_rand, steps)))
        targets.append(target.cpu().numpy())
    if not targets:
        return Deletion(np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
    return Deletion(np.concatenate(targets).astype(np.int64), np.concatenate(cams), np.concatenate(rands))


def subset_indices(n: int, k: int) -> np.ndarray:
    """`k` evenly spaced indices into `n` rows (all rows when k >= n; none when k <= 0): deterministic, class-agnostic."""
    if k <= 0 or n == 0:
        return np.zeros(0, np.int64)
    if k >= n:
        return np.arange(n, dtype=np.int64)
    return np.unique(np.linspace(0, n - 1, k).round().astype(np.int64))
