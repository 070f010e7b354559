"""TS-CAM (Gao et al., ICCV 2021): a DeiT whose patch tokens give semantic maps, coupled with the class-token attention.

Backbone: a timm ViT (`train.backbone`, DeiT-S `deit_small_patch16_224` in params.yaml's `methods.tscam`), built at
the training input size (`img_size`, position embeddings resampled for other sizes) with `patch_size` and optional
`depth` (0 = the model's own; smaller values make CPU tests cheap). `stem`: `linear` (default, DeiT's patch projection
as published), `conv` -- Xiao et al. 2021's convolutional stem (3x3 stride-2 conv-BN-ReLU layers down to the patch
grid, `models/vit.conv_stem`) -- or a timm CNN name such as `resnet10t`: the ViT-Hybrid patch embedding (Dosovitskiy
et al. 2021, §3.1; `models/vit.CNNStem`: the CNN's first four levels at stride `patch_size`, as APViT's stem here),
from scratch or from `stem_pretrained` (a weights file such as stage pretrain's backbone, or a timm tag: the CNN's
weights, the transformer still from `pretrained`). Both are from-scratch adaptations: the published TS-CAM starts from
ImageNet DeiT weights, and trained from scratch on the CPU demo's 1,300 faces the linear patch embedding stays at
chance (docs/results/table1-cpu.md), while early convolutions are what makes a ViT trainable from scratch with little
data (Xiao et al.; APViT here, with its CNN stem, learns).
Head: a 3x3 conv from the final patch tokens to K semantic maps; logits = their spatial mean (trained with CE).
CAM of class k (token-semantic coupling): attention map (layer 5) x ReLU(semantic map k), as TS-CAM's published code
(`feature_map = F.relu(feature_map)` before the coupling): without the ReLU a class whose semantic map is negative where
the attention is high gives a product most negative there, which min-max turns into a map of the background.
Layers 1..4: patch-token grids (blocks depth/4, depth/2, 3·depth/4, final norm); layer 5: the semantic-agnostic
attention (class-token attention to the patches, mean over heads, summed over blocks) — the alignment default.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from fer_pipeline.models.base import FERModel, ModelOutput
from fer_pipeline.models.registry import register_method
from fer_pipeline.models.vit import ViTTokens

#: Input side used when the model is built without one (DeiT's own).
DEFAULT_IMG_SIZE = 224


@register_method("tscam")
class TSCAM(FERModel):
    """Token semantic coupled attention maps on a timm ViT."""

    options = {"patch_size": 16, "depth": 0, "stem": "linear", "stem_pretrained": "none"}

    def build_backbone(self, name: str, pretrained: str, output_stride: int) -> nn.Module:
        """The ViT as layers 1..5 (output_stride does not apply to a ViT)."""
        size = self.input_size or DEFAULT_IMG_SIZE
        o = self.opts
        return ViTTokens(name, pretrained, img_size=size, patch_size=int(o["patch_size"]), depth=int(o["depth"]), stem=o["stem"],
                         stem_pretrained=str(o["stem_pretrained"]))

    def build_head(self, in_channels: int, num_classes: int) -> nn.Module:
        """Semantic maps from patch tokens (TS-CAM's conv head)."""
        return nn.Conv2d(in_channels, num_classes, kernel_size=3, padding=1)

    def forward(self, x: Tensor, layers: Sequence[int] = (5,)) -> ModelOutput:
        """Logits = mean of the semantic maps; cams = attention x ReLU(semantic maps)."""
        layers = self.check_layers(layers)
        feats = dict(zip(self.layer_names, self.backbone(x), strict=True))
        semantic = self.head(feats[4])
        return ModelOutput(
            logits=semantic.mean(dim=(2, 3)), features={v: feats[v] for v in layers}, cams=feats[5] * F.relu(semantic)
        )
