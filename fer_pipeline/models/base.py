"""`FERModel`: backbone + class-map head; a method overrides a few hooks, as in pytorch-grad-cam.

- bottom-up CAM methods (CAM, WILDCAT, PRM, ...) override `build_head`: a module mapping the last
  layer's features to `(logits, cams)`;
- post-hoc / gradient methods (GradCAM, LayerCAM, ...) keep a head and override `class_cam`;
- methods that alter the feature extractor (ADL, TS-CAM, APViT) override `build_backbone` (and `forward`);
- training-time behaviour enters the training loop through `mix_batch` (CutMix) and `extra_loss` (ACoL).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from fer_pipeline.core.labels import NUM_CLASSES
from fer_pipeline.models.backbone import Backbone
from fer_pipeline.models.maps import minmax, select_class
from fer_pipeline.models.options import cast_options


@dataclass
class ModelOutput:
    """What every method returns: logits, the requested layers' features, and raw class maps."""

    logits: Tensor  # (B, num_classes)
    features: dict[int, Tensor]  # requested layer (1..5) -> (B, C_l, h_l, w_l)
    cams: Tensor  # (B, num_classes, h, w), unnormalised
    extras: dict[str, Tensor] = field(default_factory=dict)  # what a method's `extra_loss` needs (e.g. ACoL's branch A)


class FERModel(nn.Module):
    """Base class of every method; subclasses override `build_head`, `class_cam`, `build_backbone`, `mix_batch`, `extra_loss`."""

    method: str = ""
    #: Post-hoc methods name the method whose trained weights they read out (GradCAM & co.: "cam"); None = trains itself.
    trains_as: ClassVar[str | None] = None
    #: The method's options with their published defaults; params.yaml `methods.<name>` overrides them.
    options: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        backbone: str = "resnet18",
        pretrained: str = "none",
        num_classes: int = NUM_CLASSES,
        output_stride: int = 32,
        input_size: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        self.num_classes = int(num_classes)
        self.output_stride = int(output_stride)
        #: Training input side; transformers size their position embeddings from it (CNNs ignore it).
        self.input_size = None if input_size is None else int(input_size)
        self.opts: dict[str, Any] = cast_options(self.method or type(self).__name__, self.options, options)
        self.backbone = self.build_backbone(backbone, pretrained, self.output_stride)
        self.layer_names: tuple[int, ...] = self.backbone.layer_names
        self.head = self.build_head(self.backbone.head_channels, self.num_classes)
        #: The arguments that rebuild this model with `create_model` (saved in model.pt; weights come from the file).
        self.init_config: dict[str, Any] = {
            "method": self.method,
            "backbone": backbone,
            "num_classes": self.num_classes,
            "output_stride": self.output_stride,
            "model_kwargs": dict(self.opts),
        }
        if self.input_size is not None:
            self.init_config["input_size"] = self.input_size

    # --- hooks -------------------------------------------------------------------------------
    def build_backbone(self, name: str, pretrained: str, output_stride: int) -> Backbone:
        """The feature extractor (layers 1..5)."""
        return Backbone(name, pretrained=pretrained, output_stride=output_stride)

    def build_head(self, in_channels: int, num_classes: int) -> nn.Module:
        """A module mapping last-layer features (B, C, h, w) to `(logits, cams)`; options are in `self.opts`."""
        raise NotImplementedError(f"{type(self).__name__} must define build_head")

    def class_cam(self, x: Tensor, target: Tensor, out: ModelOutput | None = None) -> Tensor:
        """(B, h, w) CAM of class `target[b]`, min-max to [0, 1]; `out` (this x's forward output) is reused when given.

        Any (h, w) with the input's aspect will do: callers resize. Mode (eval/train) is the caller's.
        """
        if out is None:
            with torch.no_grad():
                out = self.forward(x, layers=())
        return minmax(select_class(out.cams.detach(), target))

    def mix_batch(self, x: Tensor, au: Tensor, has_map: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Training-batch augmentation owned by the method (CutMix); identity by default. `y` may return soft (B, K)."""
        return x, au, has_map, y

    def extra_loss(self, out: ModelOutput, y: Tensor) -> Tensor | None:
        """A method's own training loss term added to CE + λ·alignment (ACoL's branch B); None by default."""
        return None

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
        return self.class_cam(x, target, out)
