"""Face alignment (docs/reference/architecture.md, "The stores"): one framing for training, evaluation, `fer explain` and prediction."""

from fer_pipeline.align.warp import (
    DEFAULT_TEMPLATE,
    MODES,
    Alignment,
    Fallback,
    frame_face,
    framing_matrix,
    map_points,
    model_alignment,
    model_input,
    resize_square,
)

__all__ = [
    "DEFAULT_TEMPLATE", "MODES", "Alignment", "Fallback", "frame_face", "framing_matrix", "map_points", "model_alignment",
    "model_input", "resize_square",
]
