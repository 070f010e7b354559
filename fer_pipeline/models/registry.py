"""One registry of methods: `@register_method("cam")` on a FERModel subclass, `create_model("cam", ...)` to build."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fer_pipeline.core.labels import NUM_CLASSES
from fer_pipeline.models.base import FERModel

_METHODS: dict[str, Callable[..., FERModel]] = {}
T = TypeVar("T", bound=Callable[..., FERModel])


def register_method(name: str) -> Callable[[T], T]:
    """Register a FERModel subclass (or a factory returning one) under `name`; duplicates are an error."""
    key = name.lower()

    def deco(fn: T) -> T:
        if key in _METHODS and _METHODS[key] is not fn:
            raise ValueError(f"method {key!r} is already registered ({_METHODS[key]!r})")
        if isinstance(fn, type) and issubclass(fn, FERModel):
            fn.method = key
        _METHODS[key] = fn
        return fn

    return deco


def list_methods() -> list[str]:
    """Registered method names, sorted."""
    return sorted(_METHODS)


def trained_method(method: str) -> str:
    """The method whose model file `method` reads: itself, or for post-hoc methods (GradCAM & co.) the one they read out."""
    key = str(method).lower()
    if key not in _METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(list_methods())}")
    return getattr(_METHODS[key], "trains_as", None) or key


def is_posthoc(method: str) -> bool:
    """True for methods without a training stage of their own (their CAM is read out from another method's model)."""
    return trained_method(method) != str(method).lower()


def create_model(
    method: str,
    *,
    backbone: str = "resnet18",
    pretrained: str = "none",
    num_classes: int = NUM_CLASSES,
    output_stride: int = 32,
    input_size: int | None = None,
    **kwargs: Any,
) -> FERModel:
    """Build method `method` on a timm `backbone`; extra kwargs are the method's own options (`FERModel.options`)."""
    key = str(method).lower()
    if key not in _METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(list_methods())}")
    build = _METHODS[key]
    common = {"backbone": backbone, "pretrained": pretrained, "num_classes": num_classes, "output_stride": output_stride}
    model = build(**common, input_size=input_size, **kwargs)
    model.init_config["method"] = key
    return model
