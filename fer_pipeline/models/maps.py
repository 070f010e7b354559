"""Map helpers shared by the loss and the evaluation: min-max, layer attention T_l, resize, cosine.

T_l is the paper's raw channel mean (Eq. 1). The `cos` loss uses it as is by default (`train.att_norm: none`). ATT-COS
scores it as the paper's reference code does (`reference_attention`: upsampled raw mean, shifted only when negative);
the figures show it min-max normalised to [0, 1]. docs/reference/metrics.md cites the reference lines.

Everything works in float32 (features may arrive in bf16/fp16 under autocast, where 1e-8 underflows).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def minmax(x: Tensor, eps: float = 1e-8) -> Tensor:
    """Per-sample min-max over the last two dims to [0, 1]; a constant map becomes zeros (finite grads)."""
    x = x.float()
    lo = x.amin(dim=(-2, -1), keepdim=True)
    hi = x.amax(dim=(-2, -1), keepdim=True)
    # (x - lo) <= (hi - lo), so clamping the range keeps the output in [0, 1] and a flat map at 0.
    return (x - lo) / (hi - lo).clamp_min(eps)


#: Normalisations of T_l: none (the paper's raw channel mean, Eq. 1) | minmax (per map to [0, 1]).
ATT_NORMS: tuple[str, ...] = ("none", "minmax")


def attention(feat: Tensor, norm: str = "minmax") -> Tensor:
    """T_l of the paper (Eq. 1): channel mean of (B, C, h, w) features -> (B, h, w), float32.

    `norm="minmax"` (the default: figures, pointing game, energy share, ATT-COS's min-max variant) maps each T_l to
    [0, 1]; `norm="none"` keeps the raw mean, which the `cos` loss trains on by default and ATT-COS scores
    (`reference_attention`): min-max would drop the background level from the cosine.
    """
    if feat.ndim != 4:
        raise ValueError(f"attention expects (B, C, h, w) features, got shape {tuple(feat.shape)}")
    if norm not in ATT_NORMS:
        raise ValueError(f"unknown attention normalisation {norm!r}; valid: {', '.join(ATT_NORMS)}")
    mean = feat.float().mean(dim=1)
    return minmax(mean) if norm == "minmax" else mean


def resize(x: Tensor, size: tuple[int, int], *, antialias: bool = True) -> Tensor:
    """Bilinear resize of (B, h, w) maps (align_corners=False).

    `antialias` only matters when shrinking (e.g. a 56x56 AU map to a 7x7 T_l): without it, thin AU
    regions fall between the sampled pixels. Enlarging is plain bilinear either way.
    """
    size = (int(size[0]), int(size[1]))
    if tuple(x.shape[-2:]) == size:
        return x
    x = x.float().unsqueeze(1)
    shrink = x.shape[-2] > size[0] or x.shape[-1] > size[1]
    out = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=antialias and shrink)
    return out.squeeze(1)


def reference_attention(feat: Tensor, size: tuple[int, int]) -> Tensor:
    """The map ATT-COS scores: T_l (raw channel mean of (B, C, h, w) features) at `size` (the AU map's), as the reference
    code evaluates it: bilinear with align_corners=True and antialias, clamped to T_l's own range, shifted by -min when
    its min is negative (no min-max: the background level counts, as in the `cos` loss)."""
    mean = attention(feat, norm="none")
    size = (int(size[0]), int(size[1]))
    lo = mean.amin(dim=(-2, -1), keepdim=True)
    hi = mean.amax(dim=(-2, -1), keepdim=True)
    up = mean
    if tuple(mean.shape[-2:]) != size:
        up = F.interpolate(mean.unsqueeze(1), size=size, mode="bilinear", align_corners=True, antialias=True).squeeze(1)
    up = torch.minimum(torch.maximum(up, lo), hi)
    return up - lo.clamp_max(0.0)


def cosine(a: Tensor, b: Tensor, eps: float = 1e-8) -> Tensor:
    """Cosine of flattened (B, h, w) maps -> (B,); 0 (with zero grad) where either map has ~zero norm."""
    if a.shape != b.shape:
        raise ValueError(f"cosine needs maps of equal shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    a = a.float().flatten(1)
    b = b.float().flatten(1)
    dot = (a * b).sum(dim=1)
    nn2 = (a * a).sum(dim=1) * (b * b).sum(dim=1)
    ok = nn2 > eps * eps
    # Square root of a safe value only: sqrt'(0) is inf and would turn 0 * inf into NaN gradients. In float64, rounded
    # back: torch's float32 sqrt on CPU is not correctly rounded and its last bits differ between processors
    # (docs/guides/reproducibility.md); this gives the correctly rounded float32 root on every machine.
    denom = torch.where(ok, nn2, torch.ones_like(nn2)).double().sqrt().to(nn2.dtype)
    return torch.where(ok, dot / denom, torch.zeros_like(dot))


def select_class(cams: Tensor, target: Tensor) -> Tensor:
    """Pick each sample's map of class `target[b]` from (B, K, h, w) class maps -> (B, h, w)."""
    idx = target.to(device=cams.device, dtype=torch.long).view(-1, 1, 1, 1)
    return cams.gather(1, idx.expand(-1, 1, *cams.shape[-2:])).squeeze(1)
