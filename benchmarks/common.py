"""Shared by the benchmarks: machine/load line, a small synthetic dataset on disk, interleaved repeated timing."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as `python benchmarks/x.py` from a checkout: import this checkout's package
    sys.path.insert(0, str(ROOT))

from fer_pipeline.aumaps.render import render_maps, to_uint8  # noqa: E402
from fer_pipeline.aumaps.store import write_aumap_store  # noqa: E402
from fer_pipeline.core.labels import NUM_CLASSES  # noqa: E402
from fer_pipeline.data.synthetic import SyntheticConfig, make_sample  # noqa: E402


def machine() -> str:
    """CPU model, cores this process may use, and the 1/5/15-minute load averages (the figures' context)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{cpu}, {cores} cores, load average {load}"


def synthetic_dataset(root: Path, n: int, size: int, seed: int = 0) -> pd.DataFrame:
    """n synthetic faces as PNGs under root/images, their AU map store root/aumaps.h5; returns the manifest (all train)."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    labels = np.arange(n) % NUM_CLASSES
    ids = [f"b{i:05d}" for i in range(n)]
    points = np.empty((n, 68, 2), np.float32)
    cfg = SyntheticConfig(size=size)
    for i in range(n):
        s = make_sample(seed, i, int(labels[i]), "train", cfg)
        points[i] = s.landmarks
        cv2.imwrite(str(root / "images" / f"{ids[i]}.png"), cv2.cvtColor(s.image, cv2.COLOR_RGB2BGR))
    maps, has_map = render_maps(points, np.tile([size, size], (n, 1)), labels)
    write_aumap_store(root / "aumaps.h5", ids, to_uint8(maps), has_map, {"size": maps.shape[-1]})
    return pd.DataFrame({"sample_id": ids, "path": [f"images/{s}.png" for s in ids], "label": labels, "split": "train"})


def interleaved(variants: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Seconds of each call, variants alternated A, B, A, B, ... so that load drifts hit all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return times


def summary(times: dict[str, list[float]], num: str, den: str) -> tuple[float, float]:
    """(ratio of medians, ratio of minima) of variant `num` over variant `den`."""
    return statistics.median(times[num]) / statistics.median(times[den]), min(times[num]) / min(times[den])


def paired(times: dict[str, list[float]], num: str, den: str) -> float:
    """Median over repeats of num[i] / den[i]: each pair ran back to back, so it shares the load of its moment."""
    return statistics.median(a / b for a, b in zip(times[num], times[den], strict=True))


def fmt(times: dict[str, list[float]], unit: float = 1e3, label: str = "ms") -> str:
    """One line per variant: median and min."""
    return "\n".join(
        f"  {name:<28} median {statistics.median(t) * unit:9.2f} {label}   min {min(t) * unit:9.2f} {label}   (n={len(t)})"
        for name, t in times.items()
    )


def training_loader(ds: Any, batch: int, workers: int) -> Any:
    """The training loader as `train_model` builds it: epoch-keyed sampler, last partial batch dropped, numpy collate,
    persistent workers (torch is imported here so the preprocessing benchmarks stay torch-free)."""
    from torch.utils.data import DataLoader

    from fer_pipeline.inputs.dataset import collate
    from fer_pipeline.train.distributed import EpochSampler

    return DataLoader(ds, batch_size=batch, sampler=EpochSampler(ds, seed=0), drop_last=True, num_workers=workers,
                      persistent_workers=workers > 0, collate_fn=collate)
