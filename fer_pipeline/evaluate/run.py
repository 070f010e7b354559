"""Evaluate a saved model on one split: accuracy, macro-F1, confusion, CAM-COS and ATT-COS (layers 1..5), cue accuracies."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from fer_pipeline.align.store import store_alignment
from fer_pipeline.align.warp import Alignment, model_alignment
from fer_pipeline.core.io import write_json, write_text
from fer_pipeline.core.labels import LABELS, NUM_CLASSES
from fer_pipeline.core.paths import DETAILS_FILE, SCORES_FILE
from fer_pipeline.evaluate.bootstrap import Scores, band, scores_csv
from fer_pipeline.evaluate.headline import headline
from fer_pipeline.evaluate.metrics import accuracy, au_macro, confusion_matrix, macro_f1, per_class_mean
from fer_pipeline.inputs.dataset import FERDataset, collate
from fer_pipeline.models import FERModel, load_model
from fer_pipeline.models.maps import attention, cosine, reference_attention, resize

#: The paper's Table 2 reports ATT-COS of the last stage.
ATT_LAYER = 5


@dataclass
class Inference:
    """Per-sample outputs of one pass over a loader (cosines are NaN where the sample has no AU map)."""

    y: np.ndarray
    pred: np.ndarray
    has_map: np.ndarray
    rows: np.ndarray
    cam_cos: np.ndarray
    att_cos: dict[int, np.ndarray]  # the reference computation (`reference_attention`), per layer
    att_cos_minmax: np.ndarray | None = None  # ATT_LAYER's (else the first layer's) cosine of the min-max T_l
    cam_maps: np.ndarray | None = None  # (N, S, S) ground-truth-class CAM at the AU map size (keep_maps only)
    att_maps: np.ndarray | None = None  # (N, S, S) min-max attention of ATT_LAYER (else the first layer): figures, pointing
    att_ref_maps: np.ndarray | None = None  # (N, S, S) the same layer's map as ATT-COS scores it (reference_attention)


@dataclass
class EvalResult:
    """Metrics (JSON-able), the confusion matrix, and per-sample arrays in manifest order for figures."""

    metrics: dict[str, Any]
    confusion: np.ndarray
    sample_id: list[str]
    y: np.ndarray
    pred: np.ndarray
    cam_cos: np.ndarray
    att_cos: np.ndarray
    att_cos_layers: dict[int, np.ndarray] = field(default_factory=dict)
    has_map: np.ndarray | None = None
    rows: np.ndarray | None = None  # AU map store rows
    cam_maps: np.ndarray | None = None
    att_maps: np.ndarray | None = None
    att_ref_maps: np.ndarray | None = None


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` → cuda when available, else cpu; `cuda` without a GPU is an error naming the fix."""
    name = str(name).lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but no CUDA GPU is visible; use device: auto or cpu")
    if name.split(":")[0] not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {name!r}; valid: auto, cpu, cuda")
    return torch.device(name)


def _masked_cos(maps: torch.Tensor, au: torch.Tensor, has_map: torch.Tensor) -> torch.Tensor:
    """Cosine of (B,h,w) maps bilinear-resized to the AU maps' size; NaN where there is no AU map."""
    cos = cosine(resize(maps, tuple(au.shape[-2:])), au)
    return torch.where(has_map, cos, torch.full_like(cos, math.nan))


def att_cos(feat: torch.Tensor, au: torch.Tensor, has_map: torch.Tensor) -> torch.Tensor:
    """ATT-COS per sample of layer features (B,C,h,w): cosine of `reference_attention` at the AU maps' size with the AU
    map (the reference code's computation; the headline, validation and bootstrap scores); NaN without an AU map."""
    cos = cosine(reference_attention(feat, tuple(au.shape[-2:])), au)
    return torch.where(has_map, cos, torch.full_like(cos, math.nan))


@torch.no_grad()
def infer(
    model: FERModel,
    loader: DataLoader,
    *,
    device: torch.device,
    layers: Sequence[int] = (ATT_LAYER,),
    amp_dtype: torch.dtype | None = None,
    progress: bool = False,
    keep_maps: bool = False,
) -> Inference:
    """Predictions, ground-truth-class CAM-COS and per-layer ATT-COS for every sample of `loader` (model in eval mode),
    and the min-max variant of ATT-COS on one layer (ATT_LAYER when asked for, else the first).

    `keep_maps` also returns the CAM and attention maps resized to the AU maps' size (for figures and extra metrics).
    """
    model.eval()
    ys, preds, has, rows, cams, minmax_cos = [], [], [], [], [], []
    cam_maps: list[torch.Tensor] = []
    att_maps: list[torch.Tensor] = []
    ref_maps: list[torch.Tensor] = []
    att_layer = ATT_LAYER if ATT_LAYER in layers or not layers else layers[0]
    atts: dict[int, list[torch.Tensor]] = {layer: [] for layer in layers}
    autocast = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else contextlib.nullcontext()
    for x, au, has_map, y, row in tqdm(loader, desc="eval", leave=False, disable=not progress):
        x = x.to(device, non_blocking=True, memory_format=torch.channels_last)
        au, has_map, y = au.to(device, non_blocking=True), has_map.to(device), y.to(device)
        with autocast:
            out = model(x, layers=tuple(layers))
        cam = model.class_cam(x, y, out)  # (B,h,w) in [0,1]; gradient methods run their own pass
        cams.append(_masked_cos(cam, au, has_map).cpu())
        size = tuple(au.shape[-2:])
        if keep_maps:
            cam_maps.append(resize(cam, size).cpu())
            att_maps.append(resize(attention(out.features[att_layer]), size).cpu())
            ref_maps.append(reference_attention(out.features[att_layer], size).cpu())
        for layer in layers:
            atts[layer].append(att_cos(out.features[layer], au, has_map).cpu())
        if layers:
            minmax_cos.append(_masked_cos(attention(out.features[att_layer]), au, has_map).cpu())
        preds.append(out.logits.argmax(dim=1).cpu())
        ys.append(y.cpu())
        has.append(has_map.cpu())
        rows.append(row)

    def cat(parts: list[torch.Tensor], dtype: Any) -> np.ndarray:
        return torch.cat(parts).numpy().astype(dtype) if parts else np.zeros(0, dtype)

    return Inference(
        y=cat(ys, np.int64),
        pred=cat(preds, np.int64),
        has_map=cat(has, bool),
        rows=cat(rows, np.int64),
        cam_cos=cat(cams, np.float64),
        att_cos={layer: cat(parts, np.float64) for layer, parts in atts.items()},
        att_cos_minmax=cat(minmax_cos, np.float64) if layers else None,
        cam_maps=torch.cat(cam_maps).numpy() if cam_maps else None,
        att_maps=torch.cat(att_maps).numpy() if att_maps else None,
        att_ref_maps=torch.cat(ref_maps).numpy() if ref_maps else None,
    )


def au_macro_cos(values: np.ndarray, y: np.ndarray, has_map: np.ndarray) -> float:
    """Per-class mean of a per-sample cosine over samples with maps, then the macro over the six AU classes."""
    return au_macro(per_class_mean(values, y, has_map))


def _cue_metrics(cue: np.ndarray, y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """Accuracy without a shortcut mark, with a mark agreeing with the label, and with a conflicting mark."""
    groups = {"nocue": cue < 0, "cue_agree": (cue >= 0) & (cue == y), "cue_conflict": (cue >= 0) & (cue != y)}
    out: dict[str, Any] = {}
    for name, sel in groups.items():
        out[f"cl_{name}"] = accuracy(y[sel], pred[sel])
        out[f"n_{name}"] = int(sel.sum())
    return out


def summarize(inf: Inference, cue: np.ndarray | None = None) -> tuple[dict[str, Any], np.ndarray]:
    """Metrics dict and (K,K) confusion from one inference pass (cue: per-sample mark class or -1)."""
    y, pred, valid = inf.y, inf.pred, inf.has_map
    cam_pc = per_class_mean(inf.cam_cos, y, valid)
    att_pc = {layer: per_class_mean(v, y, valid) for layer, v in inf.att_cos.items()}
    acc_pc = {k: accuracy(y[y == k], pred[y == k]) for k in range(NUM_CLASSES)}
    last = att_pc.get(ATT_LAYER, {k: math.nan for k in range(NUM_CLASSES)})
    # The min-max variant is ATT_LAYER's when that layer was scored (infer's rule), else it is another layer's: left out.
    mm = inf.att_cos_minmax if ATT_LAYER in inf.att_cos and inf.att_cos_minmax is not None else None
    last_mm = per_class_mean(mm, y, valid) if mm is not None else {k: math.nan for k in range(NUM_CLASSES)}
    metrics: dict[str, Any] = {
        "n": int(y.size),
        "n_maps": int(valid.sum()),
        "cl": accuracy(y, pred),
        "macro_f1": macro_f1(y, pred),
        "cam_cos": au_macro(cam_pc),
        "att_cos": au_macro(last),
        "att_cos_minmax": au_macro(last_mm),
        "att_cos_layers": {str(layer): au_macro(pc) for layer, pc in sorted(att_pc.items())},
        "per_class": {
            LABELS[k]: {"acc": acc_pc[k], "cam_cos": cam_pc[k], "att_cos": last[k], "att_cos_minmax": last_mm[k],
                        "n": int((y == k).sum())}
            for k in range(NUM_CLASSES)
        },
    }
    if cue is not None:
        metrics.update(_cue_metrics(np.asarray(cue, dtype=np.int64), y, pred))
    return metrics, confusion_matrix(y, pred, NUM_CLASSES)


def check_framing(model_path: str | Path, config: dict[str, Any], faces_path: str | Path | None) -> None:
    """Raise when the model was trained on other framings than the evaluation reads (align.* changed, train not rerun)."""
    trained = model_alignment(config)
    reads = store_alignment(faces_path) if faces_path is not None else Alignment()
    if trained.mode != reads.mode or (reads.mode != "none" and trained != reads):
        raise ValueError(f"{model_path} was trained on faces framed by {trained.to_dict()}, the evaluation reads "
                         f"{reads.to_dict()}: retrain it (`dvc repro`) or set align.* back")


def evaluate_model(
    model_path: str | Path,
    *,
    manifest: pd.DataFrame,
    image_root: str | Path,
    aumap_path: str | Path,
    split: str = "test",
    batch_size: int = 64,
    device: str = "auto",
    num_workers: int = 0,
    keep_maps: bool = False,
    method: str | None = None,
    faces_path: str | Path | None = None,
) -> EvalResult:
    """Load `model_path` through the registry (read out as `method` when given: post-hoc methods) and evaluate it on
    `manifest[split == split]` (all five layers in one pass)."""
    dev = resolve_device(device)
    model, config = load_model(model_path, dev, method=method)
    check_framing(model_path, config, faces_path)
    model = model.to(memory_format=torch.channels_last)  # faster on CPU (oneDNN) and CUDA alike
    rows = manifest[manifest["split"] == split]
    if rows.empty:
        raise ValueError(f"the manifest has no {split!r} rows; splits present: {sorted(manifest['split'].unique())}")
    ds = FERDataset(rows, image_root, aumap_path, int(config["input_size"]), mean=model.mean, std=model.std,
                    faces_path=faces_path)  # faces_path: the aligned-face store (align.mode != none)
    pin = dev.type == "cuda"
    loader = DataLoader(
        ds, batch_size=int(batch_size), shuffle=False, num_workers=int(num_workers), pin_memory=pin, collate_fn=collate
    )
    inf = infer(model, loader, device=dev, layers=model.layer_names, progress=True, keep_maps=keep_maps)
    cue = rows["cue"].to_numpy() if "cue" in rows.columns else None
    metrics, confusion = summarize(inf, cue)
    metrics = {"split": split, **metrics}
    return EvalResult(
        metrics=metrics,
        confusion=confusion,
        sample_id=rows["sample_id"].astype(str).tolist(),
        y=inf.y,
        pred=inf.pred,
        cam_cos=inf.cam_cos,
        att_cos=inf.att_cos.get(ATT_LAYER, np.full(inf.y.shape, math.nan)),
        att_cos_layers=inf.att_cos,
        has_map=inf.has_map,
        rows=inf.rows,
        cam_maps=inf.cam_maps,
        att_maps=inf.att_maps,
        att_ref_maps=inf.att_ref_maps,
    )


def result_scores(result: EvalResult) -> Scores:
    """The per-image scores of an evaluation (what the bootstrap bands resample)."""
    return Scores(tuple(result.sample_id), result.y, result.pred, result.cam_cos, result.att_cos)


def write_outputs(result: EvalResult, metrics_path: str | Path, plots_dir: str | Path) -> None:
    """Headline metrics JSON, every metric in `plots_dir/details.json` (sorted, rounded, NaN → null, with the bootstrap
    band of each banded metric under `band`), the per-image `scores.csv` and `confusion.csv` in DVC's long format
    (class names), all atomic."""
    scores = result_scores(result)
    write_json(metrics_path, headline(result.metrics), ndigits=4)
    write_json(Path(plots_dir) / DETAILS_FILE, {**result.metrics, "band": band(scores)})
    write_text(Path(plots_dir) / SCORES_FILE, scores_csv(scores))
    lines = ["actual,predicted"] + [f"{LABELS[a]},{LABELS[p]}" for a, p in zip(result.y, result.pred, strict=True)]
    write_text(Path(plots_dir) / "confusion.csv", "\n".join(lines) + "\n")
