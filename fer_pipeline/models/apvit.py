"""APViT (Xue et al., IEEE TAC 2022): a CNN stem, attentive patch pooling (APP), a ViT with attentive token pooling (ATP).

A faithful small version of the published model (IR-50 stages 1-3 -> 1x1 projection -> keep the top k=160 of the
14x14 tokens by attention sum|x| over channels -> 8 ViT blocks (768-d, 8 heads, MLP ratio 3, no qkv bias), blocks
5-8 keeping 90 % of the tokens by class-token attention -> class token -> linear). Deviations, all documented here:
- the stem is a timm backbone (`train.backbone`) cut after its 4th feature level at `stem_stride` 8 (IR-50's three
  stages give stride 8 too); IR-50's MS-Celeb-1M face weights are not in timm, so `train.pretrained` (e.g. ImageNet)
  applies to the stem and the ViT part starts from random init (the paper's starts from ViT-S ImageNet weights);
- k is a fraction of the token count (`keep_ratio` = 160/196) so other input sizes keep the same share;
- ATP ranks tokens by the class token's softmax attention summed over heads (the reference sums pre-softmax scores).
APViT has no class-specific CAM (the paper reports no CAM-COS for it): its CAM, for every class, is the APP attention
map. Layers 1..4: the stem's four levels (4 = the map the tokens are projected from); layer 5: the APP attention map
(B, 1, h, w). `params.yaml` aligns layer 4 (`methods.apvit.layers`), as the paper's code does (it aligns the stem's
output, before the projection, and its scores never receive gradient); aligning layer 5 steers which tokens are kept
and costs accuracy (docs/results/table1-cpu.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from timm.layers import resample_abs_pos_embed, trunc_normal_
from timm.models.vision_transformer import Block
from torch import Tensor, nn

from fer_pipeline.models.backbone import Backbone
from fer_pipeline.models.base import FERModel, ModelOutput
from fer_pipeline.models.registry import register_method
from fer_pipeline.models.vit import block_forward

#: Input side used when the model is built without one (APViT's 112 x 112).
DEFAULT_IMG_SIZE = 112


def top_tokens(tokens: Tensor, score: Tensor, keep: int) -> Tensor:
    """The `keep` (B, N, C) tokens with the highest (B, N) score, in their original order."""
    idx = score.topk(keep, dim=1).indices.sort(dim=1).values
    return tokens.gather(1, idx.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))


def attentive_token_pool(tokens: Tensor, weights: Tensor, rate: float) -> Tensor:
    """ATP: keep the class token and int(rate·N) patch tokens with the most class-token attention (summed over heads)."""
    n = tokens.shape[1] - 1
    keep = max(1, int(n * rate))
    if keep >= n:
        return tokens
    score = weights[:, :, 0, 1:].sum(dim=1)
    return torch.cat([tokens[:, :1], top_tokens(tokens[:, 1:], score, keep)], dim=1)


class APViTBody(nn.Module):
    """CNN stem (layers 1..4), token projection with the APP attention (layer 5), and the pooling ViT."""

    def __init__(
        self,
        stem: str,
        pretrained: str,
        img_size: int,
        stem_stride: int,
        embed_dim: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float,
    ) -> None:
        super().__init__()
        self.stem = Backbone(stem, pretrained=pretrained, output_stride=stem_stride, levels=4)
        if len(self.stem.layer_names) != 4:
            raise ValueError(f"apvit: stem {stem!r} must expose 4 feature levels, got {len(self.stem.layer_names)}")
        names = self.stem.layer_names
        self.proj = nn.Conv2d(self.stem.head_channels, embed_dim, kernel_size=1)
        side = max(1, img_size // self.stem.reductions[names[-1]])
        self.grid = (side, side)
        self.pos_embed = nn.Parameter(torch.zeros(1, side * side, embed_dim))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.cls_pos = nn.Parameter(torch.zeros(1, 1, embed_dim))
        norm = partial(nn.LayerNorm, eps=1e-6)
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio, qkv_bias=False, norm_layer=norm) for _ in range(depth))
        self.norm = norm(embed_dim)
        for p in (self.pos_embed, self.cls_token, self.cls_pos):
            trunc_normal_(p, std=0.02)
        for m in [*self.blocks.modules()]:
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        self.layer_names: tuple[int, ...] = (1, 2, 3, 4, 5)
        self.channels: dict[int, int] = {i + 1: self.stem.channels[v] for i, v in enumerate(names)} | {5: 1}
        self.head_channels: int = embed_dim
        self.mean, self.std = self.stem.mean, self.stem.std

    def encode(self, tokens: Tensor, attention: Tensor, keep_ratio: float, keep_rate: float) -> Tensor:
        """APP (top tokens by attention), class token, blocks (ATP in the second half), norm -> (B, C) class feature."""
        b, c, h, w = tokens.shape
        pos = self.pos_embed
        if (h, w) != self.grid:
            pos = resample_abs_pos_embed(pos, new_size=[h, w], old_size=list(self.grid), num_prefix_tokens=0)
        seq = tokens.flatten(2).transpose(1, 2) + pos
        keep = max(1, round(keep_ratio * h * w))
        if keep < h * w:
            seq = top_tokens(seq, attention.flatten(1), keep)
        seq = torch.cat([(self.cls_token + self.cls_pos).expand(b, -1, -1), seq], dim=1)
        atp = partial(attentive_token_pool, rate=keep_rate)
        for i, blk in enumerate(self.blocks):
            seq, _ = block_forward(blk, seq, pool=atp if (i >= len(self.blocks) // 2 and keep_rate < 1) else None)
        return self.norm(seq)[:, 0]


@register_method("apvit")
class APViT(FERModel):
    """Attentive-pooling ViT over a convolutional stem."""

    options = {
        "stem_stride": 8,
        "embed_dim": 768,
        "depth": 8,
        "num_heads": 8,
        "mlp_ratio": 3.0,
        "keep_ratio": 0.8163,
        "keep_rate": 0.9,
    }

    def build_backbone(self, name: str, pretrained: str, output_stride: int) -> nn.Module:
        """Stem + pooling ViT (the stem's stride is `stem_stride`; train.output_stride does not apply)."""
        o = self.opts
        if not 0 < o["keep_ratio"] <= 1 or not 0 < o["keep_rate"] <= 1:
            raise ValueError(f"apvit: keep_ratio and keep_rate must lie in (0, 1], got {o['keep_ratio']}, {o['keep_rate']}")
        return APViTBody(
            name,
            pretrained,
            img_size=self.input_size or DEFAULT_IMG_SIZE,
            stem_stride=o["stem_stride"],
            embed_dim=o["embed_dim"],
            depth=o["depth"],
            num_heads=o["num_heads"],
            mlp_ratio=o["mlp_ratio"],
        )

    def build_head(self, in_channels: int, num_classes: int) -> nn.Module:
        """Linear classifier on the class token."""
        return nn.Linear(in_channels, num_classes)

    def forward(self, x: Tensor, layers: Sequence[int] = (5,)) -> ModelOutput:
        """Logits from the class token; features = stem levels + APP attention; cams = the attention for every class."""
        layers = self.check_layers(layers)
        body = self.backbone
        stem = body.stem(x)
        tokens = body.proj(stem[-1])
        attention = tokens.abs().sum(dim=1, keepdim=True)
        feats = {i + 1: f for i, f in enumerate(stem)} | {5: attention}
        logits = self.head(body.encode(tokens, attention, float(self.opts["keep_ratio"]), float(self.opts["keep_rate"])))
        cams = attention.expand(-1, self.num_classes, -1, -1)
        return ModelOutput(logits=logits, features={v: feats[v] for v in layers}, cams=cams)
