"""The manifest `sample_id, path, label, split[, cue]`: stratified seeded splits, validation, I/O."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from fer_pipeline.core.io import atomic_path
from fer_pipeline.core.labels import NUM_CLASSES

COLUMNS = ("sample_id", "path", "label", "split")
_DTYPES = {"sample_id": str, "path": str, "split": str}
SPLITS = ("train", "val", "test")


def stratified_split(labels: np.ndarray, *, val_fraction: float, test_fraction: float, seed: int) -> np.ndarray:
    """Assign train/val/test per class (rounded per class), seeded; test first, then val carved from train."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    split = np.full(len(labels), "train", dtype=object)
    for k in np.unique(labels):
        idx = np.flatnonzero(labels == k)
        idx = idx[rng.permutation(len(idx))]
        n_test = int(round(len(idx) * test_fraction))
        n_val = int(round((len(idx) - n_test) * val_fraction))
        split[idx[:n_test]] = "test"
        split[idx[n_test : n_test + n_val]] = "val"
    return split


def carve_val(labels: np.ndarray, split: np.ndarray, *, val_fraction: float, seed: int) -> np.ndarray:
    """Move a stratified, seeded `val_fraction` of the train rows to val (datasets that ship only train/test)."""
    split = np.asarray(split, dtype=object).copy()
    train = np.flatnonzero(split == "train")
    sub = stratified_split(np.asarray(labels)[train], val_fraction=0.0, test_fraction=val_fraction, seed=seed)
    split[train[sub == "test"]] = "val"
    return split


def validate_manifest(df: pd.DataFrame, source: str = "manifest", first_row: int = 0) -> pd.DataFrame:
    """Check columns, labels, splits and unique ids; errors name the file, the row and what to do (`first_row`: the
    file row of df's first row, when df is one block of a longer file)."""
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{source}: missing columns {missing}; a manifest needs {', '.join(COLUMNS)} (rerun prepare)")
    dup = df["sample_id"].duplicated(keep="first")
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        sid = df["sample_id"].iloc[row]
        first = int(np.flatnonzero((df["sample_id"] == sid).to_numpy())[0])
        raise ValueError(
            f"{source}: row {row + 2 + first_row}: duplicate sample_id {sid!r} (first at row {first + 2 + first_row}); "
            "sample ids must be unique: rename or remove one of the rows"
        )
    labels = pd.to_numeric(df["label"], errors="coerce")
    bad = labels.isna() | (labels < 0) | (labels >= NUM_CLASSES) | (labels % 1 != 0)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        value = df["label"].iloc[row]
        raise ValueError(
            f"{source}: row {row + 2 + first_row}: label '{value}' is not a canonical index 0..{NUM_CLASSES - 1}; "
            "fix the row or map the dataset's code in fer_pipeline/core/labels.py"
        )
    bad_split = ~df["split"].isin(SPLITS)
    if bad_split.any():
        row = int(np.flatnonzero(bad_split.to_numpy())[0])
        raise ValueError(f"{source}: row {row + 2 + first_row}: split {df['split'].iloc[row]!r} not in {SPLITS}; fix the row")
    out = df.copy()
    out["label"] = labels.astype(np.int64)
    out["sample_id"] = out["sample_id"].astype(str)
    out["path"] = out["path"].astype(str)
    return out.reset_index(drop=True)


def write_manifest(path: str | Path, df: pd.DataFrame) -> None:
    """Validate and write the manifest CSV atomically (deterministic bytes)."""
    df = validate_manifest(df, str(path))
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, lineterminator="\n")


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read and validate a manifest; a missing file says which stage makes it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"manifest {path} not found; run `dvc repro prepare`")
    df = pd.read_csv(path, dtype=_DTYPES, keep_default_na=False)
    return validate_manifest(df, str(path))


def iter_manifest(path: str | Path, block_rows: int) -> Iterator[tuple[int, pd.DataFrame]]:
    """(first row, validated block of `block_rows` rows) over a manifest, for stages whose memory must not grow with N.

    Each block is checked as `read_manifest` checks the whole file, except that duplicate ids are only caught within
    a block (prepare wrote and checked the file; the stages that stream also match ids against the landmark store).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"manifest {path} not found; run `dvc repro prepare`")
    start = 0
    with pd.read_csv(path, dtype=_DTYPES, keep_default_na=False, chunksize=max(1, int(block_rows))) as reader:
        for block in reader:
            yield start, validate_manifest(block, str(path), first_row=start)
            start += len(block)
