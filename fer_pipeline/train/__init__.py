"""Training: the guided loop, its augmentation on top of the model's input contract (`fer_pipeline.inputs`),
class balancing, checkpoints and DDP. Its params (`TrainConfig`) live in `fer_pipeline.core.train_config`."""

from __future__ import annotations

from typing import Any

from fer_pipeline.core.train_config import TrainConfig

__all__ = ["TrainConfig", "train_model"]


def __getattr__(name: str) -> Any:
    """Import the loop (torch, timm, evaluate) only when it is asked for."""
    if name == "train_model":
        from fer_pipeline.train.loop import train_model

        return train_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
