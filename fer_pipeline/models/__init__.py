"""Methods (one registry), the guided AU-alignment loss, and model files."""

from fer_pipeline.models import cam as _cam  # noqa: F401  (registers "cam")
from fer_pipeline.models.base import FERModel, ModelOutput
from fer_pipeline.models.io import load_model, save_model
from fer_pipeline.models.registry import create_model, list_methods, register_method

__all__ = ["FERModel", "ModelOutput", "create_model", "list_methods", "load_model", "register_method", "save_model"]
