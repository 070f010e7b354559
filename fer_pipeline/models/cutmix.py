"""CutMix (Yun et al., ICCV 2019): in training, a box of another image of the batch is pasted in, and its AU map with it.

`mix_batch` draws lam ~ Beta(beta, beta) (with probability `prob`), a box of area (1 - lam) of the image, and a batch
permutation; the image AND its AU map get the partner's box (the map's box scaled to the map's size), the target becomes
the area-weighted mix of both labels, and a sample has a map when the mixed map is non-empty. Evaluation: identity.
Defaults beta 1, prob 1 (the CutMix ImageNet/WSOL setting). CAM of class k and layers 1..5: as CAM.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from fer_pipeline.models.cam import CAM
from fer_pipeline.models.registry import register_method


def rand_box(h: int, w: int, lam: float, generator: torch.Generator | None = None) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of a box of area ~(1 - lam)·h·w centred uniformly, clipped to the image (as published)."""
    cut = math.sqrt(1.0 - lam)
    ch, cw = int(h * cut), int(w * cut)
    cy = int(torch.randint(h, (1,), generator=generator))
    cx = int(torch.randint(w, (1,), generator=generator))
    return max(cy - ch // 2, 0), min(cy + ch // 2, h), max(cx - cw // 2, 0), min(cx + cw // 2, w)


def cutmix(
    x: Tensor, au: Tensor, has_map: Tensor, y: Tensor, perm: Tensor, box: tuple[int, int, int, int], num_classes: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Paste `box` of x[perm] into x and the same box (scaled) of au[perm] into au; soft targets weighted by the kept area."""
    y0, y1, x0, x1 = box
    h, w = x.shape[-2:]
    x = x.clone()
    x[:, :, y0:y1, x0:x1] = x[perm, :, y0:y1, x0:x1]
    mh, mw = au.shape[-2:]
    my0, my1 = round(y0 * mh / h), round(y1 * mh / h)
    mx0, mx1 = round(x0 * mw / w), round(x1 * mw / w)
    au = torch.where(has_map.view(-1, 1, 1), au.float(), 0.0)  # a map-less sample contributes an empty region
    mixed = au.clone()
    mixed[:, my0:my1, mx0:mx1] = au[perm, my0:my1, mx0:mx1]
    kept = 1.0 - (y1 - y0) * (x1 - x0) / (h * w)
    hard = y.argmax(dim=1) if y.ndim == 2 else y
    onehot = F.one_hot(hard, num_classes).float()
    soft = kept * onehot + (1.0 - kept) * onehot[perm]
    has = (has_map | has_map[perm]) & (mixed.flatten(1).amax(dim=1) > 0)
    return x, mixed, has, soft


@register_method("cutmix")
class CutMix(CAM):
    """CAM trained with CutMix applied to the image and its AU map alike."""

    options = {"beta": 1.0, "prob": 1.0}

    def mix_batch(self, x: Tensor, au: Tensor, has_map: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """CutMix in training (with probability `prob`); the batch unchanged in eval."""
        beta, prob = float(self.opts["beta"]), float(self.opts["prob"])
        if not self.training or beta <= 0 or x.shape[0] < 2 or not bool(torch.rand(()) < prob):
            return x, au, has_map, y
        lam = float(torch.distributions.Beta(beta, beta).sample())
        perm = torch.randperm(x.shape[0]).to(x.device)
        box = rand_box(x.shape[-2], x.shape[-1], lam)
        return cutmix(x, au, has_map.bool(), y, perm, box, self.num_classes)
