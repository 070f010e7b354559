"""The headline metrics: the ~11 scalars a reviewer compares with `dvc metrics diff` (`metrics/<run>.json`).

Everything else an evaluation computes (per class, per layer, per AU, cue shares) goes to `plots/<run>/details.json`,
which `report` and the figures read but DVC does not treat as a metric. Short nested keys keep `dvc metrics show`
within 120 columns (124 with the validation files, metrics/val/<run>.json): DVC prints them flattened (`cam.cos`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

#: (headline key path, key in the details dict, what it is). One place for the names README and ablations use.
HEADLINE: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("cl",), "cl", "top-1 accuracy (%) on the test split"),
    (("f1",), "macro_f1", "macro-F1 over the 7 classes"),
    (("cam", "cos"), "cam_cos", "CAM-COS: min-max ground-truth-class CAM vs AU map, macro over the 6 AU classes"),
    (("cam", "pg"), "cam_pointing", "CAM pointing game: the CAM's maximum lies in the AU region"),
    (("cam", "en"), "cam_energy", "CAM energy share: fraction of the CAM's mass in the AU region"),
    (("att", "cos"), "att_cos", "ATT-COS: layer-5 raw attention, shifted if negative, vs AU map (paper Table 2)"),
    (("att", "pg"), "att_pointing", "attention pointing game"),
    (("att", "en"), "att_energy", "attention energy share"),
    (("del",), "deletion_score", "deletion score: random-order minus CAM-order deletion AUC (higher = more faithful)"),
    (("n",), "n", "test images evaluated"),
    (("skip",), "n_skipped_unusable_images", "test images skipped as unreadable (their landmark status)"),
)
#: Decimal places per headline key (CL is a percentage).
DIGITS = {"cl": 2}


def headline(details: Mapping[str, Any]) -> dict[str, Any]:
    """The nested headline dict from a run's full metrics (absent or non-finite values are left out, never faked)."""
    out: dict[str, Any] = {}
    for path, key, _ in HEADLINE:
        value = details.get(key)
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            continue
        if isinstance(value, float):
            value = round(value, DIGITS.get(path[0], 4))
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


def flatten(headline_data: Mapping[str, Any]) -> dict[str, Any]:
    """Back from a headline dict (as `dvc exp show --json` returns it) to the details' key names (`cam_cos`, ...)."""
    out: dict[str, Any] = {}
    for path, key, _ in HEADLINE:
        node: Any = headline_data
        for part in path:
            node = node.get(part) if isinstance(node, Mapping) else None
        if node is not None:
            out[key] = node
    return out
