"""Splits by subject (data.group): no subject in two splits, k folds partition the subjects (none empty), shipped split
folders are checked and their val carved by subject, folds refused where a test split is shipped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fer_pipeline.data.folder import prepare_folder
from fer_pipeline.data.groups import GROUP_PATTERNS, assign_groups, group_split
from fer_pipeline.data.rafdb import prepare_rafdb
from tests.dataset_trees import make_ckplus, make_jaffe


def _data(root: Path, **extra: object) -> dict[str, object]:
    return {"root": str(root), "seed": 0, "val_fraction": 0.15, "test_fraction": 0.2, **extra}


def _subjects_per_split(df, kept: dict[str, str]) -> dict[str, set[str]]:  # noqa: ANN001 -- a manifest frame
    return {s: {kept[p] for p in df.loc[df["split"] == s, "path"]} for s in ("train", "val", "test")}


@pytest.fixture(scope="module")
def ckplus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("ckplus")
    return root, make_ckplus(root)


@pytest.fixture(scope="module")
def jaffe(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("jaffe")
    return root, make_jaffe(root)


def test_ckplus_split_by_subject(ckplus: tuple[Path, dict[str, str]]) -> None:
    root, kept = ckplus
    per_image = _subjects_per_split(prepare_folder(_data(root)).manifest, kept)
    assert per_image["test"] & per_image["train"], "image-level splits share subjects (the leak this param closes)"
    df = prepare_folder(_data(root, group=GROUP_PATTERNS["ckplus"])).manifest
    assert len(df) == len(kept)
    subs = _subjects_per_split(df, kept)
    assert all(subs.values())
    assert not (subs["train"] & subs["val"] or subs["train"] & subs["test"] or subs["val"] & subs["test"])
    assert 0.1 < (df["split"] == "test").mean() < 0.3  # near data.test_fraction in whole subjects


def test_jaffe_folds_partition_the_subjects(jaffe: tuple[Path, dict[str, str]]) -> None:
    root, kept = jaffe
    tests = []
    for fold in range(5):
        df = prepare_folder(_data(root, group=GROUP_PATTERNS["jaffe"], folds=5, fold=fold)).manifest
        subs = _subjects_per_split(df, kept)
        assert not (subs["train"] & subs["test"] or subs["val"] & subs["test"] or subs["train"] & subs["val"])
        assert subs["train"] and subs["val"]
        tests.append(subs["test"])
    assert sorted(s for t in tests for s in t) == sorted(set(kept.values()))  # every subject tested exactly once
    assert all(len(t) == 2 for t in tests)  # 10 subjects of equal size in 5 folds
    with pytest.raises(ValueError, match="data.fold=5 is outside 0..4"):
        prepare_folder(_data(root, group=GROUP_PATTERNS["jaffe"], folds=5, fold=5))


def test_stratified_by_class() -> None:
    """Whole groups, yet each bin's class mix follows its share (60 groups of one class each, 7 classes)."""
    labels = np.repeat(np.arange(7), 60)
    groups = np.repeat(np.arange(420 // 3), 3)
    bins = assign_groups(labels, groups, [0.2, 0.8], seed=0)
    share = np.array([(bins[labels == k] == 0).mean() for k in range(7)])
    assert np.all(np.abs(share - 0.2) < 0.06), share


def test_a_file_the_regex_misses_is_named(jaffe: tuple[Path, dict[str, str]]) -> None:
    root, _ = jaffe
    miss = r"jaffe\w*/\w+/KA\.\w+\.\d+\.tiff: data.group '\^\(S\\d\+\)_' finds no subject.*fix the regex"
    with pytest.raises(ValueError, match=miss):
        prepare_folder(_data(root, group=GROUP_PATTERNS["ckplus"]))
    with pytest.raises(ValueError, match="data.folds=3 needs data.group"):
        prepare_folder(_data(root, folds=3))


def _ckplus_like(n_subjects: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Labels and subjects of a CK+-like set: each subject shows 2 expressions x 3 frames (random classes)."""
    labels = np.concatenate([np.repeat(rng.choice(7, size=2, replace=False), 3) for _ in range(n_subjects)])
    return labels, np.repeat([f"S{s:03d}" for s in range(n_subjects)], 6)


def test_leave_one_subject_out_gives_one_subject_per_fold(jaffe: tuple[Path, dict[str, str]]) -> None:
    root, kept = jaffe
    tests = []
    for fold in range(10):
        subs = _subjects_per_split(prepare_folder(_data(root, group=GROUP_PATTERNS["jaffe"], folds=10, fold=fold)).manifest, kept)
        assert not (subs["train"] & subs["test"] or subs["val"] & subs["test"] or subs["train"] & subs["val"])
        tests.append(subs["test"])
    assert [len(t) for t in tests] == [1] * 10
    assert set().union(*tests) == set(kept.values())
    with pytest.raises(ValueError, match=r"data.folds=11 exceeds the 10 subjects .*data.folds <= 10"):
        prepare_folder(_data(root, group=GROUP_PATTERNS["jaffe"], folds=11, fold=0))


def test_no_fold_is_ever_empty() -> None:
    """16 subjects: k = 16 (leave one subject out) gives one subject per fold for every seed; k = 5 and 8 no empty fold."""
    for seed in range(300):
        labels, groups = _ckplus_like(16, np.random.default_rng(seed))
        for k in (5, 8, 16):
            per_fold = [set(groups[group_split(labels, groups, val_fraction=0.15, test_fraction=0.2, seed=seed, folds=k,
                                               fold=f) == "test"]) for f in range(k)]
            assert all(per_fold), (seed, k)
            assert sorted(s for f in per_fold for s in f) == sorted(set(groups)), (seed, k)
            if k == 16:
                assert all(len(f) == 1 for f in per_fold), (seed, per_fold)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """CK+ names under shipped split folders: train/ holds S005..S024, test/ S040..S045 (no val/)."""
    root = tmp_path_factory.mktemp("shipped")
    kept = {f"train/{k}": v for k, v in make_ckplus(root / "train", subjects=20).items()}
    kept |= {f"test/{k}": v for k, v in make_ckplus(root / "test", subjects=6, first=40).items()}
    return root, kept


def test_shipped_splits_carve_val_by_subject(shipped: tuple[Path, dict[str, str]]) -> None:
    root, kept = shipped
    per_image = _subjects_per_split(prepare_folder(_data(root)).manifest, kept)
    assert per_image["val"] & per_image["train"], "val carved image by image shares subjects with train"
    df = prepare_folder(_data(root, group=GROUP_PATTERNS["ckplus"])).manifest
    subs = _subjects_per_split(df, kept)
    assert subs["val"] and not subs["val"] & subs["train"]
    assert subs["test"] == {f"S{s:03d}" for s in range(40, 46)}  # the shipped test split is kept as it is
    assert subs["train"] | subs["val"] == {f"S{s:03d}" for s in range(5, 25)}
    assert 0.05 < (df["split"] == "val").sum() / df["split"].isin(["train", "val"]).sum() < 0.3
    again = prepare_folder(_data(root, group=GROUP_PATTERNS["ckplus"])).manifest
    assert again.equals(df)  # seeded, deterministic


def test_subject_in_two_shipped_splits_is_an_error(tmp_path: Path) -> None:
    make_ckplus(tmp_path / "train", subjects=8)  # S005..S012
    make_ckplus(tmp_path / "test", subjects=3, first=11)  # S011..S013: S011 and S012 are in both
    shared = r"finds 2 of 9 subjects in more than one shipped split \(subjects per split: train 8, test 3\): " \
             r"S011 \(train 6, test 6 images\); S012 \(train 6, test 6 images\)\. Move"
    with pytest.raises(ValueError, match=shared):
        prepare_folder(_data(tmp_path, group=GROUP_PATTERNS["ckplus"]))
    assert len(prepare_folder(_data(tmp_path)).manifest) == 66  # without data.group the shipped splits are kept as they are


def test_folds_refused_with_a_shipped_test_split(shipped: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, _ = shipped
    with pytest.raises(ValueError, match=r"data.folds=3: .*split folders\) ships its own test split.*merge the split folders"):
        prepare_folder(_data(root, group=GROUP_PATTERNS["ckplus"], folds=3, fold=0))
    with pytest.raises(ValueError, match="data.folds=5: RAF-DB ships its own test split.*set data.folds: 0"):
        prepare_rafdb(_data(tmp_path, folds=5, fold=1))
    assert len(prepare_folder(_data(root, group=GROUP_PATTERNS["ckplus"], folds=1)).manifest) == len(shipped[1])
