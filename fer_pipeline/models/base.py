"""`FERModel`: backbone + class-map head; a method overrides one hook, as in pytorch-grad-cam.

- bottom-up CAM methods (CAM, WILDCAT, ACoL, ...) override `build_head`: a module mapping the last
  layer's features to `(logits, cams)`;
- post-hoc / gradient methods (GradCAM, LayerCAM, ...) keep a head and override `cam`;
- methods that alter the feature extractor (ADL, ...) override `build_backbone`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from fer_pipeline.core.labels import NUM_CLASSES
from fer_pipeline.models.backbone import Backbone
from fer_pipeline.models.maps import minmax, select_class


@dataclass
class ModelOutput:
    """What every method returns: logits, the requested layers' features, and raw class maps."""

    logits: Tensor  # (B, num_classes)
    features: dict[int, Tensor]  # requested layer (1..5) -> (B, C_l, h_l, w_l)
    cams: Tensor  # (B, num_classes, h, w), unnormalised


class FERModel(nn.Module):
    """Base class of every method; subclasses override `build_head`, `cam` or `build_backbone`."""

    method: str = ""

    def __init__(
        self,
        backbone: str = "resnet18",
        pretrained: str = "none",
        num_classes: int = NUM_CLASSES,
        output_stride: int = 32,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.num_classes = int(num_classes)
        self.output_stride = int(output_stride)
        self.backbone = self.build_backbone(backbone, pretrained, self.output_stride)
        self.layer_names: tuple[int, ...] = self.backbone.layer_names
        self.head = self.build_head(self.backbone.channels[self.layer_names[-1]], self.num_classes, **kwargs)
        #: The arguments that rebuild this model with `create_model` (saved in model.pt; weights come from the file).
        self.init_config: dict[str, Any] = {
            "method": self.method,
            "backbone": backbone,
            "num_classes": self.num_classes,
            "output_stride": self.output_stride,
            "model_kwargs": dict(kwargs),
        }

    # --- hooks -------------------------------------------------------------------------------
    def build_backbone(self, name: str, pretrained: str, output_stride: int) -> Backbone:
        """The feature extractor (layers 1..5)."""
        return Backbone(name, pretrained=pretrained, output_stride=output_stride)

    def build_head(self, in_channels: int, num_classes: int, **kwargs: Any) -> nn.Module:
        """A module mapping last-layer features (B, C, h, w) to `(logits, cams)`; method options arrive as kwargs."""
        raise NotImplementedError(f"{type(self).__name__} must define build_head")

    # --- API -----------------------------------------------------------------------------------
    @property
    def mean(self) -> tuple[float, ...]:
        """Input normalisation mean of the backbone's pretrained config (ImageNet by default)."""
        return self.backbone.mean

    @property
    def std(self) -> tuple[float, ...]:
        """Input normalisation std matching `mean`."""
        return self.backbone.std

    def check_layers(self, layers: Sequence[int]) -> tuple[int, ...]:
        """Validate requested layer names; ValueError naming the valid ones."""
        layers = tuple(int(v) for v in layers)
        bad = [v for v in layers if v not in self.layer_names]
        if bad:
            raise ValueError(f"layers {bad} not exposed by {self.init_config['backbone']}; valid: {self.layer_names}")
        return layers

    def forward(self, x: Tensor, layers: Sequence[int] = (5,)) -> ModelOutput:
        """Logits, features of `layers`, and raw class maps from one forward pass."""
        layers = self.check_layers(layers)
        feats = dict(zip(self.layer_names, self.backbone(x), strict=True))
        logits, cams = self.head(feats[self.layer_names[-1]])
        return ModelOutput(logits=logits, features={v: feats[v] for v in layers}, cams=cams)

    def cam(self, x: Tensor, target: Tensor | None = None) -> Tensor:
        """(B, h, w) min-max CAM of `target` (default: the predicted class); mode (eval/train) is the caller's."""
        with torch.no_grad():
            out = self.forward(x, layers=())
            if target is None:
                target = out.logits.argmax(dim=1)
            return minmax(select_class(out.cams, target))
