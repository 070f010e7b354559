"""Methods (one registry, one file per method), the guided AU-alignment loss, and model files."""

# Importing a method's module registers it (paper Table 1 order).
from fer_pipeline.models import (  # noqa: F401
    acol,
    adl,
    apvit,
    cam,
    cutmix,
    gradcam,
    gradcampp,
    layercam,
    prm,
    tscam,
    wildcat,
)
from fer_pipeline.models.base import FERModel, ModelOutput
from fer_pipeline.models.io import load_model, save_model
from fer_pipeline.models.registry import create_model, is_posthoc, list_methods, register_method, trained_method

__all__ = [
    "FERModel",
    "ModelOutput",
    "create_model",
    "is_posthoc",
    "list_methods",
    "load_model",
    "register_method",
    "save_model",
    "trained_method",
]
