"""Per-epoch training checkpoints (`last.pt`): everything needed to continue bit-for-bit, loaded with weights_only."""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fer_pipeline.core.io import atomic_path, load_error_reason

#: Config fields that do not change the trained weights (a resume may change them).
_RUNTIME_ONLY = ("resume", "device", "num_workers", "compile", "threads", "cache_images")


def fingerprint(config: dict[str, Any], sample_ids: list[str], maps_sha256: str = "") -> str:
    """Hash of what determines the weights (config minus runtime knobs, the training ids, the AU-map store's sha256
    when the run reads one): resume only on a match, so a run on other AU maps never continues this one."""
    kept = {k: v for k, v in config.items() if k not in _RUNTIME_ONLY}
    h = hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode())
    h.update("\n".join(sample_ids).encode())
    if maps_sha256:
        h.update(f"\nmaps:{maps_sha256}".encode())
    return h.hexdigest()


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """Python, NumPy, torch (CPU, CUDA) and DataLoader-generator RNG states as tensors/plain types."""
    name, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    return {
        "python": random.getstate(),
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loader": generator.get_state(),
    }


def set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    """Restore what `rng_state` saved."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, gauss_np = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss_np))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    generator.set_state(state["loader"])


def interned(obj: Any) -> Any:
    """Rebuild dicts/lists/tuples with interned strings: pickle memoises by object identity, so a resumed run (whose
    keys came from a loaded file) would otherwise pickle an equal state to different bytes."""
    if isinstance(obj, dict):
        return {interned(k): interned(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(interned(v) for v in obj)
    return sys.intern(obj) if isinstance(obj, str) else obj


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write a checkpoint atomically (a crash mid-write leaves the previous one) and byte-deterministically."""
    state = interned(state)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save(state, fh)  # a file object: given a path, torch names the zip's folder after the (random) temp name


def load_checkpoint(path: Path, expected_fingerprint: str) -> dict[str, Any] | None:
    """The checkpoint at `path` if it exists and was made by the same config and data; None (and why) otherwise."""
    if not path.is_file():
        print(f"resume: no checkpoint at {path}; training from scratch")
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain types only: no code runs
    except Exception as e:  # a foreign pickle, a truncated or corrupt file
        why = load_error_reason(e)
        raise ValueError(f"checkpoint {path} cannot be read safely ({why}); delete it or set train.resume: false") from None
    if not isinstance(state, dict) or state.get("fingerprint") != expected_fingerprint:
        print(f"resume: {path} was made with another config or data; training from scratch")
        return None
    return state


def training_state(
    *,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    generator: torch.Generator,
    epoch: int,
    best_acc: float,
    best_epoch: int,
    best_state: dict[str, torch.Tensor] | None,
    fingerprint: str,
    history: list[dict[str, float]],
) -> dict[str, Any]:
    """What `save_checkpoint` writes after an epoch: weights, optimizer, schedule, scaler, the best epoch so far, RNGs."""
    return {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "scaler": scaler.state_dict(),
        "epoch": epoch,
        "best_acc": best_acc,
        "best_epoch": best_epoch,
        "best_state": best_state,
        "rng": rng_state(generator),
        "fingerprint": fingerprint,
        "history": history,
    }


def restore(
    state: dict[str, Any],
    *,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    generator: torch.Generator,
) -> None:
    """Load a checkpoint's weights, optimizer, schedule, scaler and RNG states back (the run continues bit-for-bit)."""
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    set_rng_state(state["rng"], generator)
