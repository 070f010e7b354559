"""What the real-dataset adapters share: root checks that print the expected tree, and the report of excluded rows."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

#: File suffixes the folder adapter takes as images (lower case).
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
#: Columns of `excluded.csv`, written beside the manifest: every source row the adapter did not keep, and why.
EXCLUDED_COLUMNS = ("source", "line", "path", "reason")


class LayoutError(FileNotFoundError):
    """`data.root` does not hold the dataset's layout; the message shows the expected tree."""

    def __init__(self, dataset: str, root: Path, problem: str, expected: str) -> None:
        super().__init__(
            f"data.root={str(root)!r} does not look like a {dataset} root: {problem}.\n"
            f"Expected layout:\n{expected}\nFix data.root in params.yaml (or move the files into this layout)."
        )


def require(dataset: str, root: Path, expected: str, *parts: str) -> None:
    """Raise LayoutError unless `root` and each `root/part` exist."""
    if not root.is_dir():
        raise LayoutError(dataset, root, "the folder does not exist", expected)
    for part in parts:
        if not (root / part).exists():
            raise LayoutError(dataset, root, f"{part} is missing", expected)


def sample_id_of(relative: str) -> str:
    """A manifest key from a path relative to its dataset folder: no suffix, '/' → '_' (`train/happy/a.png` → `train_happy_a`)."""
    p = PurePosixPath(relative)
    return "_".join((*p.parent.parts, p.stem))


@dataclass
class Exclusions:
    """Source rows an adapter left out of the manifest (not a face, unknown class, missing file, ...), with the reason."""

    rows: list[tuple[str, int, str, str]] = field(default_factory=list)

    def add(self, source: str, line: int, path: str, reason: str) -> None:
        """Record one left-out row (`line` is 1-based in `source`; 0 where the source is a folder)."""
        self.rows.append((source, int(line), path, reason))

    def frame(self) -> pd.DataFrame:
        """The report as a table (`excluded.csv`), in the order the rows were met."""
        return pd.DataFrame(self.rows, columns=list(EXCLUDED_COLUMNS))

    def log_summary(self, dataset: str) -> dict[str, int]:
        """Warn once per reason with a count and an example; return the counts."""
        counts: dict[str, int] = {}
        for source, line, path, reason in self.rows:
            if reason not in counts:
                where = f"{source} line {line}: {path}" if line else path
                log.warning("%s: %s (first: %s); see excluded.csv", dataset, reason, where)
            counts[reason] = counts.get(reason, 0) + 1
        for reason, n in counts.items():
            log.warning("%s: %d rows left out: %s", dataset, n, reason)
        return counts


@dataclass
class Prepared:
    """An adapter's result: manifest rows, the excluded-rows report and, where the dataset ships them, its landmarks."""

    manifest: pd.DataFrame
    excluded: Exclusions
    landmarks: tuple[list[str], np.ndarray] | None = None  # sample ids and (N,68,2) x,y, for `landmarks.backend: dataset`


def drop_duplicates(df: pd.DataFrame, excluded: Exclusions, source: str) -> pd.DataFrame:
    """Keep the first row of each sample_id; the others are reported (manifest keys must be unique)."""
    dup = df["sample_id"].duplicated(keep="first").to_numpy()
    for i in np.flatnonzero(dup):
        excluded.add(source, int(df["line"].iloc[i]) if "line" in df else 0, str(df["path"].iloc[i]), "duplicate sample_id")
    return df[~dup].reset_index(drop=True)
