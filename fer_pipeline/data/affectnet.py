"""AffectNet adapter: `training.csv` / `validation.csv` → manifest with face boxes, plus the shipped 68 landmarks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fer_pipeline.core.labels import AFFECTNET_TO_CANONICAL
from fer_pipeline.core.paths import resolve_inside
from fer_pipeline.data.groups import refuse_folds
from fer_pipeline.data.layout import Exclusions, LayoutError, Prepared, drop_duplicates, require, sample_id_of
from fer_pipeline.data.manifest import carve_val

LISTS_DIR = "Manually_Annotated_file_lists"
IMAGES_DIR = "Manually_Annotated_Images"
#: CSV → split: the validation set (3,500 in AffectNet-7) is the test set; val is carved from training.
SOURCES = (("training.csv", "train"), ("validation.csv", "test"))
REQUIRED = ("subDirectory_filePath", "expression")
BOX = ("face_x", "face_y", "face_width", "face_height")
#: Manifest columns holding the face box (x, y of the top-left corner, width, height) for `landmarks.detector: none`.
BOX_COLUMNS = ("box_x", "box_y", "box_w", "box_h")
NOT_A_FACE = {8: "expression 8 (none)", 9: "expression 9 (uncertain)", 10: "expression 10 (no face)"}
EXPECTED = f"""  <data.root>/
    {LISTS_DIR}/training.csv, validation.csv      (or both directly under <data.root>)
        columns: subDirectory_filePath, face_x, face_y, face_width, face_height,
                 facial_landmarks ("x;y;x;y;..." 68 points), expression
        expression: 0 neutral, 1 happy, 2 sad, 3 surprise, 4 fear, 5 disgust, 6 anger, 7 contempt, 8-10 not used
    {IMAGES_DIR}/<subDirectory_filePath>          (or <data.root>/<subDirectory_filePath>)"""


def parse_landmarks(text: object) -> np.ndarray:
    """AffectNet's `facial_landmarks` ("x;y;x;y;...") → float32 (68,2); all NaN when the cell is not 136 numbers."""
    try:
        v = np.array([float(t) for t in str(text).split(";") if t.strip()], dtype=np.float32)
    except ValueError:
        v = np.empty(0, np.float32)
    return v.reshape(68, 2) if v.size == 136 else np.full((68, 2), np.nan, np.float32)


def find_lists(root: Path) -> Path:
    """Folder holding training.csv / validation.csv (`Manually_Annotated_file_lists/` or the root itself)."""
    for folder in (root / LISTS_DIR, root):
        if all((folder / name).is_file() for name, _ in SOURCES):
            return folder
    raise LayoutError("AffectNet", root, "training.csv and validation.csv were not found", EXPECTED)


def read_list(path: Path, source: str, classes: int, image_prefix: str, root: Path, excluded: Exclusions) -> pd.DataFrame:
    """One AffectNet CSV → kept rows (sample_id, path, label, box, landmarks text); the rest reported in `excluded`."""
    df = pd.read_csv(path, dtype={"subDirectory_filePath": str}, keep_default_na=False)
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}; AffectNet lists need {', '.join(REQUIRED)} (and {', '.join(BOX)})")
    keep = []
    for i, (rel, code_text) in enumerate(zip(df["subDirectory_filePath"], df["expression"], strict=True)):
        line = i + 2
        try:
            code = int(code_text)
        except ValueError:
            excluded.add(source, line, rel, f"expression {code_text!r} is not an integer")
            continue
        if code >= 8 or code < 0:
            excluded.add(source, line, rel, NOT_A_FACE.get(code, f"expression {code} (unknown code)"))
            continue
        if code == 7 and classes == 7:
            excluded.add(source, line, rel, "expression 7 (contempt; AffectNet-7 drops it)")
            continue
        path = f"{image_prefix}{rel}"
        try:
            full = resolve_inside(root, path)
        except ValueError:
            excluded.add(source, line, rel, "path escapes data.root")
            continue
        if not full.is_file():
            excluded.add(source, line, path, "missing image")
            continue
        keep.append((i, sample_id_of(rel), path, AFFECTNET_TO_CANONICAL[code], line))
    rows = [k[0] for k in keep]
    out = pd.DataFrame(keep, columns=["row", "sample_id", "path", "label", "line"]).drop(columns="row")
    for col, src in zip(BOX_COLUMNS, BOX, strict=True):
        values = df[src].iloc[rows] if src in df.columns else pd.Series(np.nan, index=range(len(rows)))
        out[col] = pd.to_numeric(values, errors="coerce").to_numpy(np.float64)
    marks = df["facial_landmarks"].iloc[rows] if "facial_landmarks" in df.columns else pd.Series([""] * len(rows))
    out["facial_landmarks"] = marks.to_numpy()
    return out


def prepare_affectnet(data: dict[str, Any]) -> Prepared:
    """AffectNet-7 (`data.classes: 7`): contempt, non-faces and missing images go to excluded.csv, never silently dropped."""
    classes = int(data.get("classes", 7))
    if classes != 7:
        raise ValueError(
            f"data.classes={classes}: only AffectNet-7 is supported (the canonical label set in fer_pipeline/core/labels.py "
            "and the AU codebook have no contempt class); set data.classes: 7"
        )
    root = Path(str(data["root"]))
    refuse_folds(data, "AffectNet", "")
    require("AffectNet", root, EXPECTED)
    lists = find_lists(root)
    prefix = f"{IMAGES_DIR}/" if (root / IMAGES_DIR).is_dir() else ""
    excluded = Exclusions()
    parts = []
    for name, split in SOURCES:
        source = str((lists / name).relative_to(root))
        part = read_list(lists / name, source, classes, prefix, root, excluded)
        part["split"] = split
        parts.append(drop_duplicates(part, excluded, source))
    df = drop_duplicates(pd.concat(parts, ignore_index=True), excluded, "training.csv+validation.csv")
    df["split"] = carve_val(
        df["label"].to_numpy(np.int64), df["split"].to_numpy(), val_fraction=float(data["val_fraction"]), seed=int(data["seed"])
    )
    points = np.stack([parse_landmarks(t) for t in df["facial_landmarks"]]) if len(df) else np.empty((0, 68, 2), np.float32)
    manifest = df[["sample_id", "path", "label", "split", *BOX_COLUMNS]]
    return Prepared(manifest, excluded, (df["sample_id"].tolist(), points))
