"""GradCAM++ (Chattopadhay et al., WACV 2018): channel weights from positive gradients with higher-order alpha terms.

Computed with the `grad-cam` package's `GradCAMPlusPlus` on the CAM classifier (training as CAM). Layers 1..5: the
backbone's stem and stages.
"""

from __future__ import annotations

from fer_pipeline.models.gradient import GradientCAM
from fer_pipeline.models.registry import register_method


@register_method("gradcampp")
class GradCAMPlusPlusMethod(GradientCAM):
    """CAM classifier read out with pytorch-grad-cam's GradCAMPlusPlus."""

    cam_class = "GradCAMPlusPlus"
