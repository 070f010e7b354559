"""The AU-map counts of a dataset for the report: how many rows have a map, and why the others have none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from fer_pipeline.aumaps.build import summarize
from fer_pipeline.data.manifest import read_manifest
from fer_pipeline.landmarks.store import USABLE, read_status


def summarize_stores(manifest: str | Path, aumap_store: str | Path, points: str | Path) -> dict[str, Any]:
    """`summarize` of a built AU-map store: the manifest's labels, the store's has_map and the usable rows of the points
    store the maps were drawn from (the landmark store, or the aligned store). Reads no map."""
    labels = read_manifest(manifest)["label"].to_numpy()
    with h5py.File(aumap_store, "r") as f:
        has_map = f["has_map"][()].astype(bool)
    if len(has_map) != len(labels):
        raise ValueError(f"{aumap_store}: {len(has_map)} rows, but {manifest} has {len(labels)}: run `dvc repro aumaps`")
    usable = np.isin(read_status(points)[1], [int(v) for v in USABLE])
    return summarize(labels, has_map, usable=usable)


def summary_text(s: dict[str, Any]) -> str:
    """`summarize_stores`'s counts in one sentence."""
    return (
        f"{s['rows']:,} rows, {s['with_map']:,} with an AU map, {s['neutral']:,} neutral (no map by design); AU-class "
        f"rows without a map: {s['au_rows_unusable_landmarks']:,} without usable landmarks, {s['au_rows_off_image']:,} "
        "off the image (no AU region reaches the frame)"
    )
