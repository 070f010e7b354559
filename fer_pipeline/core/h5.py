"""Deterministic HDF5 helpers: no timestamps, fixed chunking, so equal inputs give equal bytes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import h5py
import numpy as np

STR = h5py.string_dtype("utf-8")


def create(group: h5py.Group, name: str, data: np.ndarray, **kwargs: Any) -> h5py.Dataset:
    """`create_dataset` with `track_times=False` (HDF5 otherwise stamps each dataset's mtime)."""
    return group.create_dataset(name, data=data, track_times=False, **kwargs)


def create_strings(group: h5py.Group, name: str, values: list[str]) -> h5py.Dataset:
    """A utf-8 string dataset."""
    return create(group, name, np.array(values, dtype=object), dtype=STR)


def read_strings(ds: h5py.Dataset, rows: slice = slice(None)) -> list[str]:
    """Decode a utf-8 string dataset (or its `rows`) to Python strings."""
    return [s.decode("utf-8") if isinstance(s, bytes) else str(s) for s in ds[rows]]


def set_attrs(obj: h5py.HLObject, attrs: Mapping[str, Any]) -> None:
    """Write attributes in sorted key order (plain str/int/float/bool only: no pickles)."""
    for key in sorted(attrs):
        value = attrs[key]
        if not isinstance(value, (str, int, float, bool, np.integer, np.floating)):
            value = str(value)
        obj.attrs[key] = value
