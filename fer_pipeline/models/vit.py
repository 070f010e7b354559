"""Transformer pieces shared by TS-CAM and APViT: timm blocks run with their attention weights exposed, a timm ViT
that returns token grids (layers 1..4) and the class-token attention map (layer 5).

timm's fused attention does not return its weights, so `attention_forward` recomputes timm's `Attention.forward`
from the module's own layers (qkv, q/k norm, softmax, proj) and also returns the softmax weights; a test checks it
against timm's output.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import timm
import torch
from timm.models.vision_transformer import Block, VisionTransformer, checkpoint_filter_fn
from torch import Tensor, nn

from fer_pipeline.models.backbone import Backbone, _match_keys, _read_state_dict, check_pretrained_name, is_weights_file

Pool = Callable[[Tensor, Tensor], Tensor]
#: Patch embeddings: `linear` (ViT/DeiT's patch_size-strided projection), `conv` (Xiao et al.'s convolutional stem);
#: any other value names a timm CNN whose first four feature levels embed the patches (ViT-Hybrid, `CNNStem`).
STEMS = ("linear", "conv", "<timm CNN name>")


def attention_forward(attn: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """timm `Attention` on (B, N, C) tokens -> (output (B, N, C), softmax weights (B, heads, N, N))."""
    b, n, _ = x.shape
    heads, head_dim = attn.num_heads, attn.head_dim
    gate = attn.gate(x).sigmoid() if getattr(attn, "gate", None) is not None else None
    q, k, v = attn.qkv(x).reshape(b, n, 3, heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)
    q, k = attn.q_norm(q), attn.k_norm(k)
    weights = ((q * attn.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
    out = (attn.attn_drop(weights) @ v).transpose(1, 2).reshape(b, n, heads * head_dim)
    out = getattr(attn, "norm", nn.Identity())(out)
    if gate is not None:
        out = out * gate
    return attn.proj_drop(attn.proj(out)), weights


def block_forward(blk: Block, x: Tensor, pool: Pool | None = None) -> tuple[Tensor, Tensor]:
    """A timm pre-norm `Block` -> (tokens, attention weights); `pool(tokens, weights)` may drop tokens before the MLP (APViT)."""
    out, weights = attention_forward(blk.attn, blk.norm1(x))
    x = x + blk.drop_path1(blk.ls1(out))
    if pool is not None:
        x = pool(x, weights)
    x = x + blk.drop_path2(blk.ls2(blk.mlp(blk.norm2(x))))
    return x, weights


def create_vit(name: str, pretrained: str, **kwargs: Any) -> nn.Module:
    """A timm model with weights from nowhere ("none"), a timm pretrained tag, or a local file (embeddings resampled)."""
    pretrained = str(pretrained or "none")
    if pretrained.lower() == "none":
        return timm.create_model(name, pretrained=False, **kwargs)
    if not is_weights_file(pretrained):
        check_pretrained_name(name, pretrained)
        return timm.create_model(pretrained, pretrained=True, **kwargs)
    model = timm.create_model(name, pretrained=False, **kwargs)
    own = model.state_dict()
    sd = checkpoint_filter_fn(_match_keys(_read_state_dict(Path(pretrained)), set(own)), model)
    missing = sorted(k for k in own if k not in sd)
    if missing:
        raise ValueError(f"pretrained weights {pretrained} do not fit {name}: {len(missing)} missing keys, e.g. {missing[:5]}")
    model.load_state_dict({k: sd[k] for k in own}, strict=True)
    return model


def conv_stem(dim: int, patch_size: int, in_chans: int = 3) -> nn.Sequential:
    """Xiao et al. 2021's convolutional stem ("Early convolutions help transformers see better"): log2(patch) 3x3
    stride-2 conv-BN-ReLU layers, channels doubling up to `dim` (192: 48, 96, 192 for patch 8), then a 1x1 conv to
    `dim` -- the same token grid as a `patch_size` linear patch embedding."""
    steps = int(patch_size).bit_length() - 1
    if patch_size < 2 or 2**steps != patch_size:
        raise ValueError(f"a convolutional stem needs a power-of-two patch_size >= 2, got {patch_size}")
    layers: list[nn.Module] = []
    c_in = in_chans
    for i in range(steps):
        c_out = max(8, dim // 2 ** (steps - 1 - i))
        layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        c_in = c_out
    return nn.Sequential(*layers, nn.Conv2d(c_in, dim, 1))


class CNNStem(nn.Module):
    """ViT-Hybrid patch embedding (Dosovitskiy et al., ICLR 2021, §3.1 "Hybrid Architecture"): a timm CNN's first four
    feature levels at output stride `patch_size` (weights `pretrained`: none, a weights file such as stage pretrain's,
    or a timm tag), then a 1x1 conv to the token width."""

    def __init__(self, name: str, dim: int, patch_size: int, pretrained: str = "none") -> None:
        super().__init__()
        try:
            self.body = Backbone(name, pretrained=pretrained, output_stride=patch_size, levels=4)
        except (RuntimeError, ValueError) as e:
            raise ValueError(f"ViT stem {name!r} unknown: valid: linear, conv, or a timm CNN name such as resnet10t ({e})") from e
        if self.body.reductions[self.body.layer_names[-1]] != patch_size:
            raise ValueError(f"ViT stem {name!r} does not reach stride patch_size={patch_size} in its first four levels")
        self.proj = nn.Conv2d(self.body.head_channels, dim, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, dim, H / patch, W / patch)."""
        return self.proj(self.body(x)[-1])


def token_grid(tokens: Tensor, prefix: int, h: int, w: int) -> Tensor:
    """(B, prefix + h·w, C) tokens -> (B, C, h, w) patch-token grid."""
    return tokens[:, prefix:].transpose(1, 2).reshape(tokens.shape[0], -1, h, w)


class ViTTokens(nn.Module):
    """A timm ViT (DeiT) as a layered feature extractor.

    Layers 1..3: patch-token grids after blocks depth/4, depth/2, 3·depth/4; layer 4: the final normed patch tokens;
    layer 5: the class token's attention to the patches, averaged over heads and summed over blocks (B, 1, h, w) —
    TS-CAM's semantic-agnostic attention map.
    """

    def __init__(self, name: str, pretrained: str, img_size: int, patch_size: int, depth: int = 0, stem: str = "linear",
                 stem_pretrained: str = "none") -> None:
        super().__init__()
        kwargs: dict[str, Any] = {"num_classes": 0, "img_size": img_size, "patch_size": patch_size, "dynamic_img_size": True}
        if depth > 0:
            kwargs["depth"] = depth
        try:
            self.vit = create_vit(name, pretrained, **kwargs)
        except (RuntimeError, TypeError) as e:  # timm refuses the kwargs: not a ViT
            raise ValueError(f"backbone {name!r} is not a timm VisionTransformer (e.g. deit_small_patch16_224): {e}") from e
        if not isinstance(self.vit, VisionTransformer):
            raise ValueError(f"backbone {name!r} is not a timm VisionTransformer (e.g. deit_small_patch16_224)")
        if str(stem_pretrained).lower() != "none" and stem in ("linear", "conv"):
            raise ValueError(f"stem_pretrained {stem_pretrained!r} needs a CNN stem (stem: a timm CNN such as resnet10t); "
                             f"stem {stem!r} has no weights to load")
        if stem != "linear":  # replaces the linear patch projection (pretrained weights, if any, keep everything else)
            dim = int(self.vit.embed_dim)
            self.vit.patch_embed.proj = (conv_stem(dim, patch_size) if stem == "conv"
                                         else CNNStem(stem, dim, patch_size, stem_pretrained))
        n = len(self.vit.blocks)
        if n < 4:
            raise ValueError(f"the ViT needs >= 4 blocks to name layers 1..4, got depth {n}")
        #: Block count after which layers 1..3 are tapped.
        self.taps: dict[int, int] = {round(n * k / 4): k for k in (1, 2, 3)}
        dim = int(self.vit.embed_dim)
        self.layer_names: tuple[int, ...] = (1, 2, 3, 4, 5)
        self.channels: dict[int, int] = {1: dim, 2: dim, 3: dim, 4: dim, 5: 1}
        self.head_channels: int = dim
        cfg = getattr(self.vit, "pretrained_cfg", None) or {}
        self.mean: tuple[float, ...] = tuple(cfg.get("mean", (0.485, 0.456, 0.406)))
        self.std: tuple[float, ...] = tuple(cfg.get("std", (0.229, 0.224, 0.225)))

    def forward(self, x: Tensor) -> list[Tensor]:
        """Layers 1..5 for an image batch of any size divisible by the patch size (position embeddings are resampled)."""
        vit = self.vit
        t = vit.patch_embed(x)  # (B, h, w, C): dynamic_img_size keeps the grid
        b, h, w, _ = t.shape
        t = vit.norm_pre(vit.patch_drop(vit._pos_embed(t)))
        prefix = int(vit.num_prefix_tokens)
        att = torch.zeros(b, h * w, device=x.device, dtype=t.dtype)
        out: list[Tensor] = []
        for i, blk in enumerate(vit.blocks, start=1):
            t, weights = block_forward(blk, t)
            att = att + weights.mean(dim=1)[:, 0, prefix:]
            if i in self.taps:
                out.append(token_grid(t, prefix, h, w))
        out.append(token_grid(vit.norm(t), prefix, h, w))
        out.append(att.view(b, 1, h, w))
        return out
