"""Shared by the map probes (`acol_maps.py`, `prm_maps.py`): a trained model with its checkout's test faces, the AU
region at a map's size, per-sample means on and off it, and CAM-COS as the evaluation averages it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader

from fer_pipeline.align.store import stage_inputs
from fer_pipeline.core import paths
from fer_pipeline.data.datasets import image_root
from fer_pipeline.data.manifest import read_manifest
from fer_pipeline.evaluate.metrics import au_macro, per_class_mean
from fer_pipeline.inputs.dataset import FERDataset, collate
from fer_pipeline.models import FERModel, load_model


def test_batches(model_path: Path, params: dict[str, Any]) -> tuple[FERModel, Iterator[tuple[Tensor, Tensor, Tensor]]]:
    """The model (CPU, eval mode) and batches (x, AU map, y) of the test faces that have an AU map, framed as the
    checkout's align stage framed them."""
    model, config = load_model(model_path, torch.device("cpu"))
    dataset = params["data"]["dataset"]
    _, faces, _ = stage_inputs(params.get("align") or {}, dataset)
    rows = read_manifest(paths.manifest_path(dataset))
    rows = rows[rows["split"] == "test"]
    ds = FERDataset(rows, image_root(params["data"], dataset), paths.aumap_store(dataset), int(config["input_size"]),
                    mean=model.mean, std=model.std, faces_path=faces)
    batches = ((x[has], au[has], y[has]) for x, au, has, y, _ in DataLoader(ds, batch_size=64, collate_fn=collate))
    return model, batches


def au_region(au: Tensor, size: tuple[int, ...]) -> Tensor:
    """bool (B, h, w): where the (B, H, W) AU maps, shrunk to the map's size, reach 0.5."""
    return F.interpolate(au[:, None], size=size, mode="bilinear", antialias=True)[:, 0] >= 0.5


def on_off(maps: Tensor, region: Tensor) -> tuple[Tensor, Tensor]:
    """Per-sample mean of (B, h, w) maps on the region and off it (NaN where either side is empty)."""
    nan = maps.new_tensor(float("nan"))
    on = torch.stack([m[r].mean() if r.any() else nan for m, r in zip(maps, region, strict=True)])
    off = torch.stack([m[~r].mean() if (~r).any() else nan for m, r in zip(maps, region, strict=True)])
    return on, off


def macro_cos(cos: list[Tensor], labels: list[Tensor]) -> float:
    """Per-class mean of per-sample cosines, then the macro over the AU classes (the evaluation's CAM-COS)."""
    y = torch.cat(labels).numpy()
    return au_macro(per_class_mean(torch.cat(cos).numpy(), y, np.ones_like(y, dtype=bool)))


def nanmean(parts: list[Tensor]) -> float:
    """Mean over every sample of per-batch values, NaNs left out."""
    return float(np.nanmean(torch.cat(parts).numpy()))
