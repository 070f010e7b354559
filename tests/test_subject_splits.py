"""Split-less datasets (CK+, JAFFE) split by subject: no subject in two splits, k folds partition the subjects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fer_pipeline.data.folder import prepare_folder
from fer_pipeline.data.groups import GROUP_PATTERNS, assign_groups
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
