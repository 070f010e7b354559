"""Face alignment: one framing for training, evaluation, `fer explain` and prediction (its store: docs/reference/architecture.md,
"The stores")."""

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
