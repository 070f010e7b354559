"""`torchrun` DDP for the training loop: process group (gloo on CPU, nccl on CUDA), epoch-keyed sharded sampling,
gradient averaging, metric reduction, rank-0-only logging; a plain single process when WORLD_SIZE is unset or 1.

Every loss term is the global mean over the rows of all processes: plain CE and the method's own terms because each
process holds batch_size / W rows; the alignment term and class-weighted CE because their denominators (mapped rows,
row weights) are summed across processes (`global_denominators`).

`train.batch_size` stays the global batch: each of the W processes takes batch_size / W samples of the same
per-epoch permutation, so W processes see exactly the batches one process sees (BENCHMARKS.md, "DDP").
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler, Sampler

from fer_pipeline.core.io import atomic_dir


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job; `owns_group` when `init_distributed` created the process group."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, validates and writes files."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """More than one process."""
        return self.world > 1


SINGLE = DistInfo()


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group `torchrun` describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT); SINGLE without it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    if "RANK" not in os.environ:
        raise RuntimeError(f"WORLD_SIZE={world} but RANK is not set: start multi-process training with torchrun")
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    owns = not dist.is_initialized()
    if owns:
        if device.type == "cuda":
            torch.cuda.set_device(local)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank=rank, world=world, local_rank=local, owns_group=owns)


def rank_device(device: torch.device, info: DistInfo) -> torch.device:
    """One GPU per process (cuda:LOCAL_RANK); CPU stays CPU."""
    return torch.device("cuda", info.local_rank) if device.type == "cuda" and info.enabled else device


def cpu_threads(threads: int, info: DistInfo, available: int) -> int:
    """Intra-op threads per process: `threads` if set, else the CPUs shared out between the processes of this node."""
    if threads:
        return threads
    per_node = int(os.environ.get("LOCAL_WORLD_SIZE", info.world)) if info.enabled else 1
    return max(1, available // max(1, per_node))


def per_rank_batch(batch_size: int, info: DistInfo) -> int:
    """batch_size / world (the global batch is split evenly); a clear error when it does not divide."""
    if batch_size % info.world:
        raise ValueError(f"train.batch_size={batch_size} is the global batch and must be divisible by the {info.world} processes")
    return batch_size // info.world


class EpochSampler(Sampler[tuple[int, int]]):
    """Yields (epoch, index): this rank's share of a (seed + epoch)-seeded permutation, tail dropped to split evenly.

    The epoch travels with the index so that the dataset's augmentation draw depends on (seed, epoch, index) only,
    also inside DataLoader worker processes that hold their own copy of the dataset.
    """

    def __init__(self, data: Sized, *, seed: int, info: DistInfo = SINGLE) -> None:
        self.inner = DistributedSampler(data, num_replicas=info.world, rank=info.rank, shuffle=True, seed=seed, drop_last=True)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Call before each epoch (a new permutation and new augmentation draws)."""
        self.epoch = int(epoch)
        self.inner.set_epoch(self.epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((self.epoch, int(i)) for i in self.inner)

    def __len__(self) -> int:
        return len(self.inner)


def wrap_model(model: nn.Module, device: torch.device, info: DistInfo) -> nn.Module:
    """DistributedDataParallel around `model` when several processes train (gradients averaged), else the model.

    On CUDA, BatchNorm layers become SyncBatchNorm (statistics over the global batch, as one process computes them);
    PyTorch has no CPU SyncBatchNorm, so gloo ranks normalise over their own batch_size / W samples.
    """
    if not info.enabled:
        return model
    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return DistributedDataParallel(model, device_ids=[device.index])
    return DistributedDataParallel(model)


def reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum of `t` over all processes (in place; a no-op in a single process)."""
    if info.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def global_denominators(
    has_map: torch.Tensor, y: torch.Tensor, class_weight: torch.Tensor | None, info: DistInfo
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Under DDP, the denominators of the alignment mean (mapped rows of all processes / W) and of the class-weighted
    CE (sum of all processes' row weights / W; None without class weights or with soft targets, whose weighted CE is a
    mean over rows); (None, None) in a single process.

    Each process divides its own sum by them, so its term is W x (its sum) / (global count); DDP averages the W
    gradients, which gives the gradient of the global mean, as one process computes it (one all-reduce a step).
    """
    if not info.enabled:
        return None, None
    weighted = class_weight is not None and y.ndim == 1
    weight = class_weight[y].sum() if weighted else torch.zeros((), device=y.device)
    counts = torch.stack([has_map.to(torch.bool).sum().to(torch.float32), weight.to(torch.float32)])
    dist.all_reduce(counts, op=dist.ReduceOp.SUM)
    return counts[0].clamp_min(1.0) / info.world, counts[1] / info.world if weighted else None


def finish(info: DistInfo) -> None:
    """Wait for every process, then tear down the group if `init_distributed` made it."""
    if info.enabled and dist.is_initialized():
        dist.barrier()
        if info.owns_group:
            dist.destroy_process_group()


class NullLive:
    """Stands in for DVCLive on ranks other than 0 and in runs without a log folder (they log nothing)."""

    step = 0

    def __enter__(self) -> NullLive:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def log_params(self, *args: Any, **kwargs: Any) -> None:
        """No-op."""

    def log_metric(self, *args: Any, **kwargs: Any) -> None:
        """No-op."""

    def next_step(self) -> None:
        """No-op."""


@contextlib.contextmanager
def live_logger(live_dir: Path | None, is_main: bool) -> Iterator[Any]:
    """DVCLive on rank 0 (staged in a temp folder renamed onto `live_dir` at the end); a no-op logger elsewhere and
    when `live_dir` is None (then DVCLive need not be installed: the GPU check runs where it is not)."""
    if not is_main or live_dir is None:
        with NullLive() as live:
            yield live
        return
    from dvclive import Live

    with atomic_dir(live_dir) as staging, Live(str(staging), dvcyaml=False, save_dvc_exp=False) as live:
        yield live
