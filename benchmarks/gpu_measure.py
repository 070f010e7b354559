"""What `gpu_check.py` measures with: the face set built through the stages' library functions, training-step rates
on tensors already on the device and through the real loader, and loader-only rates."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import yaml
from common import ROOT  # first: puts this checkout on sys.path

from fer_pipeline.aumaps.build import aumap_attrs, build_aumap_store_from_files
from fer_pipeline.core.labels import NUM_CLASSES
from fer_pipeline.core.train_config import TrainConfig
from fer_pipeline.data.datasets import prepare_synthetic
from fer_pipeline.data.manifest import write_manifest
from fer_pipeline.inputs.dataset import FERDataset
from fer_pipeline.landmarks.stage import build_landmark_store
from fer_pipeline.train.augment import Augmentation
from fer_pipeline.train.distributed import EpochSampler
from fer_pipeline.train.epoch import make_loader, make_optimizer, train_epoch

#: `--amp` names → autocast dtype (None: fp32).
DTYPES: dict[str, torch.dtype | None] = {"bf16": torch.bfloat16, "fp16": torch.float16, "off": None}


def project_params() -> dict[str, Any]:
    """This checkout's params.yaml: the generator, landmark, AU-map, training and evaluation settings come from it."""
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@dataclass
class Faces:
    """A generated face set on disk: images and manifest under `root`, the landmark and AU map stores beside them."""

    root: Path
    manifest: pd.DataFrame
    landmarks: Path
    aumaps: Path


def build_faces(root: Path, n: int, size: int, jobs: int) -> tuple[Faces, dict[str, Any]]:
    """prepare → landmarks → aumaps as the stages run them (params.yaml settings, `n` faces at `size` px, `jobs`
    processes); returns the set and the seconds and counts of each step."""
    p = project_params()
    t0 = time.perf_counter()
    df = prepare_synthetic(p["data"], {**p["synthetic"], "n": n, "size": size}, root, n_jobs=jobs)
    write_manifest(root / "manifest.csv", df)
    t1 = time.perf_counter()
    lm = {**p["landmarks"], "backend": "synthetic", "n_jobs": jobs}
    summary = build_landmark_store(root / "landmarks.h5", root / "manifest.csv", root, lm, dataset="synthetic")
    t2 = time.perf_counter()
    a = p["aumaps"]
    settings = {"codebook": str(a["codebook"]), "size": int(a["size"]), "radius": float(a["radius"]),
                "smoothing": float(a["smoothing"])}
    has_map = build_aumap_store_from_files(
        root / "aumaps.h5", root / "manifest.csv", root / "landmarks.h5", aumap_attrs(**settings),
        **settings, n_jobs=jobs, chunk_size=int(a["chunk_size"]),
    )
    t3 = time.perf_counter()
    info = {
        "faces": int(len(df)),
        "size_px": int(size),
        "processes": int(jobs),
        "splits": {k: int(v) for k, v in df["split"].value_counts().sort_index().items()},
        "generate_s": t1 - t0,
        "landmarks_s": t2 - t1,
        "aumaps_s": t3 - t2,
        "faces_per_s": len(df) / (t3 - t0),
        "landmark_rows_ok": int(summary["status"].get("ok", 0)),
        "maps_drawn": int(has_map.sum()),
    }
    return Faces(root, df, root / "landmarks.h5", root / "aumaps.h5"), info


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA is asynchronous; CPU work is done when the call returns)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Clocked:
    """Iterates `batches`; notes the time (after a device sync) at the start and when batch `skip` is handed out."""

    def __init__(self, batches: Iterable[Any], skip: int, device: torch.device) -> None:
        self.batches, self.skip, self.device = batches, int(skip), device
        self.n, self.t0, self.t_skip = 0, 0.0, None

    def __iter__(self) -> Iterator[Any]:
        sync(self.device)
        self.t0 = time.perf_counter()
        for i, batch in enumerate(self.batches):
            if i == self.skip:
                sync(self.device)
                self.t_skip = time.perf_counter()
            self.n += 1
            yield batch

    def rates(self, batch: int) -> dict[str, float]:
        """Images/s over the whole pass, and over the batches from `skip` on (steady state: autotuning, worker start-up
        and the first wave of batches left out); call once the pass is over."""
        sync(self.device)
        t = time.perf_counter()
        whole = self.n * batch / (t - self.t0)
        steady = (self.n - self.skip) * batch / (t - self.t_skip) if self.t_skip is not None and self.n > self.skip else whole
        return {"images_per_s": whole, "steady_images_per_s": steady}


def peak_reset(device: torch.device) -> None:
    """Start a peak-memory window (CUDA only)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_mib(device: torch.device) -> float | None:
    """Peak GPU memory allocated since `peak_reset`, MiB; None on CPU (no per-window peak there)."""
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def synthetic_batches(cfg: TrainConfig, steps: int, device: torch.device, fmt: torch.memory_format) -> list[tuple]:
    """`steps` copies of one random batch already on the device, shaped as the training loader's."""
    b, s = cfg.batch_size, cfg.input_size
    x = torch.randn(b, 3, s, s, device=device).contiguous(memory_format=fmt)
    au = torch.rand(b, s, s, device=device)
    one = (x, au, torch.ones(b, dtype=torch.bool, device=device), torch.arange(b, device=device) % NUM_CLASSES, None)
    return [one] * steps


def step_rate(
    model: torch.nn.Module, batches: Iterable[Any], cfg: TrainConfig, *, lam: float, device: torch.device,
    dtype: torch.dtype | None, fmt: torch.memory_format = torch.channels_last, skip: int = 0,
) -> dict[str, Any]:
    """One `train_epoch` pass over `batches` (the training loop itself): images/s, peak memory, mean loss."""
    opt = make_optimizer(cfg, model)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    clock = Clocked(batches, skip, device)
    peak_reset(device)
    stats = train_epoch(model, clock, opt, sched, scaler, cfg=cfg, lam=lam, device=device, dtype=dtype, desc="gpu check",
                        memory_format=fmt)
    return {**clock.rates(cfg.batch_size), "peak_memory_mib": peak_mib(device), "loss": stats["loss"], "steps": clock.n}


def train_loader(faces: Faces, cfg: TrainConfig, device: torch.device, mean: tuple, std: tuple) -> tuple[Any, EpochSampler]:
    """The training loader as `train_model` builds it, over every row of the face set (train augmentation)."""
    ds = FERDataset(faces.manifest, faces.root, faces.aumaps, cfg.input_size, cache_images=cfg.cache_images,
                    mean=mean, std=std, augment=Augmentation(cfg.seed))
    sampler = EpochSampler(ds, seed=cfg.seed)
    return make_loader(ds, cfg, train=True, device=device, generator=torch.Generator(), sampler=sampler), sampler


def loader_rate(faces: Faces, cfg: TrainConfig, workers: int, device: torch.device, mean: tuple, std: tuple) -> dict[str, Any]:
    """Images/s the loader alone delivers onto the device with `workers` processes (pinned memory, non-blocking copies),
    counted from the second wave of batches on (the first wave arrives all at once after start-up)."""
    dl, sampler = train_loader(faces, replace(cfg, num_workers=workers), device, mean, std)
    sampler.set_epoch(1)
    skip = max(1, workers)
    wanted = min(len(dl), skip + max(6, 3 * workers))
    clock = Clocked(dl, skip, device)
    it = iter(clock)
    for _ in range(wanted):
        x, au, *_ = next(it)
        x.to(device, non_blocking=True, memory_format=torch.channels_last)
        au.to(device, non_blocking=True)
    out = {"workers": workers, **clock.rates(cfg.batch_size), "batches": wanted}
    del it, clock, dl  # shuts the worker processes down
    return out


def median_of(runs: list[dict[str, Any]], key: str) -> float:
    """Median of one figure over repeated runs."""
    return statistics.median(r[key] for r in runs)
