"""The cv2 joint augmentation (one affine per array, per-(seed, epoch, index) draws, the fill of `align.border` with 0 in
the map) and the streamed AU map store."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from fer_pipeline.align.warp import augment_border
from fer_pipeline.aumaps.build import build_aumap_store, build_aumaps
from fer_pipeline.aumaps.store import read_aumap_store, stream_aumap_store, write_aumap_store
from fer_pipeline.inputs import normalizer, to_tensor_planes, with_map
from fer_pipeline.inputs.dataset import FERDataset
from fer_pipeline.landmarks.store import LandmarkTable
from fer_pipeline.train import TrainConfig, loop
from fer_pipeline.train.augment import Augmentation, Draw, affine, colour_jitter, draw, geometry, sample_rng, warp
from fer_pipeline.train.distributed import EpochSampler

NO_JITTER = (("brightness", 1.0), ("contrast", 1.0), ("saturation", 1.0))
PLAIN = Draw(box=(0.0, 0.0, 1.0, 1.0), angle=0.0, flip=False, jitter=NO_JITTER)


def test_plain_draw_is_the_identity() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    assert np.allclose(affine(PLAIN, (40, 40), 40), [[1, 0, 0], [0, 1, 0]], atol=1e-12)
    assert np.array_equal(geometry(rgb, PLAIN, 40), rgb)
    norm = normalizer((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    planes = list(cv2.split(rgb))
    assert np.allclose(to_tensor_planes(planes, norm, colour_jitter(PLAIN)) * 255, rgb.transpose(2, 0, 1), atol=1e-3)


def test_image_and_lower_resolution_map_get_the_same_geometry() -> None:
    """A point of the face lands on the same output pixel whether it is warped from the 112 px image or the 56 px map."""
    for i in range(20):
        d = draw(sample_rng(1, 2, i))
        u = np.array([0.3 + 0.02 * i, 0.6])  # a point in unit coordinates of the source frame
        out = [affine(d, (n, n), 64) @ np.r_[u * n - 0.5, 1.0] for n in (112, 56)]
        assert np.allclose(out[0], out[1], atol=1e-9)


def test_warped_map_follows_the_image() -> None:
    """A bright square and its map riding as a 4th channel: after any draw, bright pixels and map region coincide."""
    rgb = np.full((96, 96, 3), 20, np.uint8)
    rgb[30:60, 40:70] = 230
    au = np.zeros((56, 56), np.uint8)
    au[round(30 * 56 / 96) : round(60 * 56 / 96), round(40 * 56 / 96) : round(70 * 56 / 96)] = 255
    rgba = with_map(rgb, au)
    assert rgba.shape == (96, 96, 4) and np.array_equal(rgba[:, :, :3], rgb)
    for i in range(16):
        d = draw(sample_rng(0, 0, i))
        out = geometry(rgba, d, 64)
        assert out.dtype == np.uint8 and out.shape == (64, 64, 4)
        assert not np.array_equal(affine(d, (96, 96), 64), affine(PLAIN, (96, 96), 64))
        grey = out[:, :, :3].mean(axis=2)
        bright, region = grey > (grey.min() + grey.max()) / 2, out[:, :, 3] > 127
        assert (bright & region).sum() / (bright | region).sum() > 0.7


def test_draws_depend_on_seed_epoch_and_index_only() -> None:
    assert draw(sample_rng(0, 1, 5)) == draw(sample_rng(0, 1, 5))
    assert draw(sample_rng(0, 1, 5)) != draw(sample_rng(0, 2, 5)) != draw(sample_rng(1, 1, 5))
    angles = np.array([draw(sample_rng(0, 0, i)).angle for i in range(300)])
    flips = np.array([draw(sample_rng(0, 0, i)).flip for i in range(300)])
    assert np.abs(angles).max() <= 10.0 and 0.35 < flips.mean() < 0.65
    for d in (draw(sample_rng(0, 0, i)) for i in range(50)):
        x0, y0, w, h = d.box
        assert x0 >= 0 and y0 >= 0 and x0 + w <= 1 + 1e-12 and y0 + h <= 1 + 1e-12 and 0.7 < w * h <= 1.0
        assert sorted(name for name, _ in d.jitter) == ["brightness", "contrast", "saturation"]


def test_jitter_matches_torchvision() -> None:
    """Each factor alone gives torchvision's ColorJitter result within 1.5 grey levels (torchvision truncates to uint8
    after the blend and takes the mean of a truncated grey; we stay in float)."""
    rgb = np.random.default_rng(3).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    t = torch.from_numpy(rgb).permute(2, 0, 1)
    refs = {"brightness": v2.functional.adjust_brightness, "contrast": v2.functional.adjust_contrast,
            "saturation": v2.functional.adjust_saturation}
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    norm = normalizer(mean, std)
    for name, fn in refs.items():
        for f in (0.7, 1.3):
            d = Draw(PLAIN.box, 0.0, False, ((name, f),))
            ref = v2.Normalize(list(mean), list(std))(v2.ToDtype(torch.float32, scale=True)(fn(t, f)))
            got = torch.from_numpy(to_tensor_planes(list(cv2.split(rgb)), norm, colour_jitter(d)))
            assert float(((got - ref) * torch.tensor(std)[:, None, None] * 255).abs().max()) <= 1.5, (name, f)
    ref = v2.Normalize(list(mean), list(std))(v2.ToDtype(torch.float32, scale=True)(t))  # no draw: normalise only
    assert torch.allclose(torch.from_numpy(to_tensor_planes(list(cv2.split(rgb)), norm)), ref, atol=1e-5)
    assert warp(rgb, affine(PLAIN, (32, 32), 16), 16).shape == (16, 16, 3)


def small_set(root: Path, n: int = 12, size: int = 32) -> pd.DataFrame:
    """n random images with random maps (enough to exercise the loader)."""
    (root / "img").mkdir(parents=True)
    rng = np.random.default_rng(0)
    ids = [f"a{i}" for i in range(n)]
    for sid in ids:
        cv2.imwrite(str(root / "img" / f"{sid}.png"), rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    write_aumap_store(root / "m.h5", ids, rng.integers(0, 256, (n, 56, 56), dtype=np.uint8), np.ones(n, bool), {"size": 56})
    return pd.DataFrame({"sample_id": ids, "path": [f"img/{s}.png" for s in ids], "label": 1, "split": "train"})


def test_batches_do_not_depend_on_workers(tmp_path: Path) -> None:
    """The same (seed, epoch) gives the same augmented batches with 0 or 2 DataLoader workers; a new epoch differs."""
    ds = FERDataset(small_set(tmp_path), tmp_path, tmp_path / "m.h5", 32, augment=Augmentation(7))

    def epoch(workers: int, e: int) -> list[torch.Tensor]:
        sampler = EpochSampler(ds, seed=7)
        sampler.set_epoch(e)
        return [b[0] for b in DataLoader(ds, batch_size=4, sampler=sampler, num_workers=workers)]

    a, b, c = epoch(0, 1), epoch(2, 1), epoch(0, 2)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))
    image, au, *_ = ds[(1, 3)]
    assert torch.equal(image, ds[(1, 3)][0]) and not torch.equal(image, ds[(2, 3)][0]) and au.shape == (32, 32)


def test_streamed_store_equals_the_one_shot_store(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    ids = [f"r{i}" for i in range(21)]
    maps, has = rng.integers(0, 256, (21, 16, 16), dtype=np.uint8), rng.random(21) > 0.3
    write_aumap_store(tmp_path / "one.h5", ids, maps, has, {"size": 16})
    with stream_aumap_store(tmp_path / "blocks.h5", ids, 16, {"size": 16}) as put:
        for s in range(0, 21, 5):
            put(s, maps[s : s + 5], has[s : s + 5])
        with pytest.raises(ValueError, match="outside the store"):
            put(20, maps[:5], has[:5])
    one, blocks = read_aumap_store(tmp_path / "one.h5"), read_aumap_store(tmp_path / "blocks.h5")
    assert np.array_equal(one.maps, blocks.maps) and np.array_equal(one.has_map, blocks.has_map) and one.attrs == blocks.attrs
    with stream_aumap_store(tmp_path / "gaps.h5", ids, 16, {}) as put:
        put(4, maps[4:6], has[4:6])
    gaps = read_aumap_store(tmp_path / "gaps.h5")
    assert not gaps.maps[:4].any() and np.array_equal(gaps.maps[4:6], maps[4:6]) and gaps.has_map.sum() == has[4:6].sum()
    with pytest.raises(RuntimeError), stream_aumap_store(tmp_path / "failed.h5", ids, 16, {}) as put:
        raise RuntimeError("a failed render")
    assert not (tmp_path / "failed.h5").exists()  # atomic: nothing under the real name


def test_build_aumap_store_streams_what_build_aumaps_returns(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    n = 40
    base = np.array([[30 + 40 * (i % 9) / 8, 40 + 40 * (i // 9) / 7] for i in range(68)], np.float32)
    pts = base[None] + rng.normal(0, 0.5, (n, 68, 2)).astype(np.float32)
    table = LandmarkTable([f"s{i}" for i in range(n)], pts, np.tile([112, 112], (n, 1)), np.zeros(n, np.uint8))
    labels = np.arange(n) % 7
    maps, has = build_aumaps(table.sample_id, labels, table, chunk_size=16, progress=False)
    got = build_aumap_store(tmp_path / "s.h5", table.sample_id, labels, table, {"size": 56}, chunk_size=16, progress=False)
    stored = read_aumap_store(tmp_path / "s.h5")
    assert np.array_equal(got, has) and np.array_equal(stored.maps, maps) and np.array_equal(stored.has_map, has)
    assert has.sum() > 0


def test_border_fills_the_image_as_align_border_says_and_the_map_with_zero() -> None:
    """Outside the crop / rotation the image takes `align.border` (constant: black; replicate, reflect: no black edge);
    the AU map gets 0 whatever the border: it has no AU there."""
    rgb = np.full((64, 64, 3), 200, np.uint8)
    rgb[:, :32] = 120  # left half darker: reflect and replicate differ from a constant grey only by where they copy
    rgba = with_map(rgb, np.full((32, 32), 255, np.uint8))
    d = Draw(box=(0.0, 0.0, 1.0, 1.0), angle=10.0, flip=False, jitter=NO_JITTER)  # the rotation uncovers the corners
    out = {b: geometry(rgba, d, 64, b) for b in ("constant", "replicate", "reflect")}
    corner = (slice(0, 3), slice(0, 3))
    assert out["constant"][corner].max() == 0
    inside = out["constant"][:, :, 3] == 255  # pixels wholly inside the source frame
    for b in ("replicate", "reflect"):
        assert out[b][corner][..., :3].min() >= 120  # the image's own values, no black edge
        assert np.array_equal(out[b][..., 3], out["constant"][..., 3])  # the map: 0 outside, as with constant
        assert np.array_equal(out[b][inside], out["constant"][inside])  # inside the frame nothing changes
    assert out["replicate"][corner][..., 3].max() == 0 and inside.mean() > 0.7
    assert Augmentation(0, "reflect").geometry(rgba, d, 64).tobytes() == out["reflect"].tobytes()
    assert np.array_equal(Augmentation(0).geometry(rgba, d, 64), out["constant"])  # the default: the legacy black
    with pytest.raises(ValueError, match="align.border='wrap' unknown"):
        Augmentation(0, "wrap")


def test_align_border_reaches_the_training_augmentation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pipeline/train.py reads align.border (in every align.mode) and train_model hands it to the Augmentation."""
    assert augment_border({"mode": "none", "border": "reflect"}) == "reflect"
    assert augment_border({"mode": "similarity"}) == "constant"  # params written before align.border existed
    with pytest.raises(ValueError, match="align.border='black' unknown"):
        augment_border({"border": "black"})
    made: list[Augmentation] = []

    def record(*args: object) -> Augmentation:
        made.append(Augmentation(*args))  # type: ignore[arg-type]
        raise InterruptedError("stop before training")

    monkeypatch.setattr(loop, "Augmentation", record)
    cfg = TrainConfig.from_params({"backbone": "resnet18", "input_size": 32, "epochs": 1, "batch_size": 4, "device": "cpu",
                                   "pretrained": "none", "threads": 1})
    with pytest.raises(InterruptedError):
        loop.train_model(cfg, lam=1.0, manifest=small_set(tmp_path), image_root=tmp_path, aumap_path=tmp_path / "m.h5",
                         model_out=tmp_path / "model.pt", live_dir=None, augment_border="replicate")
    assert made and made[0].border == "replicate"
