"""Training and evaluation: config casting, joint image/map augmentation, a real 2-epoch run + evaluation, exact resume."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from fer_pipeline.aumaps.store import write_aumap_store
from fer_pipeline.core.labels import AU_CLASSES, LABELS, NEUTRAL, NUM_CLASSES
from fer_pipeline.data.manifest import stratified_split
from fer_pipeline.evaluate.run import au_macro_cos, evaluate_model, write_outputs
from fer_pipeline.inputs.dataset import FERDataset
from fer_pipeline.models import load_model
from fer_pipeline.train import TrainConfig, train_model
from fer_pipeline.train.augment import Augmentation
from tests.faces import write_faces

torch.set_num_threads(2)


def make_dataset(root: Path, n: int, size: int, *, shortcut: bool = False) -> pd.DataFrame:
    """Synthetic faces (PNG), their real AU maps (HDF5 store) and a manifest with train/val/test and cue columns."""
    labels = np.random.default_rng(0).permutation(np.arange(n) % NUM_CLASSES)
    split = stratified_split(labels, val_fraction=0.15, test_fraction=0.2, seed=0)
    return write_faces(root, labels, split, size=size, prefix="s", shortcut=shortcut)[0]


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """~280 synthetic 64 px faces with a shortcut mark (so the cue metrics have all three groups)."""
    root = tmp_path_factory.mktemp("synth")
    return root, make_dataset(root, 280, 64, shortcut=True)


def small_cfg(**kw: object) -> TrainConfig:
    """A fast CPU config: resnet18, stride 16, no pretrained weights."""
    base = {
        "backbone": "resnet18",
        "output_stride": 16,
        "input_size": 64,
        "epochs": 2,
        "batch_size": 32,
        "lr": 0.02,
        "device": "cpu",
        "seed": 0,
    }
    return TrainConfig.from_params({**base, **kw})


# --- config ---------------------------------------------------------------------------------------------------


def test_config_casts_cli_strings() -> None:
    cfg = TrainConfig.from_params(
        {
            "lambda": "4",
            "layers": "5,4",
            "epochs": "3",
            "lr": 1,
            "resume": "false",
            "output_stride": "16",
            "compile": "no",
            "cache_images": False,
        }
    )
    assert cfg.lam == 4.0 and isinstance(cfg.lam, float)
    assert cfg.layers == (5, 4)
    assert cfg.epochs == 3 and isinstance(cfg.epochs, int)
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert cfg.resume is False and cfg.compile is False and cfg.cache_images == "false"
    assert TrainConfig.from_params({"layers": 5}).layers == (5,)
    assert TrainConfig.from_params({"layers": [3, "5"]}).layers == (3, 5)
    assert TrainConfig.from_params({"layers": "[5, 4]"}).layers == (5, 4)
    assert TrainConfig.from_params({"epochs": "4.0"}).epochs == 4
    assert cfg.to_dict()["lambda"] == 4.0 and cfg.to_dict()["layers"] == [5, 4]


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"lambda": -1}, "lambda"),
        ({"lambda": "abc"}, "not a number"),
        ({"layers": 7}, "valid: 1, 2, 3, 4, 5"),
        ({"layers": "5,0"}, "valid: 1, 2, 3, 4, 5"),
        ({"align_loss": "dice"}, "valid: cos, l1, l2, kl"),
        ({"device": "tpu"}, "valid: auto, cpu, cuda"),
        ({"amp": "fp8"}, "valid: auto, off, bf16, fp16"),
        ({"epochs": 2.5}, "whole number"),
        ({"resume": "maybe"}, "valid: true, false"),
        ({"lamda": 4}, "valid: "),
    ],
)
def test_config_rejects_bad_values(params: dict[str, object], needle: str) -> None:
    with pytest.raises(ValueError, match=needle.replace("[", r"\[")):
        TrainConfig.from_params(params)


# --- dataset ----------------------------------------------------------------------------------------------------


def test_joint_augmentation_keeps_the_map_on_the_image(tmp_path: Path) -> None:
    """A bright square whose AU map is the same square: after train-mode augmentation both still coincide."""
    size, n = 96, 12
    rng = np.random.default_rng(1)
    ids, maps = [f"q{i}" for i in range(n)], np.zeros((n, 56, 56), np.uint8)
    (tmp_path / "img").mkdir()
    for i in range(n):
        y0, x0 = (int(v) for v in rng.integers(12, 52, 2))
        img = np.full((size, size, 3), 30, np.uint8)
        img[y0 : y0 + 30, x0 : x0 + 30] = 220
        cv2.imwrite(str(tmp_path / "img" / f"{ids[i]}.png"), img)
        s = 56 / size  # the map covers the whole image
        maps[i, round(y0 * s) : round((y0 + 30) * s), round(x0 * s) : round((x0 + 30) * s)] = 255
    write_aumap_store(tmp_path / "m.h5", ids, maps, np.ones(n, bool), {"size": 56})
    rows = pd.DataFrame({"sample_id": ids, "path": [f"img/{s}.png" for s in ids], "label": 1, "split": "train"})
    ds = FERDataset(rows, tmp_path, tmp_path / "m.h5", 64, augment=Augmentation())
    torch.manual_seed(0)
    ious, moved = [], 0
    for i in range(n):
        image, au, has_map, label, row = ds[i]
        assert image.shape == (3, 64, 64) and au.shape == (64, 64) and image.dtype == au.dtype == torch.float32
        assert has_map is True and label == 1 and row == i
        assert float(au.min()) >= 0.0 and float(au.max()) <= 1.0 and float(au.max()) > 0.9  # no colour jitter on the map
        gray = image.mean(0)
        bright = gray > (gray.min() + gray.max()) / 2
        region = au > 0.5
        ious.append(float((bright & region).sum() / (bright | region).sum()))
        plain = torch.nn.functional.interpolate(torch.from_numpy(maps[i] / 255.0)[None, None].float(), size=(64, 64))[0, 0]
        moved += int(((plain > 0.5) != region).float().mean() > 0.02)
    assert min(ious) > 0.7, ious
    assert moved >= n // 2, "train-mode augmentation should move most squares"
    # eval mode: resize only, map returned at its stored size, untouched
    ev = FERDataset(rows, tmp_path, tmp_path / "m.h5", 64, cache_images="false")
    image, au, *_ = ev[3]
    assert ev.cache is None and ds.cache is not None
    assert image.shape == (3, 64, 64) and au.shape == (56, 56)
    assert torch.equal(au, torch.from_numpy(maps[3] / np.float32(255.0)))


def test_dataset_rejects_a_stale_aumap_store(synth: tuple[Path, pd.DataFrame]) -> None:
    root, manifest = synth
    rows = manifest.head(3).assign(sample_id=["x", "y", "z"])
    with pytest.raises(ValueError, match="rerun `dvc repro aumaps`"):
        FERDataset(rows, root, root / "aumaps.h5", 64)


def test_neutral_rows_never_have_a_map(synth: tuple[Path, pd.DataFrame]) -> None:
    root, manifest = synth
    ds = FERDataset(manifest, root, root / "aumaps.h5", 64)
    assert not ds.has_map[ds.labels == NEUTRAL].any()
    assert ds.has_map[ds.labels != NEUTRAL].mean() > 0.9


# --- training + evaluation --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_train_then_evaluate(synth: tuple[Path, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """2 epochs with λ = 4 on real synthetic faces: model, DVCLive logs, then metrics and the confusion CSV."""
    root, manifest = synth
    monkeypatch.chdir(tmp_path)  # DVCLive looks for a repo from the cwd: keep it out of ours
    summary = train_model(
        small_cfg(),
        lam=4.0,
        manifest=manifest,
        image_root=root,
        aumap_path=root / "aumaps.h5",
        model_out=tmp_path / "model.pt",
        live_dir=tmp_path / "live",
        checkpoint_dir=tmp_path / "ckpt",
    )
    assert summary["finished"] and summary["epochs_run"] == 2 and summary["best_epoch"] in (1, 2)
    assert 0.0 <= summary["best_val_acc"] <= 100.0 and summary["steps_per_s"] > 0

    _, config = load_model(tmp_path / "model.pt")
    assert config["method"] == "cam" and config["backbone"] == "resnet18" and config["output_stride"] == 16
    assert config["input_size"] == 64 and config["layers"] == [5] and config["lambda"] == 4.0 and config["epochs"] == 2
    assert config["best_epoch"] == summary["best_epoch"] and config["num_classes"] == NUM_CLASSES

    live = tmp_path / "live"
    logged = json.loads((live / "metrics.json").read_text())
    for key in ("loss", "ce", "align"):
        rows = pd.read_csv(live / "plots" / "metrics" / "train" / f"{key}.tsv", sep="\t")
        assert len(rows) == 2 and np.isfinite(rows[key]).all()
    assert 0.0 <= logged["train"]["align"] <= 1.0  # 1 - cos of non-negative maps
    assert logged["best"]["epoch"] == summary["best_epoch"]
    assert math.isfinite(logged["val"]["att_cos"]) and (live / "params.yaml").exists()
    assert not list(tmp_path.rglob("dvc.yaml")), "DVCLive must never write dvc.yaml"
    assert (tmp_path / "ckpt" / "last.pt").exists()

    result = evaluate_model(
        tmp_path / "model.pt", manifest=manifest, image_root=root, aumap_path=root / "aumaps.h5", batch_size=40, device="cpu"
    )
    m = result.metrics
    test = manifest[manifest["split"] == "test"]
    assert m["n"] == len(test) and result.y.tolist() == test["label"].tolist() and result.sample_id == test["sample_id"].tolist()
    for key in ("cl", "macro_f1", "cam_cos", "att_cos", "cl_nocue", "cl_cue_agree", "cl_cue_conflict"):
        assert math.isfinite(m[key]), key
    assert m["n_nocue"] + m["n_cue_agree"] + m["n_cue_conflict"] == len(test) and min(m["n_cue_agree"], m["n_cue_conflict"]) > 0
    assert sorted(m["att_cos_layers"]) == ["1", "2", "3", "4", "5"] and m["att_cos_layers"]["5"] == m["att_cos"]
    assert all(-1.0 <= v <= 1.0 for v in m["att_cos_layers"].values())
    assert m["cl"] == pytest.approx(100.0 * np.mean(result.y == result.pred))
    assert result.confusion.shape == (NUM_CLASSES, NUM_CLASSES) and result.confusion.sum() == len(test)
    assert np.trace(result.confusion) == (result.y == result.pred).sum()
    assert set(m["per_class"]) == set(LABELS)
    assert math.isnan(m["per_class"]["neutral"]["cam_cos"]) and m["per_class"]["neutral"]["n"] > 0
    for k in AU_CLASSES:
        pc = m["per_class"][LABELS[k]]
        assert all(math.isfinite(pc[key]) for key in ("acc", "cam_cos", "att_cos")), LABELS[k]
    # per-sample cosines: NaN exactly where there is no map (neutral), in [-1, 1] elsewhere
    has = np.isfinite(result.cam_cos)
    assert not has[result.y == NEUTRAL].any() and has[result.y != NEUTRAL].mean() > 0.9
    assert np.array_equal(has, np.isfinite(result.att_cos))
    assert np.nanmean(result.att_cos[result.y == 1]) == pytest.approx(m["per_class"]["happiness"]["att_cos"])

    write_outputs(result, tmp_path / "m" / "metrics.json", tmp_path / "plots")
    saved = json.loads((tmp_path / "plots" / "details.json").read_text())  # every metric; metrics.json: the headline
    assert saved["per_class"]["neutral"]["cam_cos"] is None and saved["cl"] == pytest.approx(m["cl"], abs=1e-5)
    head = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert head["cl"] == pytest.approx(m["cl"], abs=0.01) and head["att"]["cos"] == pytest.approx(m["att_cos"], abs=1e-4)
    # The min-max ATT-COS is a labelled secondary figure; the per-image scores the bootstrap resamples are the headline's.
    assert math.isfinite(saved["att_cos_minmax"]) and saved["att_cos_minmax"] != saved["att_cos"]
    assert all(math.isfinite(saved["per_class"][LABELS[k]]["att_cos_minmax"]) for k in AU_CLASSES)
    scores = pd.read_csv(tmp_path / "plots" / "scores.csv")
    assert au_macro_cos(scores["att_cos"].to_numpy(), scores["label"].to_numpy(), scores["att_cos"].notna().to_numpy()) \
        == pytest.approx(m["att_cos"], abs=1e-5)
    cm = pd.read_csv(tmp_path / "plots" / "confusion.csv")
    assert list(cm.columns) == ["actual", "predicted"] and len(cm) == len(test)
    assert cm["actual"].tolist() == [LABELS[k] for k in result.y]
    # deterministic: a second evaluation writes the same bytes
    first = [(tmp_path / f).read_bytes() for f in ("m/metrics.json", "plots/details.json")]
    again = evaluate_model(tmp_path / "model.pt", manifest=manifest, image_root=root, aumap_path=root / "aumaps.h5", device="cpu")
    write_outputs(again, tmp_path / "m" / "metrics.json", tmp_path / "plots")
    assert [(tmp_path / f).read_bytes() for f in ("m/metrics.json", "plots/details.json")] == first


@pytest.mark.slow
def test_resume_gives_the_same_weights(synth: tuple[Path, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """1 epoch, stop, resume to 2 == 2 epochs straight (CPU, fixed seed); image caching must not change anything."""
    root, manifest = synth
    monkeypatch.chdir(tmp_path)
    small = manifest[manifest["split"].isin(["train", "val"])].groupby("split").head(48)
    common = {"lam": 2.0, "manifest": small, "image_root": root, "aumap_path": root / "aumaps.h5"}
    cfg = small_cfg(input_size=32, batch_size=16, layers="5,4", cache_images="true")

    straight = train_model(
        cfg, model_out=tmp_path / "a.pt", live_dir=tmp_path / "live_a", checkpoint_dir=tmp_path / "ck_a", **common
    )

    cfg_b = small_cfg(input_size=32, batch_size=16, layers="5,4", cache_images="false")
    first = train_model(
        cfg_b,
        model_out=tmp_path / "b.pt",
        live_dir=tmp_path / "live_b",
        checkpoint_dir=tmp_path / "ck_b",
        stop_after_epoch=1,
        **common,
    )
    assert not first["finished"] and first["epochs_run"] == 1 and not (tmp_path / "b.pt").exists()
    resumed_cfg = small_cfg(input_size=32, batch_size=16, layers="5,4", cache_images="false", resume="true")
    second = train_model(
        resumed_cfg, model_out=tmp_path / "b.pt", live_dir=tmp_path / "live_b", checkpoint_dir=tmp_path / "ck_b", **common
    )
    assert second["finished"] and second["epochs_run"] == 1 and second["best_epoch"] == straight["best_epoch"]
    assert second["best_val_acc"] == straight["best_val_acc"]

    a, _ = load_model(tmp_path / "a.pt")
    b, _ = load_model(tmp_path / "b.pt")
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa), "resumed weights differ from the uninterrupted run"
    loss = pd.read_csv(tmp_path / "live_b" / "plots" / "metrics" / "train" / "loss.tsv", sep="\t")
    ref = pd.read_csv(tmp_path / "live_a" / "plots" / "metrics" / "train" / "loss.tsv", sep="\t")
    assert loss["step"].tolist() == [0, 1] and np.allclose(loss["loss"], ref["loss"])

    # a changed λ must not resume from a checkpoint made with another one
    other = train_model(
        resumed_cfg,
        model_out=tmp_path / "c.pt",
        live_dir=tmp_path / "live_c",
        checkpoint_dir=tmp_path / "ck_b",
        stop_after_epoch=1,
        **{**common, "lam": 0.0},
    )
    assert other["epochs_run"] == 1


@pytest.mark.slow
def test_baseline_depends_on_no_alignment_param(synth: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    """λ = 0 (the train-baseline stage): the same model.pt bytes whatever train.layers / align_loss say and whether an
    AU-map store is given, and nothing of the alignment in its logs (DVC may then leave it out of a λ/layer sweep)."""
    root, manifest = synth
    small = manifest[manifest["split"].isin(["train", "val"])].groupby("split").head(32)
    outs = []
    for i, (layers, loss, maps) in enumerate((("5", "cos", root / "aumaps.h5"), ("4,3", "l1", None))):
        cfg = small_cfg(input_size=32, batch_size=16, epochs=1, layers=layers, align_loss=loss)
        train_model(cfg, lam=0.0, manifest=small, image_root=root, aumap_path=maps, model_out=tmp_path / f"{i}.pt",
                    live_dir=tmp_path / f"live{i}")
        outs.append((tmp_path / f"{i}.pt").read_bytes())
        logged = {p.name for p in (tmp_path / f"live{i}" / "plots" / "metrics").rglob("*.tsv")}
        assert "acc.tsv" in logged and not logged & {"align.tsv", "att_cos.tsv"}, logged
        params = yaml.safe_load((tmp_path / f"live{i}" / "params.yaml").read_text())
        assert params["layers"] == "" and params["align_loss"] is None and params["lambda"] == 0
    assert outs[0] == outs[1]


def test_resume_fingerprint_covers_the_au_map_store(tmp_path: Path) -> None:
    """A guided run on other AU maps (e.g. after `aumaps.mode: active`) must not resume this run's checkpoint."""
    from fer_pipeline.core.io import file_sha256
    from fer_pipeline.train.checkpoint import fingerprint

    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    a.write_bytes(b"codebook maps")
    b.write_bytes(b"active maps")
    cfg, ids = {"lambda": 4.0, "seed": 0, "num_workers": 2}, ["s1", "s2"]
    assert fingerprint(cfg, ids, file_sha256(a)) != fingerprint(cfg, ids, file_sha256(b))
    assert fingerprint(cfg, ids, file_sha256(a)) == fingerprint({**cfg, "num_workers": 0}, ids, file_sha256(a))  # runtime knob
    assert fingerprint(cfg, ids) != fingerprint(cfg, ids, file_sha256(a))
