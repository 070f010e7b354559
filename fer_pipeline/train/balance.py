"""`train.balance`: class imbalance handled by inverse-frequency cross-entropy weights or a class-balanced sampler.

Real FER sets are imbalanced (RAF-DB, AffectNet, FER2013: disgust and fear are a few percent of the faces); without
either, a rare class can end with 0 % recall. Both are computed from the train split's labels only.

- `weights`: CE weight of class k = N / (K · n_k) over the K classes present in train (sklearn's "balanced"); a class
  with no train row gets 0 (it is never a target).
- `sampler`: each epoch draws N rows with replacement, row i with probability ∝ 1 / n_{label(i)} (every present class
  equally likely), from a generator seeded by (seed, epoch); under DDP rank r takes draws r, r + W, r + 2W, ... of the
  same global draw (disjoint shards whose per-rank batches together are one process's batches, like `EpochSampler`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

from fer_pipeline.core.labels import LABELS, NUM_CLASSES
from fer_pipeline.inputs.dataset import FERDataset
from fer_pipeline.train.distributed import SINGLE, DistInfo, EpochSampler


def class_counts(labels: Sequence[int] | np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Rows per class, (num_classes,) int64."""
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)[:num_classes]


def inverse_frequency_weights(labels: Sequence[int] | np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """CE weight per class: N / (K · n_k) over the K classes present (mean weight per row = 1); 0 for absent classes."""
    counts = class_counts(labels, num_classes).astype(np.float64)
    present = counts > 0
    if not present.any():
        raise ValueError("train.balance: the train split has no rows to count classes from")
    weights = np.zeros(num_classes, dtype=np.float64)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights


def row_probabilities(labels: Sequence[int] | np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Draw probability of each row: ∝ 1 / (rows of its class), so that every class present is drawn equally often."""
    labels = np.asarray(labels, dtype=np.int64)
    counts = class_counts(labels, num_classes)
    p = 1.0 / counts[labels].astype(np.float64)
    return p / p.sum()


def balanced_draw(labels: Sequence[int] | np.ndarray, *, seed: int, epoch: int, size: int | None = None) -> np.ndarray:
    """`size` (default: the number of rows) row indices drawn with replacement by `row_probabilities`; a pure function of
    (labels, seed, epoch, size)."""
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels) if size is None else int(size)
    rng = np.random.default_rng([int(seed), int(epoch)])
    return rng.choice(len(labels), size=n, replace=True, p=row_probabilities(labels))


def shard(indices: np.ndarray, info: DistInfo = SINGLE) -> np.ndarray:
    """Rank `info.rank`'s share of a global draw: every `world`-th index from `rank`, tail dropped to split evenly."""
    per_rank = len(indices) // info.world
    return indices[: per_rank * info.world][info.rank :: info.world]


class BalancedSampler(Sampler[tuple[int, int]]):
    """Yields (epoch, index) like `EpochSampler`, from this rank's shard of `balanced_draw(labels, seed, epoch)`."""

    def __init__(self, labels: Sequence[int] | np.ndarray, *, seed: int, info: DistInfo = SINGLE) -> None:
        self.labels = np.asarray(labels, dtype=np.int64)
        self.seed, self.info, self.epoch = int(seed), info, 0

    def set_epoch(self, epoch: int) -> None:
        """Call before each epoch (a new draw and new augmentation draws)."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        rows = shard(balanced_draw(self.labels, seed=self.seed, epoch=self.epoch), self.info)
        return ((self.epoch, int(i)) for i in rows)

    def __len__(self) -> int:
        return len(self.labels) // self.info.world


def make_sampler(mode: str, data: FERDataset, *, seed: int, info: DistInfo = SINGLE) -> EpochSampler | BalancedSampler:
    """The training sampler for `train.balance` (`sampler`: class-balanced over `data.labels`; otherwise the plain epoch
    permutation, exactly as without the key)."""
    return BalancedSampler(data.labels, seed=seed, info=info) if mode == "sampler" else EpochSampler(data, seed=seed, info=info)


def ce_weights(mode: str, labels: np.ndarray, device: torch.device) -> torch.Tensor | None:
    """Cross-entropy class weights for `train.balance: weights` (float32 on `device`), else None (plain CE)."""
    if mode != "weights":
        return None
    return torch.tensor(inverse_frequency_weights(labels), dtype=torch.float32, device=device)


def describe(mode: str, labels: np.ndarray) -> str:
    """A log line: the train split's class counts and what `train.balance` does with them."""
    counts = class_counts(labels)
    text = ", ".join(f"{LABELS[k]} {int(c)}" for k, c in enumerate(counts))
    if mode == "weights":
        w = inverse_frequency_weights(labels)
        return f"train.balance weights: class counts {text}; CE weights " + ", ".join(f"{x:.2f}" for x in w)
    if mode == "sampler":
        return f"train.balance sampler: class counts {text}; each class drawn equally often (with replacement)"
    return f"train.balance none: class counts {text}"
