"""The report's gallery: one test face per AU class, its AU map, and each method's CAM without and with AUs beside it
(`reports/figures/gallery.png`), and its first row alone (`gallery-strip.png`, the README's figure).

It reads the evaluate stage's sample panels (`plots/<run>/samples.h5`): every run of a dataset picks the same faces,
so no model or image is loaded again. The docs show copies made by `docs/make_gallery.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from fer_pipeline.core.labels import AU_CLASSES, LABELS
from fer_pipeline.evaluate.figures import gallery_figure, save_figure
from fer_pipeline.evaluate.panel import Panel, common_samples, select
from fer_pipeline.report.tables import AUS

#: Column titles of each run's CAM, by `AUS` entry.
TAGS = {"noaus": "w/o AUs", "aus": "with AUs"}


def gallery_faces(panel: Panel, shared: Sequence[str]) -> list[str]:
    """The first shared sample of each AU class (canonical class order), as the panel lists them; classes without one
    are left out."""
    keep = set(shared)
    firsts: dict[int, str] = {}
    for sid, y in zip(panel.sample_id, panel.label, strict=True):
        if sid in keep:
            firsts.setdefault(int(y), sid)
    return [firsts[k] for k in AU_CLASSES if k in firsts]


def gallery_grid(
    panels: Mapping[str, Mapping[str, Panel]],
) -> tuple[Panel, dict[str, np.ndarray], dict[str, list[str]]] | None:
    """(the faces' panel rows, CAMs by column title, predicted class names by column title) of the runs of each method
    (`panels[method][aus]`), columns in the given method order, without then with AUs; None when no face is shared."""
    runs = [(m, aus, by_aus[aus]) for m, by_aus in panels.items() for aus in AUS if aus in by_aus]
    ids = gallery_faces(runs[0][2], common_samples([p for _, _, p in runs])) if runs else []
    if not ids:
        return None
    cams, preds = {}, {}
    for method, aus, p in runs:
        rows = select(p, ids)
        cams[f"{method} {TAGS[aus]}"] = rows.cam
        preds[f"{method} {TAGS[aus]}"] = [LABELS[int(k)] for k in rows.pred]
    return select(runs[0][2], ids), cams, preds


def write_gallery(panels: Mapping[str, Mapping[str, Panel]], path: str | Path, strip_path: str | Path | None = None) -> bool:
    """Draw the gallery to `path` (and its first row to `strip_path`); False (nothing written) when no face is shared."""
    grid = gallery_grid(panels)
    if grid is None:
        return False
    faces, cams, preds = grid
    labels = [f"{LABELS[int(y)]}: {s}" for s, y in zip(faces.sample_id, faces.label, strict=True)]
    title = "Test faces, their AU maps, and each method's CAM of the true class without and with AUs"
    save_figure(gallery_figure(faces.image, faces.au, cams, preds, labels, title), path)
    if strip_path is not None:
        one = {name: cam[:1] for name, cam in cams.items()}
        first = {name: p[:1] for name, p in preds.items()}
        save_figure(gallery_figure(faces.image[:1], faces.au[:1], one, first, labels[:1], title), strip_path)
    return True


def gallery_section(path: str) -> str:
    """The report's Markdown section showing the gallery at `path` (relative to reports/)."""
    lines = ["", "## Gallery: CAMs without and with AUs", "",
             "One test face per AU class; columns: its AU map, then each method's CAM of the true class without and with AUs.",
             "", f"![gallery]({path})"]
    return "\n".join(lines) + "\n"
