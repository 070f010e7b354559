"""RAF-DB basic adapter: `EmoLabel/list_patition_label.txt` + `Image/aligned/<name>_aligned.jpg` → manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fer_pipeline.core.labels import RAFDB_TO_CANONICAL
from fer_pipeline.data.groups import refuse_folds
from fer_pipeline.data.layout import Exclusions, Prepared, drop_duplicates, require
from fer_pipeline.data.manifest import carve_val

LABEL_FILE = "EmoLabel/list_patition_label.txt"
ALIGNED_DIR = "Image/aligned"
EXPECTED = """  <data.root>/
    EmoLabel/list_patition_label.txt     one line per image: "train_00001.jpg 5", "test_0001.jpg 7"
                                         (1 surprise, 2 fear, 3 disgust, 4 happiness, 5 sadness, 6 anger, 7 neutral)
    Image/aligned/train_00001_aligned.jpg, ..., test_0001_aligned.jpg   (100x100 aligned faces)
    Image/original/                      (optional; not used)"""


def parse_line(line: str) -> tuple[str, str, int]:
    """`train_00001.jpg 5` → (stem, split, canonical label); ValueError says what is wrong with the line."""
    parts = line.split()
    if len(parts) != 2:
        raise ValueError(f"expected '<name>.jpg <code>', got {line.strip()!r}")
    name, code = parts
    stem = name.rsplit(".", 1)[0]
    split = stem.split("_", 1)[0]
    if split not in ("train", "test"):
        raise ValueError(f"image name {name!r} does not start with train_ or test_")
    try:
        label = RAFDB_TO_CANONICAL[int(code)]
    except (ValueError, KeyError):
        raise ValueError(f"label code {code!r} is not 1..7") from None
    return stem, split, label


def prepare_rafdb(data: dict[str, Any]) -> Prepared:
    """Rows of the label file whose aligned image exists; train/test as shipped, val carved from train (seeded)."""
    root = Path(str(data["root"]))
    refuse_folds(data, "RAF-DB", "")
    require("RAF-DB basic", root, EXPECTED, LABEL_FILE, ALIGNED_DIR)
    excluded = Exclusions()
    rows = []
    for lineno, line in enumerate((root / LABEL_FILE).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            stem, split, label = parse_line(line)
        except ValueError as e:
            excluded.add(LABEL_FILE, lineno, "", f"malformed line: {e}")
            continue
        rel = f"{ALIGNED_DIR}/{stem}_aligned.jpg"
        if not (root / rel).is_file():
            excluded.add(LABEL_FILE, lineno, rel, "missing image")
            continue
        rows.append((stem, rel, label, split, lineno))
    df = pd.DataFrame(rows, columns=["sample_id", "path", "label", "split", "line"])
    df = drop_duplicates(df, excluded, LABEL_FILE)
    labels = df["label"].to_numpy(np.int64)
    df["split"] = carve_val(labels, df["split"].to_numpy(), val_fraction=float(data["val_fraction"]), seed=int(data["seed"]))
    return Prepared(df.drop(columns="line"), excluded)
