"""PRM (Zhou et al., CVPR 2018): class response maps whose logits come from peak stimulation.

Peaks are local maxima in a `win_size` window that reach the map's median (the published median peak filter); the
class score is the mean of its peaks, so the gradient flows only through the peaks (peak stimulation).
CAM of class k: its peak-stimulated class response map (as in WSOL use of PRM and the paper's reference code).
Peak response maps proper (back-propagating every peak to the image, PRM §3.3, for instance masks) are not produced:
they need one backward pass per peak and serve instance segmentation, not a per-class map.
Layers 1..5: the backbone's stem and stages.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from fer_pipeline.models.base import FERModel
from fer_pipeline.models.registry import register_method


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


class PRMHead(nn.Module):
    """1x1 conv to class response maps, peak-stimulated logits."""

    def __init__(self, in_channels: int, num_classes: int, win_size: int) -> None:
        super().__init__()
        self.win_size = win_size
        self.conv = nn.Conv2d(in_channels, num_classes, kernel_size=1)

    def forward(self, feat: Tensor) -> tuple[Tensor, Tensor]:
        """(B, C, h, w) -> logits (B, K) and class response maps (B, K, h, w)."""
        crm = self.conv(feat)
        return peak_stimulation(crm, self.win_size), crm


@register_method("prm")
class PRM(FERModel):
    """Peak response mapping head on a timm backbone."""

    options = {"win_size": 3}

    def build_head(self, in_channels: int, num_classes: int) -> nn.Module:
        """Class response maps + peak stimulation."""
        return PRMHead(in_channels, num_classes, **self.opts)

