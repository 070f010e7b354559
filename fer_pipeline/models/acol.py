"""ACoL (Zhang et al., CVPR 2018): two classifiers; B learns from features where A's map of the true class is erased.

Training: classifier A gives the logits and its class maps; `extra_loss` erases the last-layer features where A's
min-max map of the ground-truth class reaches `erase_threshold` and adds classifier B's cross-entropy on them
(ACoL's adversarial erasing). Evaluation: no erasing; the CAM of class k is max(minmax(A_k), minmax(B_k)), the fused
map of the paper. Classifiers: conv3x3-ReLU-conv3x3-ReLU-conv1x1 with `hidden` channels (1024 in the published
ResNet version). erase_threshold 0.7 is wsolevaluation's default. Layers 1..5: the backbone's stem and stages.
`batchnorm` (default false, the published head, which sits on ImageNet-trained features): BatchNorm before each ReLU,
a from-scratch adaptation -- without it, from scratch, AdamW kills most of A's first-layer ReLUs within ~15 steps and A
(whose logits are the prediction) stays at chance (docs/results/table1-cpu.md, "What was wrong"; `tests/test_methods.py`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fer_pipeline.models.base import FERModel, ModelOutput
from fer_pipeline.models.maps import minmax, select_class
from fer_pipeline.models.registry import register_method


def _classifier(in_channels: int, hidden: int, num_classes: int, batchnorm: bool = False) -> nn.Sequential:
    """ACoL's convolutional classifier producing class maps (`batchnorm`: BN before each ReLU, a from-scratch adaptation;
    without it the layers and their state_dict keys are the published head's)."""
    layers: list[nn.Module] = []
    for c_in in (in_channels, hidden):
        layers += [nn.Conv2d(c_in, hidden, 3, padding=1), *([nn.BatchNorm2d(hidden)] if batchnorm else []), nn.ReLU()]
    return nn.Sequential(*layers, nn.Conv2d(hidden, num_classes, 1))


class ACoLHead(nn.Module):
    """Classifiers A and B."""

    def __init__(self, in_channels: int, num_classes: int, hidden: int, batchnorm: bool = False) -> None:
        super().__init__()
        self.a = _classifier(in_channels, hidden, num_classes, batchnorm)
        self.b = _classifier(in_channels, hidden, num_classes, batchnorm)


def erase(feat: Tensor, attention: Tensor, threshold: float) -> Tensor:
    """Zero (B, C, h, w) features where the (B, h, w) attention in [0, 1] is >= threshold."""
    return feat * (attention < threshold).to(feat.dtype).unsqueeze(1)


@register_method("acol")
class ACoL(FERModel):
    """Adversarial complementary learning on a timm backbone."""

    options = {"erase_threshold": 0.7, "hidden": 1024, "batchnorm": False}

    def build_head(self, in_channels: int, num_classes: int) -> nn.Module:
        """Two convolutional classifiers."""
        return ACoLHead(in_channels, num_classes, int(self.opts["hidden"]), bool(self.opts["batchnorm"]))

    def forward(self, x: Tensor, layers: Sequence[int] = (5,)) -> ModelOutput:
        """Logits of A; cams: in eval the max of both classifiers' normalised maps, in training A's (B runs in extra_loss)."""
        layers = self.check_layers(layers)
        feats = dict(zip(self.layer_names, self.backbone(x), strict=True))
        last = feats[self.layer_names[-1]]
        cams_a = self.head.a(last)
        logits = cams_a.mean(dim=(2, 3))
        kept = {v: feats[v] for v in layers}
        if self.training:
            return ModelOutput(logits=logits, features=kept, cams=cams_a, extras={"last": last, "cams_a": cams_a})
        cams = torch.maximum(minmax(cams_a), minmax(self.head.b(last)))
        return ModelOutput(logits=logits, features=kept, cams=cams)

    def extra_loss(self, out: ModelOutput, y: Tensor) -> Tensor | None:
        """Cross-entropy of classifier B on features erased where A's ground-truth-class map is high (training only)."""
        if not self.training or "cams_a" not in out.extras:
            return None
        target = y.argmax(dim=1) if y.ndim == 2 else y
        attention = minmax(select_class(out.extras["cams_a"].detach(), target))
        erased = erase(out.extras["last"], attention, float(self.opts["erase_threshold"]))
        return F.cross_entropy(self.head.b(erased).mean(dim=(2, 3)).float(), y)
