"""Folder adapter: `<root>/<split>/<class>/*` (FER2013-style) or `<root>/<class>/*` (CK+, JAFFE) → manifest."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fer_pipeline.core.labels import label_index
from fer_pipeline.data.groups import carve_group_val, group_split, refuse_folds, shared_subjects, subjects
from fer_pipeline.data.layout import IMAGE_EXTS, Exclusions, LayoutError, Prepared, drop_duplicates, require, sample_id_of
from fer_pipeline.data.manifest import carve_val, stratified_split

log = logging.getLogger(__name__)

#: Split folder names (lower case) → manifest split.
SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}
EXPECTED = """  <data.root>/
    train/<class>/*.jpg|png|bmp|tif|...   class folders: neutral, happy, sad, angry, surprised, fearful, disgusted
    val/<class>/...                       (optional: carved from train, data.val_fraction, when absent)  (synonyms accepted)
    test/<class>/...                      (data.group: no subject in two split folders; val carved by subject)
  or, without split folders (CK+, JAFFE):
    <class>/*.png                         (test and val drawn per class with data.test_fraction / data.val_fraction;
                                          by subject with data.group, e.g. '^(S\\d+)_' for CK+, '^([A-Z]{2})\\.' for JAFFE)
  Other class folders (contempt, ...) are skipped with a warning and listed in excluded.csv."""


def subdirs(folder: Path) -> list[Path]:
    """Visible sub-folders, sorted by name (deterministic on every file system)."""
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def scan_classes(root: Path, folder: Path, excluded: Exclusions) -> list[tuple[str, str, int]]:
    """(sample_id, path relative to root, label) of every image under `folder/<class>/` (recursively); others reported."""
    rows = []
    for cls in subdirs(folder):
        files = sorted((p for p in cls.rglob("*") if p.is_file() and not p.name.startswith(".")), key=lambda p: p.as_posix())
        try:
            label = label_index(cls.name)
        except ValueError:
            for p in files:
                excluded.add(
                    cls.relative_to(root).as_posix(), 0, p.relative_to(root).as_posix(), f"unknown class folder {cls.name!r}"
                )
            continue
        for p in files:
            rel = p.relative_to(root).as_posix()
            if p.suffix.lower() not in IMAGE_EXTS:
                excluded.add(cls.relative_to(root).as_posix(), 0, rel, "not an image file")
                continue
            rows.append((sample_id_of(rel), rel, label))
    return rows


def split_flat(df: pd.DataFrame, data: dict[str, Any], source: str) -> np.ndarray:
    """Splits of a split-less folder: by subject when `data.group` is set (k-fold with `data.folds`), else per image."""
    labels = df["label"].to_numpy(np.int64)
    val_fraction, test_fraction, seed = float(data["val_fraction"]), float(data["test_fraction"]), int(data["seed"])
    pattern = str(data.get("group") or "")
    folds = int(data.get("folds") or 0)
    if not pattern:
        if folds > 1:
            raise ValueError(f"data.folds={folds} needs data.group (the subject regex): folds are drawn by subject")
        return stratified_split(labels, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
    groups = subjects(df["path"].tolist(), pattern, source)
    return group_split(
        labels, groups, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed,
        folds=folds, fold=int(data.get("fold") or 0),
    )


def split_shipped(df: pd.DataFrame, data: dict[str, Any], source: str) -> np.ndarray:
    """Splits of a folder with split folders: kept as shipped; val (when not shipped) carved from train, by subject when
    `data.group` is set, which also checks that no subject is in two shipped splits."""
    refuse_folds(data, f"data.root={source!r} (split folders)",
                 "; for k-fold by subject, merge the split folders into <root>/<class>/* and set data.group")
    labels, split = df["label"].to_numpy(np.int64), df["split"].to_numpy()
    val_fraction, seed = float(data["val_fraction"]), int(data["seed"])
    pattern = str(data.get("group") or "")
    if not pattern:
        return split if (split == "val").any() else carve_val(labels, split, val_fraction=val_fraction, seed=seed)
    groups = subjects(df["path"].tolist(), pattern, source)
    shared_subjects(groups, split, source, pattern)
    return split if (split == "val").any() else carve_group_val(labels, groups, split, val_fraction=val_fraction, seed=seed)


def prepare_folder(data: dict[str, Any]) -> Prepared:
    """Images under class folders; split folders as given (val carved from train when absent), or a stratified split."""
    root = Path(str(data["root"]))
    require("folder", root, EXPECTED)
    top = subdirs(root)
    splits = [d for d in top if d.name.lower() in SPLIT_NAMES]
    excluded = Exclusions()
    if splits:
        for d in top:
            if d not in splits:
                log.warning(
                    "folder %s: %s is not a split folder (%s): skipped", root, d.name, ", ".join(sorted(set(SPLIT_NAMES)))
                )
                excluded.add(d.name, 0, d.name, "not a split folder")
        frames = [
            pd.DataFrame(scan_classes(root, d, excluded), columns=["sample_id", "path", "label"]).assign(
                split=SPLIT_NAMES[d.name.lower()]
            )
            for d in splits
        ]
        df = pd.concat(frames, ignore_index=True)
        if not (df["split"] == "test").any():
            raise LayoutError("folder", root, "there is no test/ split folder (or it holds no images of a known class)", EXPECTED)
        df["split"] = split_shipped(df, data, str(root))
    else:
        df = pd.DataFrame(scan_classes(root, root, excluded), columns=["sample_id", "path", "label"])
        if df.empty:
            raise LayoutError("folder", root, "no split folders and no images in known class folders", EXPECTED)
        df["split"] = split_flat(df, data, str(root))
    df = drop_duplicates(df, excluded, str(root))
    return Prepared(df, excluded)
