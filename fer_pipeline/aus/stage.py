"""The `aus` stage's logic: which file `aus.source` names, parsed and matched to the manifest (no torch, no files written)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fer_pipeline import __version__
from fer_pipeline.aus.formats import AUS, read_au_csv
from fer_pipeline.aus.store import SOURCES, AuTable, align_aus
from fer_pipeline.core import paths


def au_source_file(aus: Mapping[str, Any], dataset: str) -> Path | None:
    """The CSV `aus.source` reads (None for `none`); a source that does not fit the dataset says what to set."""
    source = str(aus.get("source", "none"))
    if source not in SOURCES:
        raise ValueError(f"aus.source={source!r} is not supported; valid: {', '.join(SOURCES)}")
    if source == "none":
        return None
    if source == "synthetic":
        if dataset != "synthetic":
            raise ValueError(f"aus.source=synthetic needs data.dataset=synthetic (got {dataset!r}); use import or none")
        return paths.prepared_dir(dataset) / paths.GT_AUS
    return Path(str(aus.get("file") or "")) if aus.get("file") else paths.au_import(dataset)


def build_au_table(sample_ids: list[str], aus: Mapping[str, Any], dataset: str) -> AuTable:
    """Every manifest row's AU intensities from `aus.source` (no rows for `none`: nothing downstream reads them)."""
    source = str(aus.get("source", "none"))
    file = au_source_file(aus, dataset)
    attrs: dict[str, Any] = {"source": source, "fer_pipeline_version": __version__}
    if file is None:
        return AuTable([], np.zeros((0, len(AUS)), np.float32), np.zeros(0, np.uint8), [], {**attrs, "format": "none"})
    if not file.exists():
        hint = "run `dvc repro prepare`" if source == "synthetic" else "write it with `fer aus import FILE` or set aus.file"
        raise FileNotFoundError(f"AU file {file} (aus.source={source}) not found: {hint}")
    return align_aus(sample_ids, read_au_csv(file), str(file), {**attrs, "file": file.as_posix()})
