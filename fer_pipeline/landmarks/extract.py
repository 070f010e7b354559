"""The landmarks stage: run the configured backend over the manifest and build the store table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from fer_pipeline import __version__
from fer_pipeline.core.paths import resolve_inside
from fer_pipeline.landmarks.importer import align_to_manifest, read_points_csv
from fer_pipeline.landmarks.store import LandmarkTable, Status

BACKENDS = ("synthetic",)


def image_sizes(paths: list[str], root: Path) -> np.ndarray:
    """(N,2) H, W read from each image header; (0, 0) where the file is missing or unreadable."""
    out = np.zeros((len(paths), 2), dtype=np.int32)
    for i, p in enumerate(paths):
        try:
            with Image.open(resolve_inside(root, p)) as im:
                out[i] = (im.height, im.width)
        except (OSError, ValueError, Image.DecompressionBombError):
            out[i] = (0, 0)
    return out


def jitter(points: np.ndarray, noise: float, seed: int) -> np.ndarray:
    """Add Gaussian noise of std `noise` × inter-ocular distance (a stand-in for detector error), seeded."""
    if noise <= 0:
        return points
    eyes_r = np.nanmean(points[:, 36:42], axis=1)
    eyes_l = np.nanmean(points[:, 42:48], axis=1)
    iod = np.linalg.norm(eyes_l - eyes_r, axis=1)[:, None, None]
    rng = np.random.default_rng(seed)
    return (points + rng.standard_normal(points.shape).astype(np.float32) * noise * iod).astype(np.float32)


def extract_synthetic(manifest: pd.DataFrame, root: Path, params: dict[str, Any]) -> LandmarkTable:
    """Synthetic backend: the generator's ground truth (`landmarks_gt.csv` beside the images), optionally jittered."""
    from fer_pipeline.data.datasets import GT_LANDMARKS

    ids = manifest["sample_id"].tolist()
    sizes = image_sizes(manifest["path"].tolist(), root)
    gt_ids, gt = read_points_csv(root / GT_LANDMARKS)
    noise = float(params.get("noise", 0.0))
    gt = jitter(gt, noise, int(params.get("seed", 0)))
    points, status = align_to_manifest(ids, gt_ids, gt, sizes, str(root / GT_LANDMARKS), Status.OK)
    status[sizes.min(axis=1) <= 0] = int(Status.UNREADABLE)
    points[status == int(Status.UNREADABLE)] = np.nan
    attrs = {"backend": "synthetic", "noise": noise, "fer_pipeline_version": __version__}
    return LandmarkTable(ids, points, sizes, status, attrs)


def extract_landmarks(manifest: pd.DataFrame, root: Path, params: dict[str, Any]) -> LandmarkTable:
    """Dispatch on `landmarks.backend`; unknown names list the valid ones."""
    backend = str(params["backend"])
    if backend == "synthetic":
        return extract_synthetic(manifest, root, params)
    raise ValueError(f"landmarks.backend={backend!r} is not supported; valid: {', '.join(BACKENDS)}")
