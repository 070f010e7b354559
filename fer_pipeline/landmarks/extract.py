"""The landmarks stage: run the configured backend over the manifest and build the store table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fer_pipeline import __version__
from fer_pipeline.data.probe import probe_images
from fer_pipeline.landmarks.importer import align_with_reasons, read_points_csv
from fer_pipeline.landmarks.store import LandmarkTable, Status

BACKENDS = ("synthetic",)


def image_sizes(paths: list[str], root: Path) -> np.ndarray:
    """(N,2) H, W of each image; (0, 0) where it cannot be used (see `fer_pipeline.data.probe` for the reasons)."""
    check = probe_images(paths, root)
    return np.where(check.ok[:, None], check.sizes, 0).astype(np.int32)


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
    # Every image is decoded once (the reader training uses): unusable ones become status UNREADABLE with a reason.
    jobs, chunk = int(params.get("n_jobs", 1)), int(params.get("chunk_size", 1024))
    check = probe_images(manifest["path"].tolist(), root, n_jobs=jobs, chunk_size=chunk)
    good = np.flatnonzero(check.ok)
    gt_ids, gt = read_points_csv(root / GT_LANDMARKS)
    noise = float(params.get("noise", 0.0))
    gt = jitter(gt, noise, int(params.get("seed", 0)))
    points = np.full((len(ids), 68, 2), np.nan, dtype=np.float32)
    status = np.full(len(ids), int(Status.UNREADABLE), dtype=np.uint8)
    reason = list(check.reasons)
    sub_ids, source = [ids[i] for i in good], str(root / GT_LANDMARKS)
    points[good], status[good], why = align_with_reasons(sub_ids, gt_ids, gt, check.sizes[good], source, Status.OK)
    for i, r in zip(good, why, strict=True):
        reason[i] = r
    attrs = {"backend": "synthetic", "noise": noise, "fer_pipeline_version": __version__}
    return LandmarkTable(ids, points, check.sizes, status, attrs, reason)


def extract_landmarks(manifest: pd.DataFrame, root: Path, params: dict[str, Any]) -> LandmarkTable:
    """Dispatch on `landmarks.backend`; unknown names list the valid ones."""
    backend = str(params["backend"])
    if backend == "synthetic":
        return extract_synthetic(manifest, root, params)
    raise ValueError(f"landmarks.backend={backend!r} is not supported; valid: {', '.join(BACKENDS)}")
