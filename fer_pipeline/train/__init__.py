"""Training: config from params, the joint image + AU-map dataset, and the guided training loop."""

from __future__ import annotations

from typing import Any

from fer_pipeline.train.config import TrainConfig
from fer_pipeline.train.dataset import FERDataset

__all__ = ["FERDataset", "TrainConfig", "train_model"]


def __getattr__(name: str) -> Any:
    """Import the loop lazily: it imports `evaluate`, which imports this package's dataset (no import cycle)."""
    if name == "train_model":
        from fer_pipeline.train.loop import train_model

        return train_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
