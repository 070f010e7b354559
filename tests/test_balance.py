"""`train.balance`: inverse-frequency CE weights, the seeded class-balanced sampler (deterministic, DDP shards), and a
tiny real training with each mode; `synthetic.class_weights`: imbalanced demo labels, the balanced default unchanged."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from fer_pipeline.core.labels import LABELS, NUM_CLASSES
from fer_pipeline.data.datasets import parse_class_weights, prepare_synthetic, synthetic_labels
from fer_pipeline.data.manifest import stratified_split, write_manifest
from fer_pipeline.models import load_model
from fer_pipeline.models.base import ModelOutput
from fer_pipeline.models.loss import guided_loss
from fer_pipeline.train import TrainConfig, train_model
from fer_pipeline.train.balance import (
    BalancedSampler,
    balanced_draw,
    ce_weights,
    class_counts,
    inverse_frequency_weights,
    row_probabilities,
    shard,
)
from fer_pipeline.train.distributed import DistInfo
from fer_pipeline.validate import ParamsError, check_synthetic
from tests.faces import write_faces

DISGUST = LABELS.index("disgust")


def imbalanced(n_major: int = 40, n_rare: int = 4) -> np.ndarray:
    """Labels with six classes of `n_major` rows and disgust at `n_rare`, interleaved."""
    counts = np.full(NUM_CLASSES, n_major)
    counts[DISGUST] = n_rare
    return np.random.default_rng(1).permutation(np.repeat(np.arange(NUM_CLASSES), counts))


# --- weights ------------------------------------------------------------------------------------------------------


def test_inverse_frequency_weights_values() -> None:
    """w_k = N / (K n_k): 244 rows, 7 classes -> 244/(7*40) for the big classes, 244/(7*4) for disgust; mean 1 per row."""
    y = imbalanced()
    w = inverse_frequency_weights(y)
    assert w[DISGUST] == pytest.approx(244 / 28) and w[0] == pytest.approx(244 / 280)
    assert w[DISGUST] / w[0] == pytest.approx(10.0)
    assert w[y].mean() == pytest.approx(1.0)  # the weighted loss keeps the scale of the plain one
    absent = np.array([0, 0, 0, 1])  # classes with no train row get 0 (never a target); K counts present classes only
    assert inverse_frequency_weights(absent).tolist() == [pytest.approx(4 / 6), pytest.approx(2.0), 0, 0, 0, 0, 0]
    with pytest.raises(ValueError, match="no rows"):
        inverse_frequency_weights(np.zeros(0, np.int64))


def test_weighted_ce_is_the_weighted_mean() -> None:
    """guided_loss passes the weights to CE: sum_i w[y_i] CE_i / sum_i w[y_i]; None keeps the plain mean."""
    logits = torch.randn(6, NUM_CLASSES, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 0, 0, 0, DISGUST, 1])
    w = ce_weights("weights", imbalanced().astype(np.int64), torch.device("cpu"))
    assert ce_weights("none", imbalanced(), torch.device("cpu")) is None
    out = ModelOutput(logits=logits, cams=torch.zeros(6, NUM_CLASSES, 2, 2), features={})
    per = F.cross_entropy(logits, y, reduction="none")
    expect = float((w[y] * per).sum() / w[y].sum())
    total, ce, _ = guided_loss(out, y, torch.zeros(6, 4, 4), torch.zeros(6, dtype=torch.bool), 0.0, (), class_weight=w)
    assert float(ce) == pytest.approx(expect) and float(total) == float(ce)
    assert float(guided_loss(out, y, torch.zeros(6, 4, 4), torch.zeros(6, dtype=torch.bool), 0.0, ())[1]) == pytest.approx(
        float(per.mean())
    )


# --- sampler ------------------------------------------------------------------------------------------------------


def test_sampler_is_a_pure_function_of_seed_and_epoch() -> None:
    y = imbalanced()
    a, b = BalancedSampler(y, seed=5), BalancedSampler(y, seed=5)
    a.set_epoch(2)
    b.set_epoch(2)
    first = list(a)
    assert first == list(b) == list(a) and len(first) == len(y) == len(a)  # same epoch length as the plain sampler
    assert {e for e, _ in first} == {2}  # the epoch travels with the index (augmentation draw per epoch)
    b.set_epoch(3)
    assert [i for _, i in b] != [i for _, i in first], "a new epoch must draw anew"
    c = BalancedSampler(y, seed=6)
    c.set_epoch(2)
    assert [i for _, i in c] != [i for _, i in first], "another seed must draw differently"
    assert np.array_equal(balanced_draw(y, seed=5, epoch=2), [i for _, i in first])


def test_sampler_lifts_the_rare_class_to_an_equal_share() -> None:
    """Disgust is 4 of 244 rows (1.6 %); drawn by inverse frequency it is about 1/7 of each epoch."""
    y = imbalanced()
    p = row_probabilities(y)
    assert p.sum() == pytest.approx(1.0) and p[y == DISGUST].sum() == pytest.approx(1 / 7)
    draws = np.concatenate([balanced_draw(y, seed=0, epoch=e) for e in range(1, 21)])  # 20 epochs, 4,880 draws
    share = class_counts(y[draws]) / len(draws)
    assert class_counts(y)[DISGUST] / len(y) < 0.02
    assert share[DISGUST] == pytest.approx(1 / 7, abs=0.02) and np.abs(share - 1 / 7).max() < 0.03
    assert len(np.unique(draws[y[draws] == DISGUST])) == 4  # every rare row is used, with replacement


def test_sampler_shards_are_disjoint_parts_of_one_global_draw() -> None:
    """Two ranks take disjoint positions of the same draw; their per-rank batches of B/2 together are one process's B."""
    y = imbalanced()[:243]  # odd length: the tail draw is dropped so that the ranks split evenly
    one = BalancedSampler(y, seed=3)
    ranks = [BalancedSampler(y, seed=3, info=DistInfo(rank=r, world=2)) for r in range(2)]
    for s in (one, *ranks):
        s.set_epoch(4)
    glob = [i for _, i in one]
    shards = [[i for _, i in s] for s in ranks]
    assert len(shards[0]) == len(shards[1]) == len(ranks[0]) == 121
    assert shards[0] == glob[0:242:2] and shards[1] == glob[1:242:2]  # positions r, r+2, ...: disjoint, covering
    positions = [set(range(r, 242, 2)) for r in range(2)]
    assert not positions[0] & positions[1] and positions[0] | positions[1] == set(range(242))
    for b in range(121 // 4):  # global batch 8 = 2 ranks x 4
        together = shards[0][4 * b : 4 * b + 4] + shards[1][4 * b : 4 * b + 4]
        assert sorted(together) == sorted(glob[8 * b : 8 * b + 8])
    assert shard(np.arange(10), DistInfo(rank=1, world=3)).tolist() == [1, 4, 7]


def test_balance_key_is_validated() -> None:
    assert TrainConfig.from_params({"balance": "Sampler"}).balance == "sampler"
    assert TrainConfig().balance == "none"
    with pytest.raises(ValueError, match="train.balance='oversample' unknown; valid: none, weights, sampler"):
        TrainConfig.from_params({"balance": "oversample"})


# --- a tiny real training per mode ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """63 faces at 32 px, disgust rare (2 train rows against 7 of each other class)."""
    root = tmp_path_factory.mktemp("tiny")
    labels = synthetic_labels(63, 0, parse_class_weights({"disgust": 0.35}))
    split = stratified_split(labels, val_fraction=0.15, test_fraction=0.2, seed=0)
    return root, write_faces(root, labels, split, size=32, prefix="b")[0]


TINY = {"backbone": "resnet10t", "output_stride": 8, "input_size": 32, "epochs": 1, "batch_size": 8, "device": "cpu"}


def _train(mode: str, root: Path, manifest: pd.DataFrame, out: Path) -> tuple[torch.nn.Module, dict]:
    """1 guided epoch with `train.balance: mode`; the saved model and its recorded config."""
    summary = train_model(
        TrainConfig.from_params({**TINY, "balance": mode}), lam=4.0, manifest=manifest, image_root=root,
        aumap_path=root / "aumaps.h5", model_out=out / "model.pt", live_dir=out / "live",
    )
    assert summary["finished"] and math.isfinite(summary["best_val_acc"])
    return load_model(out / "model.pt")


@pytest.fixture(scope="module")
def plain(tiny: tuple[Path, pd.DataFrame], tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, dict]:
    """The same tiny training without balance."""
    out = tmp_path_factory.mktemp("plain")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(out)  # DVCLive looks for a repo from the cwd: keep it out of ours
        return _train("none", *tiny, out)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["weights", "sampler"])
def test_tiny_training_with_balance(mode: str, tiny, plain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """1 epoch, resnet10t at 32 px, guided: the mode is recorded in model.pt, logged, and changes the weights."""
    monkeypatch.chdir(tmp_path)
    model, config = _train(mode, *tiny, tmp_path)
    assert "balance" not in plain[1]  # none records nothing new: the demo's model.pt keeps its bytes
    assert config["balance"] == mode and f"balance: {mode}" in (tmp_path / "live" / "params.yaml").read_text()
    pairs = zip(plain[0].state_dict().values(), model.state_dict().values(), strict=True)
    assert any(not torch.equal(a, b) for a, b in pairs), f"balance={mode} trained the same weights as none"


# --- synthetic.class_weights ----------------------------------------------------------------------------------------

#: sha256 of every file `prepare_synthetic` wrote for `_synth()` (28 faces, 32 px, seed 3) before `class_weights`
#: existed. If the generator's bytes change on purpose, recompute it with `_prepared_digest(tmp, {})`.
BALANCED_DIGEST = "07b167d544f0a6e2d39baecd6b311ff528bcd5568c8f8cac0f41c27c281c1500"


def _prepared_digest(out: Path, extra: dict) -> str:
    data = {"dataset": "synthetic", "seed": 0, "val_fraction": 0.15, "test_fraction": 0.2}
    synth = {"n": 28, "size": 32, "seed": 3, "intensity": [0.8, 1.6], "face_scale": [0.78, 0.88], "roll": 4.0, "shift": 0.3}
    out.mkdir(parents=True)
    write_manifest(out / "manifest.csv", prepare_synthetic(data, {**synth, **extra}, out))
    h = hashlib.sha256()
    for p in sorted(out.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(out)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize(
    "extra", [{}, {"class_weights": "balanced"}, {"class_weights": [2] * 7}], ids=["absent", "word", "equal"]
)
def test_balanced_default_keeps_the_generator_bytes(extra: dict, tmp_path: Path) -> None:
    assert _prepared_digest(tmp_path / "d", extra) == BALANCED_DIGEST
    assert synthetic_labels(28, 3).tolist() == np.random.default_rng(3).permutation(np.arange(28) % NUM_CLASSES).tolist()


def test_prepare_writes_an_imbalanced_demo(tmp_path: Path) -> None:
    """prepare with `class_weights: {disgust: 0.35}`: 3 disgust faces of 63 (1 test, 2 train: val rounds to 0)."""
    data = {"dataset": "synthetic", "seed": 0, "val_fraction": 0.15, "test_fraction": 0.2}
    synth = {"n": 63, "size": 32, "seed": 0, "class_weights": {"disgust": 0.35}}
    df = prepare_synthetic(data, synth, tmp_path)
    assert class_counts(df["label"]).tolist() == [10, 10, 10, 10, 10, 3, 10]
    assert sorted(df.loc[df["label"] == DISGUST, "split"]) == ["test", "train", "train"]
    assert len(list((tmp_path / "images").glob("*.png"))) == 63


def test_class_weights_make_the_demo_imbalanced() -> None:
    w = parse_class_weights({"disgust": 0.1})
    assert w == (1, 1, 1, 1, 1, 0.1, 1) and parse_class_weights("[1, 1, 1, 1, 1, 0.1, 1]") == w  # a `-S` string
    assert parse_class_weights("{disgust: 0.1}") == w
    counts = class_counts(synthetic_labels(2000, 0, w))
    assert counts.sum() == 2000 and counts[DISGUST] == 32 and set(np.delete(counts, DISGUST)) == {328}
    assert not np.array_equal(synthetic_labels(2000, 0, w), synthetic_labels(2000, 1, w))
    for bad, needle in (({"contempt": 1}, "unknown class"), ([1, 2], "list of 7"), ([1] * 6 + [0], "> 0")):
        with pytest.raises(ValueError, match=needle):
            parse_class_weights(bad)
    with pytest.raises(ValueError, match="raise synthetic.n"):
        synthetic_labels(30, 0, w)
    params = {"synthetic": {"n": 30, "size": 32, "seed": 0, "intensity": [0.5, 1], "shortcut_p_train": 0.9,
                            "shortcut_p_test": 0.5, "au_presence": 1.0, "class_weights": {"disgust": 0.1}}}
    with pytest.raises(ParamsError, match="disgust 0 of n=30"):
        check_synthetic(params)
