"""WILDCAT (Durand et al., CVPR 2017): M modality maps per class, class-wise mean, then kmax/kmin/alpha spatial pooling.

CAM of class k: its class map (the mean of its M modality maps). Layers 1..5: the backbone's stem and stages.
Defaults are the authors' published setting (wildcat.pytorch VOC 2007 demo: `--k 0.2 --maps 8 --alpha 0.7`).
"""

from __future__ import annotations

from torch import Tensor, nn

from fer_pipeline.models.base import FERModel
from fer_pipeline.models.registry import register_method


def region_count(k: float, n: int) -> int:
    """Number of regions a kmax/kmin value selects among n: a fraction of n when k < 1, else a count (at most n)."""
    if k <= 0:
        return 0
    return min(n, max(1, round(k * n))) if k < 1 else min(n, int(k))


def wildcat_pool(maps: Tensor, kmax: float, kmin: float, alpha: float) -> Tensor:
    """(B, K, h, w) -> (B, K): mean of the kmax highest regions (+ alpha · mean of the kmin lowest, halved), as published."""
    flat = maps.flatten(2)
    n = flat.shape[-1]
    ordered = flat.sort(dim=-1, descending=True).values
    n_max, n_min = region_count(kmax, n), region_count(kmin, n)
    score = ordered[..., :n_max].mean(dim=-1)
    if n_min > 0 and alpha != 0:
        score = (score + alpha * ordered[..., n - n_min :].mean(dim=-1)) / 2
    return score


class WildcatHead(nn.Module):
    """1x1 conv to K·M modality maps, class-wise mean pooling, WILDCAT spatial pooling to logits."""

    def __init__(self, in_channels: int, num_classes: int, modalities: int, kmax: float, kmin: float, alpha: float) -> None:
        super().__init__()
        if modalities < 1 or kmax <= 0:
            raise ValueError(f"wildcat: need modalities >= 1 and kmax > 0, got modalities={modalities}, kmax={kmax}")
        self.num_classes, self.modalities = num_classes, modalities
        self.kmax, self.kmin, self.alpha = kmax, kmin, alpha
        self.conv = nn.Conv2d(in_channels, num_classes * modalities, kernel_size=1)

    def forward(self, feat: Tensor) -> tuple[Tensor, Tensor]:
        """(B, C, h, w) -> logits (B, K) and class maps (B, K, h, w)."""
        b, _, h, w = feat.shape
        maps = self.conv(feat).view(b, self.num_classes, self.modalities, h, w).mean(dim=2)
        return wildcat_pool(maps, self.kmax, self.kmin, self.alpha), maps


@register_method("wildcat")
class WILDCAT(FERModel):
    """WILDCAT head on a timm backbone."""

    options = {"modalities": 8, "kmax": 0.2, "kmin": 0.2, "alpha": 0.7}

    def build_head(self, in_channels: int, num_classes: int) -> nn.Module:
        """Modality maps + kmax/kmin/alpha pooling."""
        return WildcatHead(in_channels, num_classes, **self.opts)
