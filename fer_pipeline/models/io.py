"""model.pt: {"state_dict", "config"} written atomically, read back with weights_only=True and rebuilt by the registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from fer_pipeline.core.io import atomic_path, load_error_reason
from fer_pipeline.models.base import FERModel
from fer_pipeline.models.registry import create_model, trained_method


def save_model(path: str | Path, model: FERModel, config: dict[str, Any]) -> None:
    """Save weights + a plain JSON-able config; the model's own build arguments override `config`'s."""
    cfg = {**config, **model.init_config}
    try:
        cfg = json.loads(json.dumps(cfg))  # plain types only: weights_only loading refuses anything else
    except TypeError as e:
        raise TypeError(f"model config for {path} must be JSON-able: {e}") from e
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save({"state_dict": state, "config": cfg}, fh)  # a file object: a path would put the temp name in the zip


def load_model(
    path: str | Path, device: str | torch.device = "cpu", *, method: str | None = None
) -> tuple[FERModel, dict[str, Any]]:
    """Rebuild a saved model (in eval mode, on `device`) and return it with its config.

    `method` reads the weights out as another method: a post-hoc method (GradCAM & co.) on the model of the method it
    trains as (`trained_method`); the returned config then names `method`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} not found (train the run first, or `dvc pull` it)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"cannot read model file {path}: {load_error_reason(e)}") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "config" not in ckpt:
        raise ValueError(f"{path} is not a fer_pipeline model file (expected keys 'state_dict' and 'config')")
    cfg = ckpt["config"]
    if method is not None and str(method).lower() != cfg.get("method"):
        if trained_method(method) != cfg.get("method"):
            raise ValueError(
                f"{path} holds a {cfg.get('method')!r} model; method {method!r} reads a {trained_method(method)!r} model"
            )
        cfg = {**cfg, "method": str(method).lower(), "trained_as": cfg.get("method")}
    try:
        model = create_model(
            cfg["method"],
            backbone=cfg["backbone"],
            pretrained="none",  # the weights come from the file: never download here
            num_classes=cfg["num_classes"],
            output_stride=cfg.get("output_stride", 32),
            input_size=cfg.get("input_size"),
            # options named *pretrained (TS-CAM's stem_pretrained) name weights too: the file holds them
            **{k: "none" if k.endswith("pretrained") else v for k, v in cfg.get("model_kwargs", {}).items()},
        )
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except (KeyError, RuntimeError, TypeError, ValueError) as e:
        raise ValueError(f"model file {path} does not match its config {cfg}: {e}") from e
    return model.to(device).eval(), cfg
