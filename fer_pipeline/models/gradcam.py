"""GradCAM (Selvaraju et al., ICCV 2017): channel weights = spatial mean of the class logit's gradient at layer 5.

Computed with the `grad-cam` package's `GradCAM` on the CAM classifier (training as CAM). Layers 1..5: the
backbone's stem and stages.
"""

from __future__ import annotations

from fer_pipeline.models.gradient import GradientCAM
from fer_pipeline.models.registry import register_method


@register_method("gradcam")
class GradCAMMethod(GradientCAM):
    """CAM classifier read out with pytorch-grad-cam's GradCAM."""

    cam_class = "GradCAM"
