"""Subject-independent splits of split-less datasets (CK+, JAFFE): a subject's images all land in one split.

`data.group` is a regex on each image's file name whose first group (else its whole match) names the subject:
`^(S\\d+)_` for CK+ (`S005_001_00000011.png`), `^([A-Z]{2})\\.` for JAFFE (`KA.HA1.29.tiff`). Splits are stratified
by class as far as whole subjects allow; no bin is left empty while subjects remain for it (k = number of subjects is
leave-one-subject-out, one subject per fold). `data.folds` = k > 1 partitions the subjects into k folds and tests on fold
`data.fold` (k-fold by subject, run as a `dvc exp` sweep over `data.fold`); 0 draws a `data.test_fraction` test split.
Folders that ship their splits keep them: `data.group` then checks that no subject is in two of them and carves val
from train by subject.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from fer_pipeline.core.labels import NUM_CLASSES

#: Subject regexes of the split-less datasets the docs describe.
GROUP_PATTERNS = {"ckplus": r"^(S\d+)_", "jaffe": r"^([A-Z]{2})\."}


def subjects(paths: Sequence[str], pattern: str, source: str = "data.root") -> np.ndarray:
    """The subject of each image: regex `pattern` searched in the file name (first group, else the whole match)."""
    try:
        rx = re.compile(pattern)
    except re.error as e:
        example = GROUP_PATTERNS["ckplus"]
        raise ValueError(f"data.group '{pattern}' is not a valid regular expression ({e}); e.g. '{example}'") from None
    out = []
    for path in paths:
        name = PurePosixPath(str(path)).name
        m = rx.search(name)
        if m is None or not (m.group(1) if rx.groups else m.group(0)):
            raise ValueError(
                f"{source}/{path}: data.group '{pattern}' finds no subject in the file name '{name}'; fix the regex so "
                f"that it matches every image's name (CK+: '{GROUP_PATTERNS['ckplus']}', JAFFE: '{GROUP_PATTERNS['jaffe']}'), "
                "rename or remove the file, or set data.group: '' to split image by image"
            )
        out.append(m.group(1) if rx.groups else m.group(0))
    return np.asarray(out, dtype=object)


def assign_groups(labels: np.ndarray, groups: np.ndarray, fractions: Sequence[float], seed: int) -> np.ndarray:
    """Bin index of each row: whole groups go to the bin whose per-class counts they bring closest to its share.

    Greedy stratified group assignment (largest subjects first, ties in seeded random order): each group goes to the
    bin where it lowers the squared gap between the bin's class fractions and its target `fractions[b]` the most, except
    that once the groups left are no more than the empty bins, each goes to an empty one (no bin ends empty when there
    are at least as many groups as bins).
    """
    labels = np.asarray(labels, dtype=np.int64)
    names, inverse = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    counts = np.zeros((len(names), NUM_CLASSES))
    np.add.at(counts, (inverse, labels), 1.0)
    share = np.asarray(fractions, dtype=np.float64)
    total = counts.sum(axis=0)
    scale = 1.0 / np.maximum(total, 1.0)
    target = share[:, None] * total[None, :]
    current = np.zeros_like(target)
    order = np.random.default_rng(seed).permutation(len(names))
    order = order[np.argsort(-counts[order].sum(axis=1), kind="stable")]
    bins = np.zeros(len(names), dtype=np.int64)
    empty = share > 0  # bins still waiting for a group (a bin meant to stay empty is never forced)
    for done, g in enumerate(order.tolist()):
        before = (((current - target) * scale) ** 2).sum(axis=1)
        gain = (((current + counts[g] - target) * scale) ** 2).sum(axis=1) - before
        if len(names) - done <= int(empty.sum()):  # as many groups left as empty bins: fill those first
            gain = np.where(empty, gain, np.inf)
        b = int(np.argmin(gain))
        bins[g] = b
        empty[b] = False
        current[b] += counts[g]
    return bins[inverse]


def carve_group_val(labels: np.ndarray, groups: np.ndarray, split: np.ndarray, *, val_fraction: float, seed: int) -> np.ndarray:
    """Move whole groups, stratified and seeded, from train to val (`val_fraction` of the train rows, in whole groups)."""
    split = np.asarray(split, dtype=object).copy()
    train = np.flatnonzero(split == "train")
    if val_fraction <= 0 or len(train) == 0:
        return split
    groups = np.asarray(groups).astype(str)
    val = assign_groups(np.asarray(labels)[train], groups[train], [val_fraction, 1.0 - val_fraction], seed) == 0
    if val.all():
        n = len(np.unique(groups[train]))
        raise ValueError(f"data.group: the {n} train subject(s) leave none to train on beside val; lower data.val_fraction")
    split[train[val]] = "val"
    return split


def group_split(
    labels: np.ndarray,
    groups: np.ndarray,
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    folds: int = 0,
    fold: int = 0,
) -> np.ndarray:
    """train / val / test per row with no group in two splits; test = fold `fold` of `folds` (k > 1), else a fraction."""
    groups = np.asarray(groups).astype(str)
    n_groups = len(np.unique(groups))
    if folds > 1:
        if not 0 <= fold < folds:
            raise ValueError(f"data.fold={fold} is outside 0..{folds - 1} (data.folds={folds})")
        if folds > n_groups:
            raise ValueError(
                f"data.folds={folds} exceeds the {n_groups} subjects that data.group finds: a fold needs at least one "
                f"subject; use data.folds <= {n_groups} ({n_groups} = leave one subject out)"
            )
        is_test = assign_groups(labels, groups, [1.0 / folds] * folds, seed) == fold
        if is_test.all():
            raise ValueError(f"data.folds={folds}: the {n_groups} subjects leave none to train on beside fold {fold}")
    else:
        is_test = assign_groups(labels, groups, [test_fraction, 1.0 - test_fraction], seed) == 0
        if not is_test.any() or is_test.all():
            raise ValueError(
                f"data.group finds {n_groups} subject(s): too few for a test split with data.test_fraction={test_fraction}; "
                "raise data.test_fraction or check the regex"
            )
    split = np.where(is_test, "test", "train").astype(object)
    return carve_group_val(labels, groups, split, val_fraction=val_fraction, seed=seed + 1)


def shared_subjects(groups: np.ndarray, split: np.ndarray, source: str, pattern: str, shown: int = 5) -> None:
    """Raise when a subject has images in two shipped splits (a subject-independent split needs each in one)."""
    groups, split = np.asarray(groups).astype(str), np.asarray(split).astype(str)
    members_of = {s: set(groups[split == s].tolist()) for s in ("train", "val", "test") if (split == s).any()}
    seen: dict[str, list[str]] = {}
    for s, members in members_of.items():
        for g in members:
            seen.setdefault(g, []).append(s)
    both = sorted(g for g, where in seen.items() if len(where) > 1)
    if not both:
        return
    listed = "; ".join(
        f"{g} (" + ", ".join(f"{s} {int(((groups == g) & (split == s)).sum())}" for s in seen[g]) + " images)"
        for g in both[:shown]
    ) + ("; ..." if len(both) > shown else "")
    sizes = ", ".join(f"{s} {len(m)}" for s, m in members_of.items())
    raise ValueError(
        f"{source}: data.group '{pattern}' finds {len(both)} of {len(seen)} subjects in more than one shipped split "
        f"(subjects per split: {sizes}): {listed}. Move each subject's images into one split folder, or set "
        "data.group: '' to keep the shipped splits as they are (then the splits are not subject-independent)"
    )


def refuse_folds(data: dict[str, Any], dataset: str, instead: str) -> None:
    """`data.folds` > 1 on a dataset that ships its test split would run k identical trainings: say what to do instead."""
    folds = int(data.get("folds") or 0)
    if folds > 1:
        raise ValueError(
            f"data.folds={folds}: {dataset} ships its own test split, so every fold would train and test on the same rows; "
            f"set data.folds: 0 (the shipped test split is the evaluation){instead}"
        )
