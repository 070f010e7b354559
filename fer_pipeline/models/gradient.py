"""Post-hoc gradient CAMs computed with the `grad-cam` package (pytorch-grad-cam) on the CAM classifier.

GradCAM, GradCAM++ and LayerCAM train exactly as CAM (GAP + linear on layer 5); only the CAM of a class differs: the
package back-propagates that class's logit to the last stage (layer 5) and weights its activations. The package returns
maps at the input's size, min-max normalised. It is imported on first use (it pulls in scikit-learn).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from fer_pipeline.models.base import ModelOutput
from fer_pipeline.models.cam import CAM


class _Logits(nn.Module):
    """The view of a FERModel that pytorch-grad-cam expects: image -> logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x, layers=()).logits


class GradientCAM(CAM):
    """CAM classifier whose class maps come from a pytorch-grad-cam method named by `cam_class`."""

    #: Class name in `pytorch_grad_cam` (GradCAM, GradCAMPlusPlus, LayerCAM).
    cam_class: ClassVar[str] = ""
    #: No training stage of its own: evaluation reads the CAM model's weights (same architecture, same state_dict).
    trains_as = "cam"

    def class_cam(self, x: Tensor, target: Tensor, out: ModelOutput | None = None) -> Tensor:
        """(B, H, W) map of class `target[b]` at the input's size, in [0, 1]; needs gradients, so it runs its own pass."""
        import pytorch_grad_cam
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        method = getattr(pytorch_grad_cam, self.cam_class)
        targets = [ClassifierOutputTarget(int(t)) for t in target.tolist()]
        was_training = self.training  # the package switches the model to eval
        layer = self.backbone.stage(self.layer_names[-1])
        try:
            with torch.enable_grad(), method(model=_Logits(self), target_layers=[layer]) as cam:
                maps = cam(input_tensor=x.float(), targets=targets)
        finally:
            self.zero_grad(set_to_none=True)  # the package's backward leaves parameter grads behind
            self.train(was_training)
        return torch.from_numpy(maps).to(x.device).clamp_(0.0, 1.0)
