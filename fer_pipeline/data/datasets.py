"""Dataset adapters: turn `params.data` into a manifest (and, for synthetic, images + ground-truth landmarks)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import yaml
from joblib import Parallel, delayed
from tqdm import tqdm

from fer_pipeline.aus.formats import AUS, write_au_csv
from fer_pipeline.core import paths
from fer_pipeline.core.io import atomic_dir, atomic_path
from fer_pipeline.core.labels import LABELS, NUM_CLASSES
from fer_pipeline.core.paths import DATASET_LANDMARKS, EXCLUDED, GT_AUS, GT_LANDMARKS
from fer_pipeline.data.manifest import stratified_split, write_manifest

DATASETS = ("synthetic", "rafdb", "affectnet", "folder")


def image_root(data: dict[str, Any], key: str | None = None) -> Path:
    """Folder the manifest's `path` column is relative to: generated images for synthetic (in the prepared folder of
    `key`, default the dataset's name; an extra test dataset's is `paths.cross_dataset(name)`), `data.root` otherwise."""
    name = str(data["dataset"])
    return paths.prepared_dir(key or name) if name == "synthetic" else Path(str(data["root"]))


def landmark_csv_header() -> list[str]:
    """Columns of the landmark import format: `sample_id, x0..x67, y0..y67`."""
    return ["sample_id", *(f"x{i}" for i in range(68)), *(f"y{i}" for i in range(68))]


def write_landmark_csv(path: Path, sample_ids: list[str], points: np.ndarray) -> None:
    """Write (N,68,2) landmarks in the import CSV format with fixed precision (byte-stable)."""
    df = pd.DataFrame(np.concatenate([points[:, :, 0], points[:, :, 1]], axis=1), columns=landmark_csv_header()[1:])
    df.insert(0, "sample_id", sample_ids)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.3f", lineterminator="\n")


def parse_class_weights(value: Any) -> tuple[float, ...] | None:
    """`synthetic.class_weights` as 7 relative class frequencies (canonical order), or None for `balanced` (equal ones
    too). Accepts a list of 7, a {class name: weight} mapping (unlisted classes 1) or its `-S` string; weights > 0."""
    if isinstance(value, str):
        if value.strip().lower() in ("balanced", "none", ""):
            return None
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError:
            value = None
    if value is None:
        return None
    valid = "valid: balanced, a list of 7 weights (" + ", ".join(LABELS) + ") or a mapping such as {disgust: 0.1}"
    if isinstance(value, Mapping):
        unknown = [k for k in value if str(k) not in LABELS]
        if unknown:
            raise ValueError(f"synthetic.class_weights: unknown class(es) {unknown}; {valid}")
        value = [value.get(name, 1.0) for name in LABELS]
    if not isinstance(value, (list, tuple)) or len(value) != NUM_CLASSES:
        raise ValueError(f"synthetic.class_weights={value!r}: {valid}")
    try:
        weights = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"synthetic.class_weights={value!r} holds a value that is not a number; {valid}") from None
    if not all(np.isfinite(w) and w > 0 for w in weights):
        raise ValueError(f"synthetic.class_weights={value!r}: every weight must be a number > 0 (relative frequency)")
    return None if len(set(weights)) == 1 else weights


def synthetic_labels(n: int, seed: int, weights: tuple[float, ...] | None = None) -> np.ndarray:
    """Labels of the n generated faces, shuffled by `seed`: balanced (the demo's, byte for byte), or class counts in
    proportion to `weights` (largest remainder), each class at least 3 rows (one per split)."""
    rng = np.random.default_rng(seed)
    if weights is None:
        return rng.permutation(np.arange(n) % NUM_CLASSES)
    share = n * np.asarray(weights, np.float64) / float(np.sum(weights))
    counts = np.floor(share).astype(np.int64)
    order = np.argsort(-(share - counts), kind="stable")  # remainder to the largest fractions, ties by class index
    counts[order[: n - int(counts.sum())]] += 1
    if counts.min() < 3:
        k = int(np.argmin(counts))
        raise ValueError(
            f"synthetic.class_weights gives {LABELS[k]} {int(counts[k])} of n={n} faces; need at least 3 per class "
            "(one per split): raise synthetic.n or that class's weight"
        )
    return rng.permutation(np.repeat(np.arange(NUM_CLASSES), counts))


def _write_faces(
    seed: int, rows: range, labels: np.ndarray, split: np.ndarray, ids: list[str], cfg: Any, img_dir: Path, canvas: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Generate and write faces `rows` as PNGs; their (k,68,2) landmarks, cue classes, (k, len(AUS)) true AU
    intensities (0 = not shown) and (k, 4) face boxes (`canvas` > 0: pasted into a photo-style frame; each face depends
    on its row only)."""
    from fer_pipeline.data.photo import paste_in_canvas
    from fer_pipeline.data.synthetic import make_sample

    boxes = np.tile(np.array([0.0, 0.0, cfg.size, cfg.size]), (len(rows), 1))
    points = np.empty((len(rows), 68, 2), dtype=np.float32)
    cues = np.empty(len(rows), dtype=np.int64)
    au_truth = np.zeros((len(rows), len(AUS)), dtype=np.float32)  # every AU the face does not show is 0 (known absent)
    for j, i in enumerate(rows):
        s = make_sample(seed, i, int(labels[i]), str(split[i]), cfg)
        image, points[j], cues[j] = s.image, s.landmarks, s.cue
        if canvas:  # its own stream: the face itself is the same bytes with or without a canvas
            image, points[j], boxes[j] = paste_in_canvas(image, s.landmarks, canvas, np.random.default_rng([seed, i, 1]))
        for au, v in s.au_intensity.items():
            au_truth[j, AUS.index(au)] = v
        ok, buf = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if not ok:
            raise RuntimeError(f"could not encode synthetic image {ids[i]}")
        (img_dir / f"{ids[i]}.png").write_bytes(buf.tobytes())  # plain write: img_dir is in prepare's temp folder
    return points, cues, au_truth, boxes


def prepare_synthetic(data: dict[str, Any], synth: dict[str, Any], out_dir: Path, *, n_jobs: int = 1) -> pd.DataFrame:
    """Generate the embedded synthetic face dataset: labels by `class_weights` (default balanced), stratified splits,
    PNGs, GT landmarks.

    `n_jobs` > 1 generates in that many processes (the GPU check builds 224 px faces on all cores); same bytes for any."""
    from fer_pipeline.data.synthetic import SyntheticConfig

    n, seed = int(synth["n"]), int(synth["seed"])
    if n < 3 * NUM_CLASSES:
        raise ValueError(f"synthetic.n={n} is too small: need at least {3 * NUM_CLASSES} (3 per class per split)")
    lo, hi = (float(v) for v in synth.get("intensity", (0.5, 1.0)))
    s_lo, s_hi = (float(v) for v in synth.get("face_scale", (0.55, 0.8)))
    cfg = SyntheticConfig(
        size=int(synth["size"]),
        intensity=(lo, hi),
        face_scale=(s_lo, s_hi),
        roll=float(synth.get("roll", 12.0)),
        shift=float(synth.get("shift", 1.0)),
        shortcut=bool(synth.get("shortcut", False)),
        shortcut_p_train=float(synth.get("shortcut_p_train", 0.9)),
        shortcut_p_test=float(synth.get("shortcut_p_test", 0.5)),
        au_presence=float(synth.get("au_presence", 1.0)),
    )
    labels = synthetic_labels(n, seed, parse_class_weights(synth.get("class_weights", "balanced")))
    split = stratified_split(
        labels, val_fraction=float(data["val_fraction"]), test_fraction=float(data["test_fraction"]), seed=int(data["seed"])
    )
    img_dir = out_dir / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    ids = [f"syn_{i:06d}" for i in range(n)]
    step = 256 if n_jobs > 1 else n
    chunks = [range(a, min(n, a + step)) for a in range(0, n, step)]
    bar = tqdm(total=n, desc="synthetic faces", unit="img", mininterval=2.0)
    parts = []
    with Parallel(n_jobs=max(1, int(n_jobs)), return_as="generator") as parallel:
        canvas = int(synth.get("canvas", 0))
        for part in parallel(delayed(_write_faces)(seed, rows, labels, split, ids, cfg, img_dir, canvas) for rows in chunks):
            parts.append(part)
            bar.update(len(part[1]))
    bar.close()
    points = np.concatenate([p for p, _, _, _ in parts])
    cues = np.concatenate([c for _, c, _, _ in parts])
    au_truth = np.concatenate([a for _, _, a, _ in parts])
    write_landmark_csv(out_dir / GT_LANDMARKS, ids, points)
    write_au_csv(out_dir / GT_AUS, ids, au_truth)
    rel = [f"images/{s}.png" for s in ids]
    df = pd.DataFrame({"sample_id": ids, "path": rel, "label": labels, "split": split, "cue": cues})
    if canvas:  # the face box of each photo-style frame (x, y, w, h), as the AffectNet adapter writes it
        from fer_pipeline.data.affectnet import BOX_COLUMNS

        boxes = np.concatenate([b for _, _, _, b in parts])
        for k, col in enumerate(BOX_COLUMNS):
            df[col] = boxes[:, k].astype(np.int64)
    return df


def synthetic_truth(dataset: str, key: str | None = None) -> tuple[Path, Path] | None:
    """The generator's per-image AU and landmark truth CSVs of a prepared synthetic set (in the prepared folder of `key`,
    default `dataset`); None for other datasets."""
    if dataset != "synthetic":
        return None
    folder = paths.prepared_dir(key or dataset)
    return (folder / GT_AUS, folder / GT_LANDMARKS) if (folder / GT_AUS).exists() else None


def prepare_real(name: str, data: dict[str, Any], out_dir: Path) -> pd.DataFrame:
    """Run a real-dataset adapter; write excluded.csv (and the shipped landmarks); fail when no row is left."""
    from fer_pipeline.data.affectnet import prepare_affectnet
    from fer_pipeline.data.folder import prepare_folder
    from fer_pipeline.data.rafdb import prepare_rafdb

    adapter = {"rafdb": prepare_rafdb, "affectnet": prepare_affectnet, "folder": prepare_folder}[name]
    result = adapter(data)
    result.excluded.log_summary(name)
    with atomic_path(out_dir / EXCLUDED) as tmp:
        result.excluded.frame().to_csv(tmp, index=False, lineterminator="\n")
    if result.landmarks is not None:
        write_landmark_csv(out_dir / DATASET_LANDMARKS, *result.landmarks)
    if result.manifest.empty:
        raise ValueError(  # out_dir is prepare's temp folder, discarded on error: the logged summary is what remains
            f"data.dataset={name}: no usable row under {data['root']}; the excluded-rows summary above says why"
        )
    return result.manifest


def prepare(params: dict[str, Any], key: str | None = None) -> pd.DataFrame:
    """Run the adapter named by `data.dataset` and write `data/prepared/<key>/manifest.csv` (`key`: the storage key,
    default the dataset's name; `paths.cross_dataset(name)` for an extra test dataset)."""
    data = params["data"]
    name = str(data["dataset"])
    if name not in DATASETS:
        raise ValueError(f"data.dataset={name!r} is not supported; valid: {', '.join(DATASETS)}")
    # Everything (images, ground truth, manifest, exclusions) is written into a temp folder that replaces the real one at
    # the end: a killed prepare never leaves a half-filled dataset folder under the real name.
    key = key or name
    with atomic_dir(paths.prepared_dir(key)) as out_dir:
        df = prepare_synthetic(data, params["synthetic"], out_dir) if name == "synthetic" else prepare_real(name, data, out_dir)
        write_manifest(out_dir / paths.manifest_path(key).name, df)
    return df
