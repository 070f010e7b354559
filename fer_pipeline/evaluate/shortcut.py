"""Shortcut evaluation on the synthetic dataset: how much CAM / attention mass sits on the class-coded mark.

The mark's box comes from the generator (`data.synthetic.cue_box`), so the region is exact. Shares are split by
whether the mark agrees or conflicts with the label; `cue_area` (the box's share of the image) is the chance level
of a uniform map.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fer_pipeline.data.synthetic import cue_box
from fer_pipeline.evaluate.metrics import energy_share


def cue_masks(cue: np.ndarray, image_size: np.ndarray, size: int) -> np.ndarray:
    """float (N, size, size): 1 on map pixels whose centre lies in the sample's mark box, 0 elsewhere or without a mark.

    Map pixel (i, j) is image point ((j+0.5)·W/size, (i+0.5)·H/size); synthetic images are square.
    """
    cue = np.asarray(cue, np.int64).reshape(-1)
    hw = np.asarray(image_size, np.int64).reshape(-1, 2)
    if hw.shape[0] != cue.shape[0]:
        raise ValueError(f"cue ({cue.shape[0]}) and image_size ({hw.shape[0]}) rows differ")
    out = np.zeros((cue.size, size, size), np.float64)
    cell = (np.arange(size, dtype=np.float64) + 0.5) / size
    for i in np.flatnonzero(cue >= 0):
        h, w = (int(v) for v in hw[i])
        if h != w:
            raise ValueError(f"row {i}: the shortcut mark is defined on square synthetic images, got {h}x{w}")
        x0, y0, x1, y1 = cue_box(int(cue[i]), w)
        ys, xs = cell * h, cell * w
        out[i] = np.outer((ys >= y0) & (ys < y1), (xs >= x0) & (xs < x1))
    return out


def cue_metrics(cam: np.ndarray, att: np.ndarray, cue: np.ndarray, labels: np.ndarray, image_size: np.ndarray) -> dict[str, Any]:
    """Mean CAM and attention share on the mark for images whose mark agrees / conflicts with the label, and the box area."""
    cue = np.asarray(cue, np.int64).reshape(-1)
    labels = np.asarray(labels, np.int64).reshape(-1)
    masks = cue_masks(cue, image_size, int(cam.shape[-1]))
    groups = {"agree": (cue >= 0) & (cue == labels), "conflict": (cue >= 0) & (cue != labels)}
    out: dict[str, Any] = {}
    for name, maps in (("cam", cam), ("att", att)):
        for group, sel in groups.items():
            share = energy_share(maps[sel], masks[sel], 0.5) if sel.any() else np.zeros(0)
            out[f"cue_{name}_share_{group}"] = float(share.mean()) if share.size else math.nan
    marked = cue >= 0
    out["cue_area"] = float(masks[marked].mean()) if marked.any() else math.nan
    return out
