"""The paper's composite loss (Eq. 3): CE + λ · mean over layers of (1 − cos(T_l, A)), masked where A is missing.

Which T_l each alignment loss compares with A (A is in [0, 1]):
- `cos`: T_l as `train.att_norm` says: `none` (default) the paper's raw channel mean (Eq. 1-3), `minmax` per map to
  [0, 1]. A cosine ignores scale, so min-max changes one thing: it removes the background level from the comparison.
- `l1`, `l2`: always min-max T_l: a distance needs both maps on A's [0, 1] scale.
- `kl`: always min-max T_l, then both maps divided by their sum (a distribution needs non-negative mass).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from fer_pipeline.models.base import ModelOutput
from fer_pipeline.models.maps import ATT_NORMS, attention, cosine, resize

ALIGN_KINDS: tuple[str, ...] = ("cos", "l1", "l2", "kl")


def loss_norm(kind: str, att_norm: str = "none") -> str:
    """The normalisation of T_l that alignment loss `kind` compares with A: `att_norm` for cos, min-max otherwise."""
    if att_norm not in ATT_NORMS:
        raise ValueError(f"unknown attention normalisation {att_norm!r}; valid: {', '.join(ATT_NORMS)}")
    return att_norm if kind == "cos" else "minmax"


def _as_maps(au: Tensor) -> Tensor:
    """AU maps as float in [0, 1] (uint8 maps as stored in the HDF5 are divided by 255)."""
    return au.float() / 255.0 if au.dtype == torch.uint8 else au.float()


def _per_sample(att: Tensor, au: Tensor, kind: str, eps: float = 1e-8) -> Tensor:
    """Alignment loss of each sample, (B,)."""
    if kind == "cos":
        return 1.0 - cosine(att, au)
    if kind == "l1":
        return (att - au).abs().flatten(1).mean(dim=1)
    if kind == "l2":
        return (att - au).square().flatten(1).mean(dim=1)
    if kind == "kl":  # KL(A || T) between the maps normalised to sum 1 (no softmax: zeros stay zeros)
        p = au.flatten(1)
        q = att.flatten(1)
        p = p / p.sum(dim=1, keepdim=True).clamp_min(eps)
        q = q / q.sum(dim=1, keepdim=True).clamp_min(eps)
        return (p * ((p + eps).log() - (q + eps).log())).sum(dim=1)
    raise ValueError(f"unknown alignment loss {kind!r}; valid: {', '.join(ALIGN_KINDS)}")


def alignment_loss(att: Tensor, au: Tensor, has_map: Tensor, kind: str = "cos", *, mapped: Tensor | None = None) -> Tensor:
    """Mean alignment loss over samples with a map; `au` (B, H, W) is resized to `att`'s (h, w).

    Samples without a map contribute exactly nothing (their AU map is zeroed first, so garbage or NaN
    there cannot leak in); with no map in the batch the result is a zero that still carries grad.
    `mapped`: the denominator instead of this batch's mapped rows (under DDP: `distributed.mapped_rows`, so that the
    averaged gradients are those of the mean over the mapped rows of all processes).
    """
    if att.ndim != 3 or au.ndim != 3 or att.shape[0] != au.shape[0]:
        raise ValueError(f"alignment_loss needs att (B,h,w) and au (B,H,W), got {tuple(att.shape)} and {tuple(au.shape)}")
    mask = has_map.to(device=att.device, dtype=torch.bool).view(-1)
    au = torch.where(mask.view(-1, 1, 1), _as_maps(au).to(att.device), 0.0)
    au = resize(au, tuple(att.shape[-2:]))
    per = _per_sample(att.float(), au, kind)
    per = torch.where(mask, per, torch.zeros_like(per))
    # Division by max(n, 1) instead of a host-side `if n == 0`: no GPU sync, and 0 * grad when empty.
    return per.sum() / (mask.sum().clamp_min(1) if mapped is None else mapped)


def _cross_entropy(logits: Tensor, y: Tensor, class_weight: Tensor | None, weight_sum: Tensor | None) -> Tensor:
    """CE over the batch: the (weighted) mean, or with `weight_sum` (hard labels) the weighted sum divided by it."""
    if class_weight is None or weight_sum is None or y.ndim != 1:
        return F.cross_entropy(logits.float(), y, weight=class_weight)
    return F.cross_entropy(logits.float(), y, weight=class_weight, reduction="sum") / weight_sum


def guided_loss(
    out: ModelOutput,
    y: Tensor,
    au: Tensor,
    has_map: Tensor,
    lam: float,
    layers: Sequence[int],
    kind: str = "cos",
    *,
    class_weight: Tensor | None = None,
    att_norm: str = "none",
    mapped: Tensor | None = None,
    weight_sum: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """(total, ce, align): total = CE + lam * mean over `layers` of alignment_loss(T_l, A).

    `att_norm`: T_l of the `cos` loss, none (the paper's raw mean) | minmax; l1 / l2 / kl always use min-max (`loss_norm`).

    `class_weight` (K,): per-class CE weights (`train.balance: weights`; the weighted mean over the batch); None: plain CE.

    `mapped`: the alignment mean's denominator (`alignment_loss`); None: the mapped rows of this batch. `weight_sum`: the
    class-weighted CE's denominator instead of this batch's sum of row weights (under DDP: `global_denominators`).

    With lam == 0 the alignment is computed under no_grad (for logging only), so it adds no backward; with lam == 0 and
    no layers (the λ = 0 baseline, which reads no AU maps) it is 0. `out` must come from `model(x, layers=layers)`.
    """
    if kind not in ALIGN_KINDS:
        raise ValueError(f"unknown alignment loss {kind!r}; valid: {', '.join(ALIGN_KINDS)}")
    norm = loss_norm(kind, att_norm)
    layers = tuple(layers)
    if not layers:
        if lam != 0:
            raise ValueError("guided_loss needs at least one layer when lambda > 0")
        ce = _cross_entropy(out.logits, y, class_weight, weight_sum)
        return ce, ce, torch.zeros((), device=ce.device)
    missing = [v for v in layers if v not in out.features]
    if missing:
        raise KeyError(f"features of layers {missing} not in the model output (have {sorted(out.features)}); "
                       f"call model(x, layers={list(layers)})")
    ce = _cross_entropy(out.logits, y, class_weight, weight_sum)
    with torch.set_grad_enabled(torch.is_grad_enabled() and lam != 0):
        align = torch.stack(
            [alignment_loss(attention(out.features[v], norm), au, has_map, kind, mapped=mapped) for v in layers]
        ).mean()
    total = ce + lam * align if lam != 0 else ce
    return total, ce, align
