"""Classification and map metrics on numpy arrays (no torch), so reports and tests need no model."""

from __future__ import annotations

import math

import numpy as np

from fer_pipeline.core.labels import AU_CLASSES, NUM_CLASSES


def _labels(y: np.ndarray, pred: np.ndarray, num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Check two equal-length 1-D integer label arrays (within [0, num_classes) when given)."""
    y = np.asarray(y).reshape(-1)
    pred = np.asarray(pred).reshape(-1)
    if y.shape != pred.shape:
        raise ValueError(f"y and pred differ in length: {y.shape[0]} vs {pred.shape[0]}")
    y, pred = y.astype(np.int64), pred.astype(np.int64)
    if num_classes is not None and y.size and (min(y.min(), pred.min()) < 0 or max(y.max(), pred.max()) >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes})")
    return y, pred


def accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Top-1 accuracy in percent (as the paper reports CL); NaN for no samples."""
    y, pred = _labels(y, pred)
    return float(100.0 * np.mean(y == pred)) if y.size else math.nan


def confusion_matrix(y: np.ndarray, pred: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """int64 (K, K) counts; rows = true class, columns = predicted class."""
    y, pred = _labels(y, pred, num_classes)
    return np.bincount(y * num_classes + pred, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def macro_f1(y: np.ndarray, pred: np.ndarray, num_classes: int = NUM_CLASSES) -> float:
    """Unweighted mean F1 (a fraction in [0, 1]) over the classes present in y or pred; NaN for no samples."""
    cm = confusion_matrix(y, pred, num_classes).astype(np.float64)
    tp = np.diag(cm)
    support = cm.sum(axis=1) + cm.sum(axis=0)  # 2TP + FN + FP
    present = support > 0
    if not present.any():
        return math.nan
    return float(np.mean(2.0 * tp[present] / support[present]))


def per_class_mean(
    values: np.ndarray, labels: np.ndarray, valid: np.ndarray | None = None, num_classes: int = NUM_CLASSES
) -> dict[int, float]:
    """Mean of `values` per class over rows where `valid` is True; NaN for a class with no valid row."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    valid = np.ones(values.shape, bool) if valid is None else np.asarray(valid, dtype=bool).reshape(-1)
    if not (values.shape == labels.shape == valid.shape):
        raise ValueError(f"values, labels, valid differ in length: {values.shape[0]}, {labels.shape[0]}, {valid.shape[0]}")
    out: dict[int, float] = {}
    for k in range(num_classes):
        sel = valid & (labels == k)
        out[k] = float(values[sel].mean()) if sel.any() else math.nan
    return out


def au_macro(per_class: dict[int, float]) -> float:
    """Macro mean over AU_CLASSES only (neutral never counts), skipping NaN/absent classes; NaN if none."""
    vals = [per_class[k] for k in AU_CLASSES if k in per_class and per_class[k] is not None and math.isfinite(per_class[k])]
    return float(np.mean(vals)) if vals else math.nan


def _maps(cam: np.ndarray, au: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check (N, H, W) map pairs of equal shape (resize the CAM to the AU map first)."""
    cam = np.asarray(cam, dtype=np.float64)
    au = np.asarray(au, dtype=np.float64)
    if cam.ndim == 2:
        cam, au = cam[None], au[None]
    if cam.ndim != 3 or cam.shape != au.shape:
        raise ValueError(f"cam and au must both be (N, H, W) of one shape, got {cam.shape} and {au.shape}")
    return cam, au


def pointing_game(cam: np.ndarray, au: np.ndarray, thr: float = 0.5) -> np.ndarray:
    """Per sample: 1.0 if the CAM's (first) maximum lies in the AU region au >= thr, else 0.0; NaN if the region is empty."""
    cam, au = _maps(cam, au)
    n = cam.shape[0]
    region = (au >= thr).reshape(n, -1)
    hit = region[np.arange(n), cam.reshape(n, -1).argmax(axis=1)].astype(np.float64)
    hit[~region.any(axis=1)] = math.nan
    return hit


def energy_share(cam: np.ndarray, au: np.ndarray, thr: float = 0.5) -> np.ndarray:
    """Per sample: CAM mass inside the AU region au >= thr over total CAM mass (negatives clipped to 0).

    A zero CAM counts as uniform (share = region area fraction); NaN where the region is empty.
    """
    cam, au = _maps(cam, au)
    n = cam.shape[0]
    cam = np.clip(cam, 0.0, None).reshape(n, -1)
    region = (au >= thr).reshape(n, -1)
    total = cam.sum(axis=1)
    inside = (cam * region).sum(axis=1)
    area = region.mean(axis=1)
    share = np.where(total > 0, inside / np.where(total > 0, total, 1.0), area)
    share[~region.any(axis=1)] = math.nan
    return share
