"""The evaluate stage beyond CL/CAM-COS/ATT-COS: extra map metrics, deletion faithfulness, shortcut shares and figures."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch.utils.data import DataLoader

from fer_pipeline.align.store import read_matrices
from fer_pipeline.align.warp import map_points
from fer_pipeline.aumaps.render import from_uint8
from fer_pipeline.aumaps.store import open_maps
from fer_pipeline.core.io import write_text
from fer_pipeline.core.labels import AU_CLASSES, LABELS, NUM_CLASSES
from fer_pipeline.evaluate.active_truth import active_scores, read_truth
from fer_pipeline.evaluate.extra_metrics import au_partition, extra_metrics
from fer_pipeline.evaluate.faithfulness import Deletion, deletion_scores, subset_indices
from fer_pipeline.evaluate.figures import class_maps_figure, matrix_figure, samples_figure, save_figure
from fer_pipeline.evaluate.metrics import au_macro, per_class_mean
from fer_pipeline.evaluate.panel import Panel, pick_samples, write_panel
from fer_pipeline.evaluate.run import EvalResult, evaluate_model, resolve_device, write_outputs
from fer_pipeline.evaluate.shortcut import cue_metrics
from fer_pipeline.inputs.dataset import FERDataset
from fer_pipeline.landmarks.store import USABLE, read_landmark_store
from fer_pipeline.models import load_model

#: Side (pixels) of the images drawn in figures.
DISPLAY = 112
#: Columns of the per-class x per-layer cosine matrix: ATT-COS of layers 1..5, then CAM-COS.
COS_COLUMNS = ("1", "2", "3", "4", "5", "cam")


@dataclass
class Extended:
    """Everything the evaluate stage writes for one run."""

    result: EvalResult
    au: np.ndarray  # (N, S, S) float AU maps of the split
    cosine: np.ndarray  # (len(AU_CLASSES) + 1, len(COS_COLUMNS)) per-class rows + macro row
    class_means: dict[str, np.ndarray]  # image / au / cam / att: (len(AU_CLASSES), ...) means over samples with maps
    class_counts: list[int]
    panel: Panel
    deletion: Deletion | None


def landmarks_for(landmark_path: str | Path, sample_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(N,68,2) landmarks (NaN where the store's status is not usable) and (N,2) image H,W for `sample_ids`."""
    table = read_landmark_store(landmark_path)
    row_of = {sid: i for i, sid in enumerate(table.sample_id)}
    missing = [s for s in sample_ids if s not in row_of]
    if missing:
        raise ValueError(f"{len(missing)} samples (e.g. {missing[0]!r}) are not in {landmark_path}; rerun `dvc repro landmarks`")
    idx = np.array([row_of[s] for s in sample_ids], np.int64)
    usable = np.isin(table.status[idx], [int(s) for s in USABLE])
    pts = np.where(usable[:, None, None], table.landmarks[idx], np.float32(np.nan))
    return pts, table.image_size[idx]


def cosine_matrix(result: EvalResult) -> np.ndarray:
    """Rows AU classes + macro, columns COS_COLUMNS: mean per-class ATT-COS per layer and CAM-COS (NaN where absent)."""
    valid = np.isfinite(result.cam_cos)
    out = np.full((len(AU_CLASSES) + 1, len(COS_COLUMNS)), math.nan)
    for j, col in enumerate(COS_COLUMNS):
        values = result.cam_cos if col == "cam" else result.att_cos_layers.get(int(col))
        if values is None:
            continue
        pc = per_class_mean(values, result.y, valid)
        out[: len(AU_CLASSES), j] = [pc[k] for k in AU_CLASSES]
        out[-1, j] = au_macro(pc)
    return out


def cosine_csv(matrix: np.ndarray) -> str:
    """The cosine matrix in DVC's long plot format `class,layer,cos` (empty cos where undefined)."""
    names = [LABELS[k] for k in AU_CLASSES] + ["macro"]
    lines = ["class,layer,cos"]
    for (r, c), v in np.ndenumerate(matrix):
        lines.append(f"{names[r]},{COS_COLUMNS[c]},{'' if math.isnan(v) else f'{v:.4f}'}")
    return "\n".join(lines) + "\n"


def add_deletion(metrics: dict[str, Any], deletion: Deletion, labels: np.ndarray) -> None:
    """Deletion AUCs and score per true class and macro over the classes present (neutral counts: no AU map needed)."""
    for name, values in (
        ("deletion_auc", deletion.auc_cam),
        ("deletion_auc_random", deletion.auc_random),
        ("deletion_score", deletion.score),
    ):
        pc = per_class_mean(values, labels)
        present = [v for v in pc.values() if math.isfinite(v)]
        metrics[name] = float(np.mean(present)) if present else math.nan
        for k in range(NUM_CLASSES):
            metrics["per_class"][LABELS[k]][name] = pc[k]
    metrics["deletion_n"] = int(labels.size)


def _faithfulness(
    model_path: Path,
    rows: pd.DataFrame,
    image_root: Path,
    aumap_path: Path,
    *,
    n: int,
    steps: int,
    batch_size: int,
    device: str,
    method: str | None = None,
    faces_path: str | Path | None = None,
) -> tuple[Deletion, np.ndarray]:
    """Deletion scores on `n` evenly spaced rows of the split; returns them with the rows' true labels."""
    idx = subset_indices(len(rows), n)
    dev = resolve_device(device)
    model, config = load_model(model_path, dev, method=method)
    sub = rows.iloc[idx]
    ds = FERDataset(sub, image_root, aumap_path, int(config["input_size"]), mean=model.mean, std=model.std,
                    faces_path=faces_path)
    batches = [x for x, *_ in DataLoader(ds, batch_size=batch_size, shuffle=False)]
    return deletion_scores(model, batches, steps=steps, device=dev), sub["label"].to_numpy(np.int64)


def _class_means(
    read: Callable[[int], np.ndarray], au: np.ndarray, result: EvalResult
) -> tuple[dict[str, np.ndarray], list[int]]:
    """Per AU class means of the images (read one at a time) and of the AU, CAM and attention maps over the class's
    samples with maps."""
    means: dict[str, list[np.ndarray]] = {"image": [], "au": [], "cam": [], "att": []}
    counts = []
    for k in AU_CLASSES:
        sel = np.flatnonzero(np.asarray(result.has_map, bool) & (result.y == k))
        counts.append(int(sel.size))
        image = np.zeros((DISPLAY, DISPLAY, 3))
        for i in sel:
            image += read(int(i))
        means["image"].append(image / max(1, sel.size))
        for key, arr in (("au", au), ("cam", result.cam_maps), ("att", result.att_maps)):
            means[key].append(arr[sel].astype(np.float64).mean(axis=0) if sel.size else np.zeros(arr.shape[1:]))
    out = {k: np.stack(v) for k, v in means.items()}
    out["image"] = np.clip(np.rint(out["image"]), 0, 255).astype(np.uint8)
    return out, counts


def evaluate_extended(
    model_path: str | Path,
    *,
    manifest: pd.DataFrame,
    image_root: str | Path,
    aumap_path: str | Path,
    landmark_path: str | Path,
    split: str = "test",
    batch_size: int = 64,
    device: str = "auto",
    faithfulness_n: int = 128,
    deletion_steps: int = 8,
    figure_samples: int = 1,
    method: str | None = None,
    truth: tuple[Path, Path] | None = None,
    faces_path: str | Path | None = None,
) -> Extended:
    """`evaluate_model` plus pointing game, energy shares, per-AU attention shares, deletion, cue shares and figure data;
    `truth` (the generator's AU and landmark CSVs) adds the scores against the true active-AU map (`active_truth.py`).

    `method` reads the model out as that method (post-hoc methods on the CAM model); None = the model's own.
    `faces_path`: the aligned-face store (align.mode != none; `landmark_path` is then that store too)."""
    model_path, image_root, aumap_path = Path(model_path), Path(image_root), Path(aumap_path)
    result = evaluate_model(
        model_path,
        manifest=manifest,
        image_root=image_root,
        aumap_path=aumap_path,
        split=split,
        batch_size=batch_size,
        device=device,
        keep_maps=True,
        method=method,
        faces_path=faces_path,
    )
    rows = manifest[manifest["split"] == split]
    reader = open_maps(aumap_path)
    au = from_uint8(reader.read_u8(result.rows))
    missing = [k for k in ("codebook", "radius", "smoothing") if k not in reader.attrs]
    if missing:
        raise ValueError(
            f"AU map store {aumap_path} lacks the attributes {missing} that say how its maps were drawn; rerun `dvc repro aumaps`"
        )
    codebook = str(reader.attrs["codebook"])
    pts, image_size = landmarks_for(landmark_path, result.sample_id)
    partition = au_partition(
        pts,
        image_size,
        result.y,
        codebook=codebook,
        size=au.shape[-1],
        radius=float(reader.attrs["radius"]),
        smoothing=float(reader.attrs["smoothing"]),
    )
    m = result.metrics
    extra_metrics(
        m,
        cam=result.cam_maps,
        att=result.att_maps,
        au=au,
        has_map=result.has_map,
        labels=result.y,
        partition=partition,
        codebook=codebook,
    )
    if truth is not None:
        intensity, true_pts = read_truth(truth[0], truth[1], result.sample_id)
        if faces_path is not None:  # the generator's points are in the image files: move them into the framed faces
            true_pts = map_points(true_pts, read_matrices(faces_path, result.sample_id))
        active_scores(m, cam=result.cam_maps, att=result.att_maps, att_cos_maps=result.att_ref_maps, labels=result.y,
                      landmarks=true_pts, image_size=image_size, intensity=intensity, attrs=reader.attrs)
    if "cue" in rows.columns and (rows["cue"].to_numpy() >= 0).any():
        m.update(cue_metrics(result.cam_maps, result.att_maps, rows["cue"].to_numpy(), result.y, image_size))
    deletion = None
    if faithfulness_n > 0:
        deletion, labels = _faithfulness(
            model_path,
            rows,
            image_root,
            aumap_path,
            n=faithfulness_n,
            steps=deletion_steps,
            batch_size=batch_size,
            device=device,
            method=method,
            faces_path=faces_path,
        )
        add_deletion(m, deletion, labels)
    view = FERDataset(rows, image_root, None, DISPLAY, cache_images=False, faces_path=faces_path)
    means, counts = _class_means(view.read, au, result)
    pick = pick_samples(result.y, result.has_map, figure_samples)
    images = np.stack([view.read(i) for i in pick]) if pick.size else np.zeros((0, DISPLAY, DISPLAY, 3), np.uint8)
    panel = Panel(
        sample_id=[result.sample_id[i] for i in pick],
        label=result.y[pick],
        pred=result.pred[pick],
        image=images,
        au=au[pick],
        cam=result.cam_maps[pick],
        att=result.att_maps[pick],
    )
    return Extended(result, au, cosine_matrix(result), means, counts, panel, deletion)


def write_extended(ext: Extended, run: str, *, metrics_path: str | Path, plots_dir: str | Path, figures_dir: str | Path) -> None:
    """Metrics JSON, confusion/cosine plot CSVs, the sample panel, and the run's PNG figures."""
    plots_dir, figures_dir = Path(plots_dir), Path(figures_dir)
    write_outputs(ext.result, metrics_path, plots_dir)
    write_text(plots_dir / "cosine.csv", cosine_csv(ext.cosine))
    write_panel(plots_dir / "samples.h5", ext.panel, {"run": run})
    names = [LABELS[k] for k in AU_CLASSES]
    cm = ext.result.confusion.astype(np.float64)
    frac = cm / np.where(cm.sum(axis=1, keepdims=True) > 0, cm.sum(axis=1, keepdims=True), 1.0)
    figures = {
        "class_maps": class_maps_figure(
            names,
            ext.class_means["image"],
            ext.class_means["au"],
            ext.class_means["cam"],
            ext.class_means["att"],
            ext.class_counts,
            f"{run}: per-class means (test, samples with AU maps)",
        ),
        "samples": samples_figure(
            ext.panel.image, ext.panel.au, ext.panel.cam, ext.panel.att, ext.panel.titles(), f"{run}: test samples"
        ),
        "confusion": matrix_figure(
            frac,
            list(LABELS),
            list(LABELS),
            f"{run}: confusion (row-normalised, counts)",
            text=ext.result.confusion,
            xlabel="predicted",
            ylabel="actual",
        ),
        "cosine": matrix_figure(
            ext.cosine,
            [*names, "macro"],
            [f"ATT L{c}" if c != "cam" else "CAM" for c in COS_COLUMNS],
            f"{run}: cosine with the AU map per class and layer",
            xlabel="map",
            ylabel="class",
        ),
    }
    for name, fig in figures.items():
        save_figure(fig, figures_dir / f"{name}.png")
