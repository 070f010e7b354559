"""What `fer predict` reads: every image under a folder, or the rows of a CSV manifest (paths, optional boxes/labels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fer_pipeline.core.labels import LABELS, label_index
from fer_pipeline.data.affectnet import BOX_COLUMNS
from fer_pipeline.data.layout import IMAGE_EXTS, sample_id_of

#: Columns of the input table every later step reads; `label` is -1 where unknown.
INPUT_COLUMNS = ("sample_id", "path", "label", *BOX_COLUMNS)


def _label_of(value: object) -> int:
    """A class name, synonym or index as the canonical index; -1 for an empty cell or a name outside the label space."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == "":
        return -1
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        k = int(text)
        return k if 0 <= k < len(LABELS) else -1
    try:
        return label_index(text)
    except ValueError:
        return -1


def from_folder(folder: Path) -> pd.DataFrame:
    """Every image file under `folder` (recursively, sorted); a parent folder named like a class gives the label."""
    files = sorted(
        (p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS and not p.name.startswith(".")),
        key=lambda p: p.as_posix(),
    )
    rel = [p.relative_to(folder).as_posix() for p in files]
    df = pd.DataFrame(
        {
            "sample_id": [sample_id_of(r) for r in rel],
            "path": [str(p) for p in files],
            "label": [_label_of(p.parent.name) if p.parent != folder else -1 for p in files],
        }
    )
    for c in BOX_COLUMNS:
        df[c] = np.nan
    return df


def from_manifest(path: Path, root: Path | None = None, split: str | None = None) -> pd.DataFrame:
    """Rows of a CSV with a `path` column (relative to `root`, default the CSV's folder); `sample_id`, `label`
    (name or index), `split` and the box columns are used when present. `split` keeps only that split's rows."""
    df = pd.read_csv(path, dtype={"sample_id": str, "path": str})
    if "path" not in df.columns:
        raise ValueError(
            f"{path}: no 'path' column; a prediction manifest needs path (and optionally sample_id, label, "
            f"split, {', '.join(BOX_COLUMNS)})"
        )
    if split is not None:
        if "split" not in df.columns:
            raise ValueError(f"{path}: --split {split} given but the manifest has no 'split' column")
        df = df[df["split"].astype(str) == split]
        if df.empty:
            raise ValueError(f"{path}: no rows with split {split!r}")
    base = Path(root) if root is not None else path.parent
    missing_path = df["path"].isna()
    if missing_path.any():
        first = int(np.flatnonzero(missing_path.to_numpy())[0])
        raise ValueError(f"{path}: row {first + 2} has an empty path; fill it or remove the row")
    out = pd.DataFrame({"path": [str(p if Path(p).is_absolute() else base / p) for p in df["path"]]})
    out.insert(
        0,
        "sample_id",
        df["sample_id"].astype(str).to_numpy() if "sample_id" in df.columns else [sample_id_of(str(p)) for p in df["path"]],
    )
    out["label"] = [_label_of(v) for v in df["label"]] if "label" in df.columns else -1
    for c in BOX_COLUMNS:
        out[c] = pd.to_numeric(df[c], errors="coerce").to_numpy() if c in df.columns else np.nan
    dup = out["sample_id"].duplicated()
    if dup.any():
        raise ValueError(f"{path}: sample_id {out['sample_id'][dup].iloc[0]!r} appears twice; ids must be unique")
    return out.reset_index(drop=True)


def read_inputs(source: str | Path, root: str | Path | None = None, split: str | None = None) -> pd.DataFrame:
    """The input table (INPUT_COLUMNS) of a folder or a CSV manifest; an empty input is an error naming the source."""
    source = Path(source)
    if source.is_dir():
        df = from_folder(source)
    elif source.is_file():
        df = from_manifest(source, Path(root) if root else None, split)
    else:
        raise FileNotFoundError(f"{source}: no such folder or manifest (give a folder of images or a CSV with a path column)")
    if df.empty:
        raise ValueError(f"{source}: no images found (extensions: {', '.join(IMAGE_EXTS)})")
    return df.loc[:, list(INPUT_COLUMNS)]
