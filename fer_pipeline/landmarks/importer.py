"""Landmarks computed elsewhere (`sample_id, x0..x67, y0..y67` CSV): parsed, validated, aligned to the manifest."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from fer_pipeline.landmarks.store import N_POINTS, Status

log = logging.getLogger(__name__)


def read_points_csv(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Read an import CSV into ids and (N,68,2) float32; a wrong header names the file and the expected columns."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"landmark file {path} not found")
    df = pd.read_csv(path, dtype={"sample_id": str}, keep_default_na=True)
    xs = [f"x{i}" for i in range(N_POINTS)]
    ys = [f"y{i}" for i in range(N_POINTS)]
    missing = [c for c in ["sample_id", *xs, *ys] if c not in df.columns]
    if missing:
        more = "..." if len(missing) > 5 else ""
        raise ValueError(f"{path}: missing columns {missing[:5]}{more}; expected sample_id, x0..x67, y0..y67")
    pts = np.stack([df[xs].to_numpy(np.float64), df[ys].to_numpy(np.float64)], axis=-1).astype(np.float32)
    return df["sample_id"].astype(str).tolist(), pts


def validate_points(points: np.ndarray, image_size: np.ndarray, margin: float = 0.1) -> tuple[np.ndarray, list[str]]:
    """Per row: valid flag and reason; points must be finite and inside the image (± `margin` of its size)."""
    n = len(points)
    ok = np.ones(n, dtype=bool)
    reasons = [""] * n
    finite = np.isfinite(points).all(axis=(1, 2))
    h = image_size[:, 0:1].astype(np.float32)
    w = image_size[:, 1:2].astype(np.float32)
    with np.errstate(invalid="ignore"):
        inside = (
            (points[:, :, 0] >= -margin * w)
            & (points[:, :, 0] <= (1 + margin) * w)
            & (points[:, :, 1] >= -margin * h)
            & (points[:, :, 1] <= (1 + margin) * h)
        ).all(axis=1)
    given = np.isfinite(points).any(axis=2).sum(axis=1)  # points with at least one coordinate
    for i in range(n):
        if not finite[i] and given[i] < points.shape[1]:
            ok[i], reasons[i] = False, f"only {given[i]} of {points.shape[1]} points"
        elif not finite[i]:
            ok[i], reasons[i] = False, "non-finite coordinate"
        elif image_size[i].min() <= 0:
            ok[i], reasons[i] = False, "image unreadable"
        elif not inside[i]:
            ok[i], reasons[i] = False, "point outside the image"
    return ok, reasons


def align_to_manifest(
    sample_ids: list[str], ids: list[str], points: np.ndarray, image_size: np.ndarray, source: str, ok_status: Status
) -> tuple[np.ndarray, np.ndarray]:
    """Points and statuses in manifest order: missing or invalid rows become INVALID_IMPORT (reason logged)."""
    out, status, _ = align_with_reasons(sample_ids, ids, points, image_size, source, ok_status)
    return out, status


def align_with_reasons(
    sample_ids: list[str], ids: list[str], points: np.ndarray, image_size: np.ndarray, source: str, ok_status: Status
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """`align_to_manifest` plus each row's reason ("" when valid): for the store's `reason` column and the stage summary."""
    index = {s: i for i, s in enumerate(ids)}
    repeated = {s for s, n in pd.Series(ids, dtype=object).value_counts().items() if n > 1} if len(ids) else set()
    out = np.full((len(sample_ids), N_POINTS, 2), np.nan, dtype=np.float32)
    status = np.full(len(sample_ids), int(Status.INVALID_IMPORT), dtype=np.uint8)
    rows = np.array([index.get(s, -1) for s in sample_ids], dtype=np.int64)
    have = rows >= 0
    out[have] = points[rows[have]]
    valid, reasons = validate_points(out, image_size)
    for i, sid in enumerate(sample_ids):
        if not have[i]:
            reasons[i] = "no landmarks row"
        elif sid in repeated:
            valid[i], reasons[i] = False, "duplicate sample_id in the landmark file"
        if reasons[i]:
            log.warning("%s: sample %s (manifest row %d): %s: status invalid_import", source, sid, i + 2, reasons[i])
    good = have & valid
    status[good] = int(ok_status)
    out[~good] = np.nan
    return out, status, [r if not g else "" for r, g in zip(reasons, good, strict=True)]
