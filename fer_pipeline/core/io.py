"""Deterministic, atomic writes (temp file + rename) and safe params loading."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import math
import os
import pickle
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; rename it onto `path` only if the block succeeds.

    A killed stage therefore never leaves a half-written artifact under the real name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; artifacts are shared like any file
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temp folder beside `path`; swap it in for `path` only if the block succeeds (a folder-sized `atomic_path`).

    The old folder (if any) is moved aside, the new one renamed in, the old one deleted: at no moment does `path`
    hold a mix of old and new files, and a killed writer leaves `path` untouched (or absent) plus a stale temp.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Delete `.<name>.*.tmp` files/folders beside `path` that a killed writer of `path` left behind; returns them."""
    path = Path(path)
    stale = sorted(path.parent.glob(f".{glob.escape(path.name)}.*.tmp")) if path.parent.is_dir() else []
    for p in stale:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return stale


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _clean(obj: Any, ndigits: int) -> Any:
    """Round floats and turn NaN into None so JSON is stable and valid."""
    if isinstance(obj, dict):
        return {str(k): _clean(v, ndigits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v, ndigits) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        obj = obj.item()
    if isinstance(obj, float):
        return None if not math.isfinite(obj) else round(obj, ndigits)
    return obj


def write_json(path: str | Path, data: Any, ndigits: int = 6) -> None:
    """Write sorted, rounded JSON atomically (byte-stable for equal inputs)."""
    text = json.dumps(_clean(data, ndigits), indent=2, sort_keys=True) + "\n"
    write_text(path, text)


def write_text(path: str | Path, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def load_error_reason(error: BaseException) -> str:
    """One line saying why a weights file did not load (`torch.load(weights_only=True)` errors are long and
    suggest loading unsafely; a refused pickle is said as such)."""
    if isinstance(error, pickle.UnpicklingError):
        return "it holds pickled objects beyond tensors and plain types; refused, loading it could run code"
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()
    return text.splitlines()[0] if text else type(error).__name__


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Read params.yaml with `yaml.safe_load`; a clear error when it is missing or not a mapping."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; run the stage from the repository root")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))  # plain YAML only: a !!python tag is refused, never run
    except yaml.YAMLError as e:
        first = str(e).strip().splitlines()[0]
        raise ValueError(f"{path}: not plain YAML ({first}); fix the file (python tags are refused)") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must be a YAML mapping of sections (data, landmarks, aumaps, train, ...)")
    return data


_TRUE, _FALSE = {"1", "true", "yes", "on", "y"}, {"0", "false", "no", "off", "n", "none", ""}


def parse_bool(key: str, value: Any) -> bool:
    """A params boolean (YAML true/false, or the string `dvc exp run -S key=false` gives) as bool; ValueError names key."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise ValueError(f"{key}={value!r} is not a boolean; valid: true, false")


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, read in 1 MiB blocks (model files, stores: recorded so that a different input is seen)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
