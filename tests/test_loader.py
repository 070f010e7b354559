"""Data loading at scale: DataLoader workers with images read from disk and maps from the HDF5 store (a handle opened
before the fork is never shared), the same weights for 0 and 2 workers, and what `cache_images: auto` says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from fer_pipeline.core.labels import NUM_CLASSES
from fer_pipeline.data.manifest import stratified_split
from fer_pipeline.inputs.dataset import AUTO_CACHE_BYTES, FERDataset, cache_decision, collate
from fer_pipeline.models import load_model
from fer_pipeline.train import TrainConfig, train_model
from fer_pipeline.train.augment import Augmentation
from tests.faces import write_faces


@pytest.fixture(scope="module")
def faces(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """56 synthetic 32 px faces (train/val) with their AU map store."""
    root = tmp_path_factory.mktemp("loader")
    labels = np.arange(56) % NUM_CLASSES
    split = stratified_split(labels, val_fraction=0.25, test_fraction=0.0, seed=0)
    return root, write_faces(root, labels, split, size=32, prefix="w")[0]


def test_workers_read_the_same_items_after_the_parent_opened_the_store(faces: tuple[Path, pd.DataFrame]) -> None:
    """The parent reads a map first (its h5py handle is open when the workers fork); 2 workers still give exactly
    the parent's items, each worker reading the store through a handle of its own."""
    root, rows = faces
    ds = FERDataset(rows, root, root / "aumaps.h5", 32, augment=Augmentation(), cache_images="false")
    assert ds.cache is None and ds.au_u8(0).shape == (56, 56) and ds.maps._file is not None  # parent's handle open

    def batches(workers: int) -> list[tuple[torch.Tensor, ...]]:
        keys = [(1, i) for i in range(len(ds))]  # epoch 1's augmentation draw
        return list(DataLoader(keys, batch_size=8, num_workers=workers, collate_fn=lambda k: collate([ds[x] for x in k])))

    serial, parallel = batches(0), batches(2)
    assert len(serial) == len(parallel) == 7
    for a, b in zip(serial, parallel, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert any(bool(b[2].any()) for b in serial) and float(serial[0][1].max()) > 0  # the maps were really read


@pytest.mark.slow
def test_two_workers_train_the_same_weights_as_none(
    faces: tuple[Path, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """CPU, images from disk (cache off), maps from the HDF5 store: num_workers 2 and 0 end with identical weights,
    and so does the in-RAM cache; each run's log says what the cache setting did."""
    root, rows = faces
    monkeypatch.chdir(tmp_path)  # DVCLive looks for a repo from the cwd
    base = {"backbone": "resnet18", "output_stride": 16, "input_size": 32, "epochs": 1, "batch_size": 8, "lr": 0.01,
            "device": "cpu", "seed": 0, "threads": 1}
    weights = {}
    for name, extra in {"w0": {"num_workers": 0, "cache_images": "false"}, "w2": {"num_workers": 2, "cache_images": "false"},
                        "cached": {"num_workers": 0, "cache_images": "auto"}}.items():
        out = tmp_path / name
        train_model(TrainConfig.from_params({**base, **extra}), lam=2.0, manifest=rows, image_root=root,
                    aumap_path=root / "aumaps.h5", model_out=out / "model.pt", live_dir=out / "live", checkpoint_dir=out / "ck")
        weights[name] = load_model(out / "model.pt")[0].state_dict()
    log = capsys.readouterr().out
    assert log.count("cache_images false:") == 2 and "read from disk every epoch" in log
    assert "cache_images auto: on (42 images at 32 px" in log
    for name in ("w2", "cached"):
        assert all(torch.equal(weights["w0"][k], weights[name][k]) for k in weights["w0"]), name


def test_cache_auto_says_what_it_chose_and_why() -> None:
    on, note = cache_decision("auto", 1000, 64, 56, train=True)
    assert on and note.startswith("cache_images auto: on (1,000 images at 64 px take 19 MiB")
    n = AUTO_CACHE_BYTES // (224 * 224 * 3 + 56 * 56) + 1
    off, note = cache_decision("auto", n, 224, 56, train=False)
    assert not off and "over the 500 MiB limit" in note and "train.num_workers" in note
    assert cache_decision("true", 10**6, 224, 56, train=True)[0] and not cache_decision("false", 1, 8, 56, train=True)[0]
