"""Matplotlib figures (offline, Agg, no pyplot state): per-class average maps, sample overlays, matrices (paper Figs. 4–11).

Every figure has a fixed size in inches at DPI (no tight bbox), so its pixel size is known from its grid, and is
saved atomically without a timestamp, so equal inputs give equal bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text

from fer_pipeline.core.io import atomic_path

DPI = 100
PANEL = 1.6  # inches per map panel
HEADER = 0.6  # inches above the grid for titles
HEAT = "jet"  # the paper's colour map
ALPHA = 0.5
EXPLAIN_PANEL = 3.0  # inches per panel of `fer explain`'s figure
GALLERY_PANEL = 1.2  # inches per panel of the report's gallery (up to 24 CAM columns: Table 1's methods x2)
MIN_FONT = 5.0  # points: a long title shrinks to this before its middle is cut


def grid_figsize(rows: int, cols: int, panel: float = PANEL) -> tuple[float, float]:
    """(width, height) in inches of a rows x cols grid of `panel`-inch panels; pixels = inches x DPI."""
    return cols * panel, rows * panel + HEADER


def save_figure(fig: Figure, path: str | Path) -> None:
    """PNG at DPI, atomically, with no timestamp/software metadata (byte-stable)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})


def fit_text(text: Text, width: float, min_size: float = MIN_FONT) -> None:
    """Make `text` at most `width` display pixels wide: a smaller font (down to `min_size`), then the middle of the
    string cut out with "…" (the start and end stay readable: a sample id's prefix, the true -> predicted classes)."""
    renderer = text.get_figure(root=True).canvas.get_renderer()

    def fits() -> bool:
        return text.get_window_extent(renderer).width <= width

    while not fits() and text.get_fontsize() > min_size:
        text.set_fontsize(max(min_size, text.get_fontsize() - 0.5))
    full, keep = text.get_text(), len(text.get_text())
    while not fits() and keep > 1:
        keep -= 1
        text.set_text(full[: (keep + 1) // 2] + "…" + full[len(full) - keep // 2 :])


def _grid(rows: int, cols: int, title: str, panel: float = PANEL) -> tuple[Figure, np.ndarray]:
    """A figure of rows x cols map panels without ticks; the title fits inside the figure."""
    w, h = grid_figsize(rows, cols, panel)
    fig = Figure(figsize=(w, h), dpi=DPI)
    FigureCanvasAgg(fig)  # a renderer to measure titles with (`fit_text`); saving is unchanged
    top = 1.0 - HEADER / h
    axes = fig.subplots(rows, cols, squeeze=False, gridspec_kw={"left": 0.02, "right": 0.98, "bottom": 0.01, "top": top})
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fit_text(fig.suptitle(title, fontsize=9, y=1.0 - 0.12 / h, va="top"), 0.96 * w * DPI)
    return fig, axes


def _show(ax: Axes, image: np.ndarray | None, heat: np.ndarray | None, label: str = "") -> None:
    """Image (RGB uint8) with an optional [0,1] heat map stretched over it; a heat map alone when there is no image."""
    if image is not None:
        h, w = image.shape[:2]
        ax.imshow(image, extent=(0, w, h, 0), interpolation="bilinear")
    if heat is not None:
        h, w = image.shape[:2] if image is not None else heat.shape
        alpha = ALPHA if image is not None else 1.0
        ax.imshow(heat, cmap=HEAT, vmin=0.0, vmax=1.0, alpha=alpha, extent=(0, w, h, 0), interpolation="bilinear")
    if label:  # at most one column pitch wide: a long sample id stays inside the figure and off its neighbours
        grid = ax.get_subplotspec().get_gridspec()
        pitch = (grid.right - grid.left) * ax.get_figure(root=True).bbox.width / grid.ncols
        fit_text(ax.set_title(label, fontsize=7, pad=2), pitch)


def class_maps_figure(
    names: Sequence[str],
    mean_image: np.ndarray | None,
    mean_au: np.ndarray,
    mean_cam: np.ndarray,
    mean_att: np.ndarray,
    counts: Sequence[int],
    title: str,
) -> Figure:
    """Rows = classes; columns = mean test image, mean AU map, mean ground-truth-class CAM, mean attention."""
    fig, axes = _grid(len(names), 4, title)
    for i, name in enumerate(names):
        img = None if mean_image is None else mean_image[i]
        _show(axes[i, 0], img, None, f"{name} (n={counts[i]})")
        _show(axes[i, 1], None, mean_au[i], "mean AU map")
        _show(axes[i, 2], None, mean_cam[i], "mean CAM")
        _show(axes[i, 3], None, mean_att[i], "mean attention")
    return fig


def samples_figure(
    images: np.ndarray, au: np.ndarray, cam: np.ndarray, att: np.ndarray, labels: Sequence[str], title: str
) -> Figure:
    """Rows = test samples; columns = image, AU map, CAM, attention (each overlaid on the image)."""
    fig, axes = _grid(len(images), 4, title)
    for i in range(len(images)):
        _show(axes[i, 0], images[i], None, labels[i])
        _show(axes[i, 1], images[i], au[i], "AU map")
        _show(axes[i, 2], images[i], cam[i], "CAM")
        _show(axes[i, 3], images[i], att[i], "attention")
    return fig


def compare_figure(
    images: np.ndarray,
    au: np.ndarray,
    runs: Mapping[str, tuple[np.ndarray, np.ndarray]],
    labels: Sequence[str],
    title: str,
) -> Figure:
    """Rows = samples; columns = image + AU map, then CAM and attention of each run (e.g. without / with AUs)."""
    names = list(runs)
    fig, axes = _grid(len(images), 1 + 2 * len(names), title)
    for i in range(len(images)):
        _show(axes[i, 0], images[i], au[i], labels[i])
        for j, name in enumerate(names):
            cam, att = runs[name]
            _show(axes[i, 1 + 2 * j], images[i], cam[i], f"CAM {name}")
            _show(axes[i, 2 + 2 * j], images[i], att[i], f"attention {name}")
    return fig


def gallery_figure(
    images: np.ndarray,
    au: np.ndarray,
    cams: Mapping[str, np.ndarray],
    preds: Mapping[str, Sequence[str]],
    labels: Sequence[str],
    title: str,
) -> Figure:
    """Rows = faces; columns = the face, its AU map, then one CAM per run (e.g. each method without and with AUs), all
    over the face; each CAM is titled with the class its run predicts, the first row's with the run's name too."""
    names = list(cams)
    fig, axes = _grid(len(images), 2 + len(names), title, GALLERY_PANEL)
    for i in range(len(images)):
        _show(axes[i, 0], images[i], None, labels[i])
        _show(axes[i, 1], images[i], au[i], "AU map")
        for j, name in enumerate(names):
            pred = f"pred {preds[name][i]}"
            _show(axes[i, 2 + j], images[i], cams[name][i], f"{name}\n{pred}" if i == 0 else pred)
    return fig


def matrix_figure(
    values: np.ndarray,
    rows: Sequence[str],
    cols: Sequence[str],
    title: str,
    *,
    text: np.ndarray | None = None,
    vmin: float = 0.0,
    vmax: float = 1.0,
    xlabel: str = "",
    ylabel: str = "",
    size: tuple[float, float] = (6.0, 5.0),
) -> Figure:
    """Annotated heat map of a (R, C) matrix (NaN cells blank), e.g. a confusion or a per-class x per-layer cosine matrix."""
    values = np.asarray(values, np.float64)
    fig = Figure(figsize=size, dpi=DPI)
    ax = fig.subplots(gridspec_kw={"left": 0.22, "right": 0.95, "bottom": 0.2, "top": 0.9})
    im = ax.imshow(np.ma.masked_invalid(values), cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
    fig.colorbar(im, ax=ax, fraction=0.05)
    ax.set_xticks(range(len(cols)), labels=list(cols), rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), labels=list(rows), fontsize=8)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title(title, fontsize=9)
    mid = (vmin + vmax) / 2
    for (r, c), v in np.ndenumerate(values):
        label = str(text[r, c]) if text is not None else ("" if np.isnan(v) else f"{v:.2f}")
        ax.text(c, r, label, ha="center", va="center", fontsize=7, color="black" if v > mid else "white")
    return fig


def explain_figure(
    photo: np.ndarray,
    box: tuple[int, int, int, int],
    points: np.ndarray,
    crop: np.ndarray,
    au: np.ndarray | None,
    cam: np.ndarray,
    att: np.ndarray,
    title: str,
) -> Figure:
    """One row: the photo with the face box and 68 points, then the crop with the AU map, the CAM and the attention."""
    fig, axes = _grid(1, 4, title, EXPLAIN_PANEL)
    _show(axes[0, 0], photo, None, "image, crop box, 68 landmarks")
    x0, y0, x1, y1 = box
    axes[0, 0].plot([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0], color="lime", linewidth=1)
    axes[0, 0].scatter(points[:, 0], points[:, 1], s=2, c="red", linewidths=0)
    _show(axes[0, 1], crop, au, "predicted-class AU map" if au is not None else "no AUs (neutral)")
    _show(axes[0, 2], crop, cam, "CAM (predicted class)")
    _show(axes[0, 3], crop, att, "attention (layer 5)")
    return fig
