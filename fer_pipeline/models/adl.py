"""ADL (Choe & Shim, CVPR 2019): attention-based dropout after the last two stages, in training only.

In training, each ADL layer takes the channel-mean attention of its features and multiplies them, for the whole batch,
either by the drop mask (attention < gamma · max, hiding the most discriminative part; probability `drop_rate`) or by
the importance map sigmoid(attention). At evaluation it is the identity. Defaults: drop_rate 0.75, gamma 0.9 (the ADL
paper's / wsolevaluation's ResNet setting). The published ResNet50 places ADL inside stages 4 and 5 (after their first
blocks); here it acts on the outputs of stages 4 and 5, which works for every timm backbone.
CAM of class k: as CAM (GAP + linear on layer 5, after its ADL). Layers 1..5 for the alignment loss: the stem and
stages, layers 4 and 5 taken before their ADL (ADL perturbs what the next stage and the classifier see; its random drop
would otherwise blank the very region the alignment asks for, a term the network cannot act on).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from torch import Tensor, nn

from fer_pipeline.models.backbone import Backbone
from fer_pipeline.models.base import FERModel, ModelOutput
from fer_pipeline.models.cam import CAMHead
from fer_pipeline.models.registry import register_method

#: Layers whose outputs pass through an ADL layer.
ADL_LAYERS = (4, 5)


class ADL(nn.Module):
    """Attention-based dropout layer (parameter-free); identity in eval mode."""

    def __init__(self, drop_rate: float, gamma: float) -> None:
        super().__init__()
        if not 0 <= drop_rate <= 1 or not 0 <= gamma <= 1:
            raise ValueError(f"adl: drop_rate and gamma must lie in [0, 1], got {drop_rate}, {gamma}")
        self.drop_rate, self.gamma = drop_rate, gamma

    def forward(self, feat: Tensor) -> Tensor:
        """Features times the drop mask or the importance map (one draw per batch) in training; unchanged in eval."""
        if not self.training:
            return feat
        att = feat.mean(dim=1, keepdim=True)
        if bool(torch.rand(()) < self.drop_rate):
            peak = att.amax(dim=(2, 3), keepdim=True)
            return feat * (att < self.gamma * peak).to(feat.dtype)
        return feat * torch.sigmoid(att)


@register_method("adl")
class ADLModel(FERModel):
    """CAM with ADL layers on the outputs of stages 4 and 5."""

    options = {"drop_rate": 0.75, "gamma": 0.9}

    def build_backbone(self, name: str, pretrained: str, output_stride: int) -> Backbone:
        """A timm backbone whose stages 4 and 5 pass through ADL (forward hooks that replace the stage output)."""
        body = Backbone(name, pretrained=pretrained, output_stride=output_stride)
        self.adl = nn.ModuleDict({str(layer): ADL(**self.opts) for layer in ADL_LAYERS if layer in body.layer_names})
        self._before_adl: dict[int, Tensor] = {}
        for layer in self.adl:
            body.stage(int(layer)).register_forward_hook(partial(self._adl_hook, int(layer)))
        return body

    def _adl_hook(self, layer: int, _module: nn.Module, _inputs: tuple[Tensor, ...], out: Tensor) -> Tensor:
        """Keep the stage output for the alignment, pass it on through ADL."""
        self._before_adl[layer] = out
        return self.adl[str(layer)](out)

    def build_head(self, in_channels: int, num_classes: int) -> nn.Module:
        """GAP + linear, as CAM."""
        return CAMHead(in_channels, num_classes)

    def forward(self, x: Tensor, layers: Sequence[int] = (5,)) -> ModelOutput:
        """The head reads layer 5 after ADL; the returned features of layers 4 and 5 are those before ADL."""
        layers = self.check_layers(layers)
        self._before_adl = {}
        feats = dict(zip(self.layer_names, self.backbone(x), strict=True))
        logits, cams = self.head(feats[self.layer_names[-1]])
        feats.update(self._before_adl)
        self._before_adl = {}  # hold no tensors between calls
        return ModelOutput(logits=logits, features={v: feats[v] for v in layers}, cams=cams)
