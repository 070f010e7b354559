"""LayerCAM (Jiang et al., IEEE TIP 2021): each location weighted by its own positive gradient (here at layer 5).

Computed with the `grad-cam` package's `LayerCAM` on the CAM classifier (training as CAM). Layers 1..5: the
backbone's stem and stages.
"""

from __future__ import annotations

from fer_pipeline.models.gradient import GradientCAM
from fer_pipeline.models.registry import register_method


@register_method("layercam")
class LayerCAMMethod(GradientCAM):
    """CAM classifier read out with pytorch-grad-cam's LayerCAM."""

    cam_class = "LayerCAM"
