"""Landmark QA figure: a seeded grid of random rows with their 68 points drawn, and the row count per status."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from fer_pipeline.core.io import atomic_path
from fer_pipeline.core.paths import resolve_inside
from fer_pipeline.data.images import ImageError, read_image
from fer_pipeline.landmarks.store import LandmarkTable, Status

#: iBUG-68 regions and their colours in the figure.
REGIONS = (
    ("jaw", slice(0, 17), "tab:orange"),
    ("brows", slice(17, 27), "tab:green"),
    ("nose", slice(27, 36), "tab:blue"),
    ("eyes", slice(36, 48), "tab:cyan"),
    ("mouth", slice(48, 68), "tab:red"),
)


def pick_rows(n_rows: int, n: int, seed: int) -> np.ndarray:
    """`n` distinct row indices drawn with `seed`, in store order."""
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=min(n, n_rows), replace=False))


def draw_qa(table: LandmarkTable, paths: list[str], root: Path, out: Path, n: int = 16, seed: int = 0) -> dict[str, int]:
    """Write the QA PNG to `out` (Agg, no pyplot state); returns the count per status drawn in its bar chart."""
    from matplotlib.figure import Figure

    rows = pick_rows(len(table.sample_id), n, seed)
    cols = max(1, math.ceil(math.sqrt(len(rows))))
    grid_rows = max(1, math.ceil(len(rows) / cols))
    fig = Figure(figsize=(2.2 * cols, 2.3 * grid_rows + 2.2))
    grid = fig.add_gridspec(grid_rows + 1, cols, height_ratios=[1.0] * grid_rows + [0.9])
    for k, i in enumerate(rows):
        ax = fig.add_subplot(grid[k // cols, k % cols])
        ax.set_axis_off()
        status = Status(int(table.status[i])).name.lower()
        ax.set_title(f"{table.sample_id[i]}\n{status}", fontsize=7)
        try:
            ax.imshow(read_image(resolve_inside(root, paths[i])))
        except (ImageError, ValueError):
            ax.text(0.5, 0.5, "unreadable image", ha="center", va="center", transform=ax.transAxes, fontsize=8)
            continue
        pts = table.landmarks[i]
        if np.isfinite(pts).all():
            for _, part, colour in REGIONS:
                ax.scatter(pts[part, 0], pts[part, 1], s=4, c=colour, linewidths=0)
    counts = table.status_counts()
    ax = fig.add_subplot(grid[grid_rows, :])
    names = list(counts)
    ax.barh(names, [counts[k] for k in names], color="tab:gray")
    for y, name in enumerate(names):
        ax.text(counts[name], y, f" {counts[name]}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_title(f"{len(table.sample_id)} rows by status (backend {table.attrs.get('backend', '?')})", fontsize=9)
    ax.tick_params(labelsize=8)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    return counts
