"""CAM (Zhou et al. 2016): GAP + linear classifier on the last layer; cams[:, k] = sum_c W[k, c] F[:, c]."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from fer_pipeline.models.base import FERModel
from fer_pipeline.models.registry import register_method


class CAMHead(nn.Module):
    """Linear classifier whose weights double as 1x1 class-map filters, so logits == mean(cams) + bias."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, feat: Tensor) -> tuple[Tensor, Tensor]:
        """(B, C, h, w) -> logits (B, K) and raw class maps (B, K, h, w)."""
        cams = F.conv2d(feat, self.fc.weight[:, :, None, None])
        logits = self.fc(feat.mean(dim=(2, 3)))
        return logits, cams


@register_method("cam")
class CAM(FERModel):
    """Class activation mapping on a timm backbone (the paper's main method)."""

    def build_head(self, in_channels: int, num_classes: int) -> nn.Module:
        """GAP + linear, read out spatially for the CAM."""
        return CAMHead(in_channels, num_classes)
