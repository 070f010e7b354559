"""Extra test datasets (`crossdata` in params.yaml, cross-dataset evaluation): each one's params, storage key and rows.

`crossdata` maps a name to the settings of one extra test dataset: `dataset` (its adapter), `root`, `split` (`test`:
its test split; `all`: every row, for a dataset that is only a test set) and overrides of the `data`, `synthetic` and
`landmarks` sections (what it does not override it inherits from the main dataset's). A mapping, not a list, so that
DVC names the stages after it (`prepare-x@<name>`) and an empty `{}` makes no stage at all.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from fer_pipeline.core import paths

KEY = "crossdata"
#: Sections an entry may override (each a mapping of keys of that params section).
SECTIONS = ("data", "synthetic", "landmarks")
#: What an entry may hold.
ENTRY_KEYS = ("dataset", "root", "split", *SECTIONS)
#: `split`: the dataset's test split, or every row (a dataset that is only a test set).
SPLITS = ("test", "all")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def cross_names(params: Mapping[str, Any]) -> list[str]:
    """The names of the extra test datasets, in params order (none when `crossdata` is absent or empty)."""
    value = params.get(KEY) or {}
    if not isinstance(value, Mapping):
        raise ValueError(f"params.yaml: {KEY} must be a mapping name -> settings (`{KEY}: {{}}` for none), got {value!r}")
    return [str(k) for k in value]


def cross_entry(params: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """The settings of extra test dataset `name`, checked: a safe name, known keys, `dataset` and `root` given."""
    if name not in cross_names(params):
        raise ValueError(f"params.yaml: {KEY}.{name} not found; extra test datasets: {', '.join(cross_names(params)) or 'none'}")
    if not _NAME.fullmatch(name):
        raise ValueError(f"params.yaml: {KEY}.{name}: use letters, digits, '-' and '_' only (it names folders and stages)")
    entry = params[KEY][name]
    if not isinstance(entry, Mapping):
        raise ValueError(f"params.yaml: {KEY}.{name} must be a mapping (dataset, root, split, {', '.join(SECTIONS)})")
    unknown = sorted(set(entry) - set(ENTRY_KEYS))
    if unknown:
        raise ValueError(f"params.yaml: {KEY}.{name} has unknown keys {unknown}; valid: {', '.join(ENTRY_KEYS)}")
    for key in ("dataset", "root"):
        if key not in entry:
            raise ValueError(f"params.yaml: {KEY}.{name}.{key} is missing (every entry names its adapter and its root folder)")
    if str(entry.get("split", "test")) not in SPLITS:
        raise ValueError(f"params.yaml: {KEY}.{name}.split={entry['split']!r} unknown; valid: {', '.join(SPLITS)}")
    for section in SECTIONS:
        if not isinstance(entry.get(section, {}), Mapping):
            raise ValueError(f"params.yaml: {KEY}.{name}.{section} must be a mapping of `{section}` keys to override")
    return entry


def cross_params(params: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The params the prepare / landmarks / aumaps / evaluate functions see for extra test dataset `name`: the main
    params with its `dataset`, `root` and section overrides applied (the same codebook and AU-map settings)."""
    entry = cross_entry(params, name)
    out = copy.deepcopy(dict(params))
    for section in SECTIONS:
        out[section] = {**out.get(section, {}), **dict(entry.get(section, {}))}
    out["data"].update(dataset=str(entry["dataset"]), root=str(entry["root"]))
    if str(out.get("aumaps", {}).get("mode", "codebook")) == "active":
        raise ValueError(
            f"params.yaml: {KEY}.{name}: extra test datasets get codebook AU maps only (aumaps.mode: active needs an AU "
            "store per dataset, which the cross-dataset chain does not build); set aumaps.mode: codebook"
        )
    return out


def stage_params(params: Mapping[str, Any], argv: Sequence[str]) -> tuple[dict[str, Any], str, str | None]:
    """(params, storage key, extra dataset name) of a stage run as `script.py [NAME]`: the main dataset (key
    `data.dataset`) without NAME, else the extra test dataset NAME (key `x/NAME`)."""
    if not argv:
        return dict(params), str(params["data"]["dataset"]), None
    name = str(argv[0])
    return cross_params(params, name), paths.cross_dataset(name), name


def evaluated_rows(manifest: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """The manifest an evaluation of an extra dataset reads: as is for `split: test` when it has test rows, else every
    row relabelled `test` (`split: all`, or a dataset without a test split)."""
    if split == "test" and (manifest["split"] == "test").any():
        return manifest
    return manifest.assign(split="test")
