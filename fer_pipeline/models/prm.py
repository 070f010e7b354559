"""PRM (Zhou et al., CVPR 2018): class response maps from a 1x1 class-aware conv, logits from their local peaks.

`pooling` says how a class response map (CRM) becomes a logit:
- `peaks` (default, the published method): Zhou et al.'s peak stimulation -- the mean of the local maxima (win_size
  window) that reach the map's median (the published median peak filter); gradient flows only through those peaks.
- `local_max`: 3x3 (`win_size`) stride-1 max pooling of the CRM, then its spatial mean -- PRM as the paper we
  reproduce implements it (Belharbi et al.'s reference code, `dlib/poolings/core.py` class `PRM`), so Table 1's PRM
  numbers come from this form. Every position passes gradient through its window's maximum.
Both are max-type aggregations: only a window's maximum receives gradient. Trained from scratch with the AU alignment
(which makes the face's layer-5 features large in every channel), peak stimulation falls into a trap: a class map whose
face values are pushed below the rest never receives gradient there again, every class's map ends strongly negative on
the face, the class evidence sits at off-face maxima (whose receptive field covers the face), and the min-max CAM lights
the background. That is the aggregation's behaviour, not a sign error (`tests/test_map_orientation.py` pins the trap as
a strict xfail). From a pretrained backbone `local_max` keeps its accuracy with AUs and its maximum moves onto the AU
region, but its CAM-COS still falls a little: a quarter of the map's positions are some window's maximum, and the rest,
which never receives the class gradient, is not pushed down off the AU region as CAM's is (`benchmarks/prm_maps.py`,
docs/results/table1-cpu.md). With a 1 x 1 window the head is CAM's.
CAM of class k: its class response map, min-max normalised like every bottom-up map (as the reference code does).
Peak response maps proper (back-propagating every peak to the image, PRM §3.3, for instance masks) are not produced:
they need one backward pass per peak and serve instance segmentation, not a per-class map.
Layers 1..5: the backbone's stem and stages.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from fer_pipeline.models.base import FERModel
from fer_pipeline.models.registry import register_method

#: Valid values of the `pooling` option.
POOLINGS = ("local_max", "peaks")


def peak_mask(crm: Tensor, win_size: int) -> Tensor:
    """bool (B, K, h, w): local maxima in a win_size window (borders padded with -inf) that are >= the map's median."""
    if win_size < 1 or win_size % 2 == 0:
        raise ValueError(f"prm win_size must be an odd number >= 1, got {win_size}")
    crm = crm.detach()
    local_max = F.max_pool2d(crm, kernel_size=win_size, stride=1, padding=win_size // 2)
    median = crm.flatten(2).median(dim=-1).values[..., None, None]
    return (crm >= local_max) & (crm >= median)


def peak_stimulation(crm: Tensor, win_size: int) -> Tensor:
    """(B, K, h, w) -> (B, K): mean response at the peaks (the global maximum is always one, so never empty)."""
    mask = peak_mask(crm, win_size).to(crm.dtype)
    return (crm * mask).sum(dim=(2, 3)) / mask.sum(dim=(2, 3)).clamp_min(1)


def local_max_pool(crm: Tensor, win_size: int) -> Tensor:
    """(B, K, h, w) -> (B, K): spatial mean of the win_size stride-1 max-pooled map (no padding; maps smaller than the
    window are pooled whole)."""
    if win_size < 1 or win_size % 2 == 0:
        raise ValueError(f"prm win_size must be an odd number >= 1, got {win_size}")
    k = min(win_size, crm.shape[-2], crm.shape[-1])
    return F.max_pool2d(crm, kernel_size=k, stride=1).mean(dim=(2, 3))


class PRMHead(nn.Module):
    """1x1 conv to class response maps; logits by local-max pooling or peak stimulation."""

    def __init__(self, in_channels: int, num_classes: int, win_size: int, pooling: str) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"methods.prm.pooling={pooling!r} unknown; valid: {', '.join(POOLINGS)}")
        self.win_size, self.pooling = win_size, pooling
        self.conv = nn.Conv2d(in_channels, num_classes, kernel_size=1)

    def forward(self, feat: Tensor) -> tuple[Tensor, Tensor]:
        """(B, C, h, w) -> logits (B, K) and class response maps (B, K, h, w)."""
        crm = self.conv(feat)
        pool = peak_stimulation if self.pooling == "peaks" else local_max_pool
        return pool(crm, self.win_size), crm


@register_method("prm")
class PRM(FERModel):
    """Peak response mapping head on a timm backbone."""

    options = {"win_size": 3, "pooling": "peaks"}

    def build_head(self, in_channels: int, num_classes: int) -> nn.Module:
        """Class response maps + their pooling to logits."""
        return PRMHead(in_channels, num_classes, **self.opts)
