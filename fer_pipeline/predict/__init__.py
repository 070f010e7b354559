"""`fer predict`: batch prediction with a saved model over a folder or manifest of photos -- detection (or given boxes),
68 landmarks, the framing the model was trained with, batched inference, per-image class probabilities and map scores,
and a status + reason for every image that could not be predicted (nothing dropped)."""

from fer_pipeline.predict.frame import STATUSES, FrameConfig
from fer_pipeline.predict.run import CSV_COLUMNS, Summary, predict

__all__ = ["CSV_COLUMNS", "STATUSES", "FrameConfig", "Summary", "predict"]
