"""ACoL (Zhang et al., CVPR 2018): two classifiers; B learns from features where A's map of the true class is erased.

Training: classifier A gives the logits and its class maps; `extra_loss` erases the last-layer features where A's
min-max map of the ground-truth class reaches `erase_threshold` and adds classifier B's cross-entropy on them
(ACoL's adversarial erasing). The CAM of class k (`class_cam`) is the fused map of the paper, max(minmax(A_k),
minmax(B_k)), with B reading the features erased by A_k as in training (the published code erases at evaluation too).
Classifiers: conv-ReLU-conv-ReLU-conv1x1 with `hidden` channels (1024 in the published ResNet version) and `kernel`
(3, published) sized kernels. erase_threshold 0.7 is wsolevaluation's default (the paper's code: 0.1). Layers 1..5: the
backbone's stem and stages.
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


def _classifier(in_channels: int, hidden: int, num_classes: int, batchnorm: bool = False,
                kernel: int = 3) -> nn.Sequential:
    """ACoL's convolutional classifier producing class maps (`batchnorm`: BN before each ReLU, a from-scratch adaptation;
    without it, and with `kernel` 3, the layers and their state_dict keys are the published head's)."""
    layers: list[nn.Module] = []
    for c_in in (in_channels, hidden):
        layers += [nn.Conv2d(c_in, hidden, kernel, padding=kernel // 2),
                   *([nn.BatchNorm2d(hidden)] if batchnorm else []), nn.ReLU()]
    return nn.Sequential(*layers, nn.Conv2d(hidden, num_classes, 1))


class ACoLHead(nn.Module):
    """Classifiers A and B."""

    def __init__(self, in_channels: int, num_classes: int, hidden: int, batchnorm: bool = False, kernel: int = 3) -> None:
        super().__init__()
        self.a = _classifier(in_channels, hidden, num_classes, batchnorm, kernel)
        self.b = _classifier(in_channels, hidden, num_classes, batchnorm, kernel)


def erase(feat: Tensor, attention: Tensor, threshold: float) -> Tensor:
    """Zero (B, C, h, w) features where the (B, h, w) attention in [0, 1] is >= threshold."""
    return feat * (attention < threshold).to(feat.dtype).unsqueeze(1)


@register_method("acol")
class ACoL(FERModel):
    """Adversarial complementary learning on a timm backbone."""

    options = {"erase_threshold": 0.7, "hidden": 1024, "batchnorm": False, "kernel": 3}

    def build_head(self, in_channels: int, num_classes: int) -> nn.Module:
        """Two convolutional classifiers."""
        if int(self.opts["kernel"]) < 1 or int(self.opts["kernel"]) % 2 == 0:
            raise ValueError(f"methods.acol.kernel={self.opts['kernel']}: an odd size is needed (1, 3, ...), so that the "
                             f"class maps keep the features' size")
        return ACoLHead(in_channels, num_classes, int(self.opts["hidden"]), bool(self.opts["batchnorm"]),
                        int(self.opts["kernel"]))

    def forward(self, x: Tensor, layers: Sequence[int] = (5,)) -> ModelOutput:
        """Logits and class maps of classifier A; the last-layer features ride along in `extras` for classifier B,
        which reads them erased (`extra_loss` in training, `class_cam` in evaluation)."""
        layers = self.check_layers(layers)
        feats = dict(zip(self.layer_names, self.backbone(x), strict=True))
        last = feats[self.layer_names[-1]]
        cams_a = self.head.a(last)
        kept = {v: feats[v] for v in layers}
        return ModelOutput(logits=cams_a.mean(dim=(2, 3)), features=kept, cams=cams_a, extras={"last": last})

    def _erased(self, last: Tensor, cams_a: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """A's min-max map of class `target[b]` and the features `last` erased where it reaches `erase_threshold`."""
        attention = minmax(select_class(cams_a.detach(), target))
        return attention, erase(last, attention, float(self.opts["erase_threshold"]))

    def class_cam(self, x: Tensor, target: Tensor, out: ModelOutput | None = None) -> Tensor:
        """max(A's min-max map, B's min-max map on the features erased by A's) of class `target[b]`, min-max to [0, 1].

        B only ever learns from erased features, so it reads them erased here too, by the class asked for: the paper's
        code does the same at evaluation (`dlib/div_classifiers/parts/acol.py` `forward` erases in every mode, with the
        label `dlib/learning/inference_wsol.py` passes), as wsolevaluation's ACoL does."""
        with torch.no_grad():
            if out is None or "last" not in out.extras:
                out = self.forward(x, layers=())
            a, erased = self._erased(out.extras["last"].detach(), out.cams, target)
            # `out` may come from an autocast forward (validation on a GPU): B runs at its weights' dtype here
            b = minmax(select_class(self.head.b(erased.to(self.head.b[0].weight.dtype)), target))
            return minmax(torch.maximum(a, b))

    def extra_loss(self, out: ModelOutput, y: Tensor) -> Tensor | None:
        """Cross-entropy of classifier B on features erased where A's ground-truth-class map is high (training only)."""
        if not self.training or "last" not in out.extras:
            return None
        _, erased = self._erased(out.extras["last"], out.cams, y.argmax(dim=1) if y.ndim == 2 else y)
        return F.cross_entropy(self.head.b(erased).mean(dim=(2, 3)).float(), y)
