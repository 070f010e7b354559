"""Landmark QA figure: a seeded grid of random rows (or the worst-shaped ones) with their 68 points drawn, the row count
per status and the histogram of the shape residual; and the quality summary `fer landmarks qa` prints."""

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


def residual_histogram(ax: object, table: LandmarkTable) -> None:
    """The shape residual's histogram, with `landmarks.min_quality` marked when the store was built with it."""
    res = table.residual[np.isfinite(table.residual)]
    ax.hist(res, bins=30, range=(0.0, max(0.8, float(res.max()) if res.size else 0.8)), color="tab:gray")
    if table.attrs.get("min_quality"):
        ax.axvline(float(table.attrs["min_quality"]), color="tab:red", linewidth=1)
    ax.set_title("shape residual (IODs; red: min_quality)", fontsize=9)
    ax.tick_params(labelsize=8)


def pick_rows(n_rows: int, n: int, seed: int) -> np.ndarray:
    """`n` distinct row indices drawn with `seed`, in store order."""
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=min(n, n_rows), replace=False))


def worst_rows(table: LandmarkTable, n: int) -> np.ndarray:
    """The `n` rows with the largest shape residual (then most points outside), worst first; rows without points last."""
    residual = np.nan_to_num(table.residual, nan=-1.0)
    outside = table.outside_jaw.astype(np.int64) + table.outside_inner
    return np.lexsort((np.arange(len(residual)), -outside, -residual))[: min(n, len(residual))]


def quality_summary(table: LandmarkTable, worst: int = 5) -> str:
    """Lines for the terminal: rows with jaw / inner points outside the image, residual percentiles, the worst rows."""
    n = len(table.sample_id)
    res = table.residual[np.isfinite(table.residual)]
    lines = [
        f"{n} rows: {int((table.outside_jaw > 0).sum())} with jaw points outside the image, "
        f"{int((table.outside_inner > 0).sum())} with inner (brow, eye, nose, mouth) points outside",
        "shape residual (RMS to the mean face after a similarity fit, inter-ocular distances; "
        "generator faces up to ~0.21, scrambled ~0.78): "
        + (", ".join(f"p{q} {v:.3f}" for q, v in zip((50, 90, 99), np.percentile(res, (50, 90, 99)), strict=True))
           + f", max {res.max():.3f}" if res.size else "no row has points"),
    ]
    for i in worst_rows(table, worst) if res.size else []:
        lines.append(
            f"  {table.sample_id[i]}: residual {table.residual[i]:.3f}, outside jaw {table.outside_jaw[i]} "
            f"inner {table.outside_inner[i]}, status {Status(int(table.status[i])).name.lower()}"
        )
    return "\n".join(lines)


def draw_qa(
    table: LandmarkTable, paths: list[str], root: Path, out: Path, n: int = 16, seed: int = 0, worst: bool = False
) -> dict[str, int]:
    """Write the QA PNG to `out` (Agg, no pyplot state): `n` random rows (`worst`: the worst-shaped rows), the count per
    status and the residual histogram; returns the count per status drawn in its bar chart."""
    from matplotlib.figure import Figure

    rows = worst_rows(table, n) if worst else pick_rows(len(table.sample_id), n, seed)
    cols = max(1, math.ceil(math.sqrt(len(rows))))
    grid_rows = max(1, math.ceil(len(rows) / cols))
    fig = Figure(figsize=(2.2 * cols, 2.3 * grid_rows + 2.2))
    grid = fig.add_gridspec(grid_rows + 1, cols, height_ratios=[1.0] * grid_rows + [0.9])
    for k, i in enumerate(rows):
        ax = fig.add_subplot(grid[k // cols, k % cols])
        ax.set_axis_off()
        status = Status(int(table.status[i])).name.lower()
        ax.set_title(f"{table.sample_id[i]}\n{status} r={table.residual[i]:.2f}", fontsize=7)
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
    half = max(1, cols // 2) if cols > 1 else 1
    ax = fig.add_subplot(grid[grid_rows, :half])
    names = list(counts)
    ax.barh(names, [counts[k] for k in names], color="tab:gray")
    for y, name in enumerate(names):
        ax.text(counts[name], y, f" {counts[name]}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_title(f"{len(table.sample_id)} rows by status (backend {table.attrs.get('backend', '?')})", fontsize=9)
    ax.tick_params(labelsize=8)
    if cols > 1:
        residual_histogram(fig.add_subplot(grid[grid_rows, half:]), table)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    return counts
