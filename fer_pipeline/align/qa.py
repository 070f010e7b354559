"""Alignment QA figure (`fer align qa`): a seeded grid of framed faces with their 68 points and the template's anchors
(crosses: where the eyes, nose tip and mouth corners should land), and the row count per fallback."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import h5py
import numpy as np

from fer_pipeline.align.framing import describe
from fer_pipeline.align.store import store_alignment, store_framing
from fer_pipeline.align.warp import Fallback, template
from fer_pipeline.core import h5
from fer_pipeline.core.io import atomic_path
from fer_pipeline.landmarks.qa import REGIONS, pick_rows


def draw_align_qa(
    store: str | Path, out: str | Path, n: int = 16, seed: int = 0, requested: str | None = None
) -> tuple[dict[str, int], str]:
    """Write the QA PNG of the aligned-face store `store` to `out`; returns the count per fallback in its bar chart and
    the line on the mode (`requested`: params' align.mode, e.g. "align.mode auto → rigid: median head height 1.14 …")."""
    from matplotlib.figure import Figure

    al = store_alignment(store)
    if al.mode == "none":
        raise ValueError(f"{store} says align.mode none: there are no framed faces to draw (set align.mode: auto, "
                         "rigid or similarity)")
    choice = describe(requested or al.mode, al.mode, store_framing(store))
    with h5py.File(store, "r") as f:
        fallback = f["fallback"][()]
        rows = pick_rows(len(fallback), n, seed)
        faces, points = f["faces"][rows], f["landmarks"][rows]
        ids = h5.read_strings(f["sample_id"])
    counts = {fb.name.lower(): int((fallback == fb).sum()) for fb in Fallback}
    anchors = template(al)
    cols = max(1, math.ceil(math.sqrt(len(rows))))
    grid_rows = max(1, math.ceil(len(rows) / cols))
    fig = Figure(figsize=(2.2 * cols, 2.3 * grid_rows + 1.8))
    grid = fig.add_gridspec(grid_rows + 1, cols, height_ratios=[1.0] * grid_rows + [0.7])
    for k, i in enumerate(rows):
        ax = fig.add_subplot(grid[k // cols, k % cols])
        ax.set_axis_off()
        ax.set_title(f"{ids[i]}\n{Fallback(int(fallback[i])).name.lower()}", fontsize=7)
        ax.imshow(faces[k])
        if np.isfinite(points[k]).all():
            for _, part, colour in REGIONS:
                ax.scatter(points[k][part, 0], points[k][part, 1], s=3, c=colour, linewidths=0)
        ax.scatter(anchors[:, 0], anchors[:, 1], s=30, marker="+", c="white", linewidths=0.8)
    ax = fig.add_subplot(grid[grid_rows, :])
    names = list(counts)
    ax.barh(names, [counts[k] for k in names], color="tab:gray")
    for y, name in enumerate(names):
        ax.text(counts[name], y, f" {counts[name]}", va="center", fontsize=8)
    ax.invert_yaxis()
    wrapped = textwrap.fill(choice, width=max(40, int(12 * 2.2 * cols)))  # ~12 characters an inch at 8 pt
    ax.set_title(f"{len(fallback)} rows by framing (template {al.template:g}, {al.size} px)\n{wrapped}", fontsize=8)
    ax.tick_params(labelsize=8)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    return counts, choice
