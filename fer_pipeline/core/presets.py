"""Parameter presets: a small YAML overlay of params.yaml turned into `dvc exp run -S` flags (no torch).

    dvc exp run $(python -m fer_pipeline.core.presets params-table1.yaml)

Keys already in params.yaml are set (`-S key=value`); new keys are added (`-S +key=value`, Hydra's append syntax,
which DVC requires for keys the file lacks). Values are compact JSON (valid YAML, no spaces), so the shell's word
splitting of `$(...)` keeps each flag whole.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from fer_pipeline.core.train_config import REMOVED_METHOD_KEY


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping -> {"a.b.c": leaf}; an empty mapping is a leaf ({})."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _read(path: Path) -> dict[str, Any]:
    """A YAML mapping from `path`, with an error naming the file."""
    if not path.is_file():
        raise FileNotFoundError(f"preset/params file {path} not found")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a YAML mapping of params, got {type(data).__name__}")
    return data


def overlay_flags(overlay: str | Path, params: str | Path = "params.yaml") -> list[str]:
    """`-S` flags that turn `params` into `params` updated by `overlay` (new keys with a leading "+")."""
    known = flatten(_read(Path(params)))
    prefixes = {k.rsplit(".", i)[0] for k in known for i in range(k.count(".") + 1)}
    flags: list[str] = []
    for key, value in flatten(_read(Path(overlay))).items():
        if key == "train.method":
            raise ValueError(f"{overlay}: {REMOVED_METHOD_KEY}")
        text = json.dumps(value, separators=(",", ":"))
        if " " in text:
            raise ValueError(f"{overlay}: value of {key} contains a space, which `$(...)` would split: {text}")
        flags += ["-S", f"{'' if key in prefixes else '+'}{key}={text}"]
    return flags


def main(argv: list[str]) -> None:
    """Print the flags for `dvc exp run` (argv: overlay [params])."""
    if not 1 <= len(argv) <= 2:
        raise SystemExit("usage: python -m fer_pipeline.core.presets OVERLAY.yaml [params.yaml]")
    print(" ".join(overlay_flags(*argv)))


if __name__ == "__main__":
    main(sys.argv[1:])
