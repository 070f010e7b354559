"""The eleven methods of the paper's Table 1, parametrised over the registry: shapes, class CAMs, alignment, train/eval
behaviour, options and presets, and a 2-epoch synthetic run of each trained method through evaluation (the post-hoc
ones, as in the pipeline, read out the one CAM model)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import yaml

from fer_pipeline.core.labels import AU_CLASSES, LABELS, NUM_CLASSES
from fer_pipeline.core.presets import overlay_flags
from fer_pipeline.core.train_config import method_params
from fer_pipeline.data.manifest import stratified_split
from fer_pipeline.evaluate.run import evaluate_model
from fer_pipeline.models import FERModel, create_model, is_posthoc, list_methods, load_model, save_model
from fer_pipeline.models.acol import erase
from fer_pipeline.models.adl import ADL
from fer_pipeline.models.cutmix import cutmix
from fer_pipeline.models.loss import guided_loss
from fer_pipeline.models.maps import minmax, select_class
from fer_pipeline.models.prm import local_max_pool, peak_mask
from fer_pipeline.models.registry import _METHODS
from fer_pipeline.models.vit import block_forward, conv_stem
from fer_pipeline.models.wildcat import wildcat_pool
from fer_pipeline.report.tables import METRICS, TABLE_METRICS, build_table, method_notes, render_report
from fer_pipeline.train import TrainConfig, train_model
from tests.faces import face_tensors, write_faces

torch.set_num_threads(2)
ROOT = Path(__file__).resolve().parents[1]
PAPER = ("cam", "wildcat", "gradcam", "gradcampp", "acol", "prm", "adl", "cutmix", "layercam", "tscam", "apvit")
METHODS = list_methods()
#: CPU-sized stand-ins, written as params.yaml `methods:` entries (train keys such as backbone override train.*).
TINY: dict[str, dict[str, Any]] = {
    "acol": {"hidden": 64},
    "tscam": {"backbone": "deit_tiny_patch16_224", "patch_size": 8, "depth": 4},
    "apvit": {"embed_dim": 64, "depth": 4, "num_heads": 2},
}
TRAIN = {"backbone": "resnet10t", "output_stride": 16, "input_size": 48, "device": "cpu", "seed": 0}


def tiny(method: str, input_size: int = 48) -> FERModel:
    """The method at test size, built the way the train stage builds it (methods.<m> applied over train.*)."""
    train, options = method_params({**TRAIN, "input_size": input_size}, TINY, method)
    torch.manual_seed(0)
    return create_model(
        method, backbone=train["backbone"], output_stride=train["output_stride"], input_size=train["input_size"], **options
    )


def blobs(n: int, size: int, seed: int) -> torch.Tensor:
    """(n, size, size) maps in [0, 1], one Gaussian blob each at a seeded place (stand-in AU maps)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    c = torch.rand(n, 2, generator=g) * size * 0.6 + size * 0.2
    return torch.exp(-((yy[None] - c[:, 0, None, None]) ** 2 + (xx[None] - c[:, 1, None, None]) ** 2) / (2 * (size / 6) ** 2))


# --- registry, options, presets ----------------------------------------------------------------------------------


def test_registry_holds_the_papers_eleven_and_params_match_the_code() -> None:
    assert sorted(PAPER) == METHODS
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert sorted(params["methods"]) == METHODS and params["report"]["methods"] == ["cam"]
    train_keys = set(TrainConfig.from_params({}).to_dict())
    for method in METHODS:  # the published defaults live in the code and in params.yaml: they must agree
        options = {k: v for k, v in params["methods"][method].items() if k not in train_keys}
        assert options == _METHODS[method].options, method
    assert params["methods"]["tscam"]["backbone"] == "deit_small_patch16_224"


def test_method_options_are_cast_checked_and_saved(tmp_path: Path) -> None:
    train, options = method_params({"backbone": "resnet18", "lr": 0.1}, {"wildcat": {"kmax": "0.5", "lr": "0.01"}}, "wildcat")
    assert train == {"backbone": "resnet18", "lr": "0.01"} and options == {"kmax": "0.5"}
    m = create_model("wildcat", backbone="resnet10t", **options)
    assert m.opts == {"modalities": 8, "kmax": 0.5, "kmin": 0.2, "alpha": 0.7} and isinstance(m.opts["modalities"], int)
    with pytest.raises(ValueError, match="valid: alpha, kmax, kmin, modalities"):
        create_model("wildcat", backbone="resnet10t", k=0.2)
    with pytest.raises(ValueError, match="methods.adl.drop_rate"):
        create_model("adl", backbone="resnet10t", drop_rate="often")
    with pytest.raises(ValueError, match="no options"):
        create_model("cam", backbone="resnet10t", beta=1.0)
    with pytest.raises(ValueError, match="VisionTransformer"):
        create_model("tscam", backbone="resnet10t")
    # model.pt keeps the options and the input size: load_model rebuilds the same network
    for method in ("wildcat", "apvit", "tscam"):
        model = tiny(method, input_size=64).eval()
        save_model(tmp_path / f"{method}.pt", model, {"input_size": 64})
        loaded, cfg = load_model(tmp_path / f"{method}.pt")
        assert cfg["model_kwargs"] == model.opts and cfg["input_size"] == 64
        x = torch.randn(1, 3, 64, 64)
        with torch.no_grad():
            torch.testing.assert_close(loaded(x).logits, model(x).logits)


def test_table1_preset_covers_all_methods_with_valid_settings() -> None:
    flags = overlay_flags(ROOT / "params-table1.yaml", ROOT / "params.yaml")
    pairs = dict(f.split("=", 1) for f in flags[1::2])
    assert flags[0::2] == ["-S"] * len(pairs)
    trained, posthoc = yaml.safe_load(pairs["report.methods"]), yaml.safe_load(pairs["report.posthoc"])
    assert sorted(trained + posthoc) == METHODS and all(is_posthoc(m) for m in posthoc) and not any(map(is_posthoc, trained))
    assert pairs["train.backbone"] == '"resnet50"' and pairs["+methods.apvit.input_size"] == "112"  # new keys get "+"
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    overlay = yaml.safe_load((ROOT / "params-table1.yaml").read_text())
    methods = {m: {**params["methods"][m], **overlay["methods"].get(m, {})} for m in METHODS}
    for method in METHODS:  # every method's effective config and options are accepted (no network: nothing is built)
        train, options = method_params({**params["train"], **overlay["train"]}, methods, method)
        cfg = TrainConfig.from_params({**train, "method": method})
        assert cfg.epochs == 100 and cfg.input_size == (112 if method == "apvit" else 224) and cfg.output_stride == 8
        assert set(options) <= set(_METHODS[method].options)


def test_a_preset_with_train_method_is_refused(tmp_path: Path) -> None:
    """`train.method` is no key (report.methods picks what trains): an old preset that sets it fails, naming the file."""
    old = tmp_path / "old.yaml"
    old.write_text("train: {method: wildcat, epochs: 2}\n")
    with pytest.raises(ValueError, match=r"old.yaml: train.method is not a parameter.*report.methods"):
        overlay_flags(old, ROOT / "params.yaml")


def test_cpu_table1_preset_lists_all_eleven_with_valid_settings() -> None:
    """params-table1-cpu.yaml: eight trained methods + three post hoc = the registry; every override is accepted."""
    overlay = yaml.safe_load((ROOT / "params-table1-cpu.yaml").read_text())
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    trained, posthoc = overlay["report"]["methods"], overlay["report"]["posthoc"]
    assert sorted(trained + posthoc) == METHODS and posthoc == ["gradcam", "gradcampp", "layercam"]
    flags = overlay_flags(ROOT / "params-table1-cpu.yaml", ROOT / "params.yaml")
    assert "report.posthoc=[\"gradcam\",\"gradcampp\",\"layercam\"]" in flags  # a key params.yaml has: no "+"
    methods = {m: {**params["methods"][m], **overlay["methods"].get(m, {})} for m in METHODS}
    for method in trained:
        train, options = method_params({**params["train"], **overlay.get("train", {})}, methods, method)
        TrainConfig.from_params({**train, "method": method})
        assert set(options) <= set(_METHODS[method].options), method


def test_report_writes_table1_layout_for_all_methods() -> None:
    paper = pd.read_csv(ROOT / "data" / "paper" / "paper_tables.csv")
    runs = [(m, a) for m in PAPER for a in ("noaus", "aus")]
    metrics = {f"{m}-{a}": {"cl": 50.0, "cam_cos": 0.3 + 0.1 * (a == "aus"), "att_cos": 0.2, "att_cos_minmax": 0.7}
               for m, a in runs}
    table = build_table(metrics, PAPER, paper)
    n = len(TABLE_METRICS)
    assert n == len(METRICS) + 1 and len(table) == n * len(PAPER) and table["method"].tolist()[::n] == list(PAPER)
    label = dict(TABLE_METRICS)
    apvit = table[table["method"] == "apvit"].set_index("metric")
    assert math.isnan(apvit.loc[label["cam_cos"], "rafdb_aus"]) and apvit.loc["CL (%)", "rafdb_aus"] == pytest.approx(91.03)
    assert table.set_index(["method", "metric"]).loc[("layercam", label["cam_cos"]), "rafdb_aus"] == pytest.approx(0.84)
    # The min-max variant is shown once per method, ours only (the paper reports the reference computation).
    cam_mm = table.set_index(["method", "metric"]).loc[("cam", label["att_cos_minmax"])]
    assert cam_mm["ours_aus"] == pytest.approx(0.7) and math.isnan(cam_mm["rafdb_aus"])
    text = render_report(table, pd.DataFrame(), "synthetic", method_notes(PAPER))
    assert "| cam | ATT-COS (reference: raw, shifted if negative) |" in text
    apvit_line = next(line for line in text.splitlines() if line.startswith(f"| apvit | {label['cam_cos']}"))
    assert apvit_line.count("–") == 4  # the paper has no APViT CAM-COS: "–" in all four paper columns
    assert "class-agnostic" in text and "grad-cam" in text


# --- forward, class CAM ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_forward_shapes_and_class_cam(method: str) -> None:
    """Logits, every layer, class maps; the CAM of a requested class has the input's aspect, lies in [0, 1], no NaN."""
    model = tiny(method).eval()
    x = torch.randn(2, 3, 48, 64)  # a non-square input: the CAM must keep its 3:4 aspect
    with torch.no_grad():
        out = model(x, layers=model.layer_names)
    assert model.layer_names == (1, 2, 3, 4, 5) and model.method == method
    assert out.logits.shape == (2, NUM_CLASSES) and torch.isfinite(out.logits).all()
    assert set(out.features) == set(model.layer_names)
    for layer, feat in out.features.items():
        assert feat.ndim == 4 and feat.shape[:2] == (2, model.backbone.channels[layer]), (layer, feat.shape)
    assert out.cams.shape[:2] == (2, NUM_CLASSES) and out.cams.shape[2] * 4 == out.cams.shape[3] * 3
    maps = {k: model.class_cam(x, torch.tensor([k, k]), out) for k in (1, 4)}
    for cam in maps.values():
        assert cam.ndim == 3 and cam.shape[0] == 2 and cam.shape[1] * 64 == cam.shape[2] * 48, cam.shape
        assert torch.isfinite(cam).all() and cam.min() >= 0 and cam.max() <= 1 and cam.max() > 0.9
        assert not cam.requires_grad
    class_specific = not torch.allclose(maps[1], maps[4])
    assert class_specific == (method != "apvit")  # APViT's only map is its class-agnostic attention
    assert model.cam(x).shape == maps[1].shape  # predicted class by default
    assert not model.training


def test_apvit_aligns_the_map_its_tokens_come_from() -> None:
    """params.yaml aligns APViT's layer 4, as the paper's code aligns its stem output: the map the tokens are projected
    from (layer 5 is the attention that picks them, their sum |x|); the other methods keep train.layers' 5."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    layers = {m: method_params(params["train"], params["methods"], m)[0]["layers"] for m in METHODS}
    assert layers.pop("apvit") == [4] and set(map(tuple, layers.values())) == {(5,)}
    model = tiny("apvit").eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 48, 48), layers=(4, 5))
        tokens = model.backbone.proj(out.features[4])
    torch.testing.assert_close(tokens.abs().sum(dim=1, keepdim=True), out.features[5])


def test_gradcam_is_the_packages_map_of_the_requested_class() -> None:
    """With GAP + linear, GradCAM at the last layer equals ReLU(CAM_k) (weights = W_k / hw): checks the glue, class and size."""
    model = tiny("gradcam").eval()
    x = torch.randn(3, 3, 48, 64)
    target = torch.tensor([2, 5, 6])
    with torch.no_grad():
        out = model(x)
    low = minmax(select_class(out.cams, target).clamp_min(0))
    expected = minmax(F.interpolate(low[:, None], size=(48, 64), mode="bilinear")[:, 0])  # re-normalised after resizing
    torch.testing.assert_close(model.class_cam(x, target), expected, atol=1e-4, rtol=0)
    assert all(p.grad is None for p in model.parameters())  # the package's backward leaves nothing behind


def test_vit_blocks_with_exposed_attention_match_timm() -> None:
    model = tiny("tscam").eval()
    vit = model.backbone.vit
    tokens = torch.randn(2, 17, vit.embed_dim)
    for blk in vit.blocks:
        ours, weights = block_forward(blk, tokens)
        torch.testing.assert_close(ours, blk(tokens), atol=1e-5, rtol=1e-4)
        assert weights.shape == (2, blk.attn.num_heads, 17, 17)
        torch.testing.assert_close(weights.sum(-1), torch.ones(2, blk.attn.num_heads, 17))


def test_vit_conv_stem_gives_the_linear_embeddings_token_grid() -> None:
    """TS-CAM `stem: conv` (Xiao et al. 2021): log2(patch) stride-2 conv-BN-ReLU layers + a 1x1 conv, same layers 1..5."""
    linear = tiny("tscam").eval()
    conv = create_model("tscam", backbone="deit_tiny_patch16_224", input_size=48, patch_size=8, depth=4, stem="conv").eval()
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        assert [f.shape for f in conv.backbone(x)] == [f.shape for f in linear.backbone(x)]
    convs = [(m.stride[0], m.out_channels) for m in conv.backbone.vit.patch_embed.proj if isinstance(m, torch.nn.Conv2d)]
    assert convs == [(2, 48), (2, 96), (2, 192), (1, 192)]
    with pytest.raises(ValueError, match="power-of-two"):
        conv_stem(192, 6)
    with pytest.raises(ValueError, match="stem 'cnn' unknown"):
        create_model("tscam", backbone="deit_tiny_patch16_224", input_size=48, patch_size=8, depth=4, stem="cnn")


def test_tscam_cnn_stem_starts_from_a_weights_file(tmp_path: Path) -> None:
    """`stem_pretrained` loads a backbone file (stage pretrain's format) into TS-CAM's CNN stem; model.pt reloads without
    that file; a linear or conv stem with weights is refused."""
    torch.manual_seed(3)
    state = create_model("cam", backbone="resnet10t").backbone.body.state_dict()
    path = tmp_path / "backbone.pt"
    torch.save({"state_dict": state, "pretrain": {"task": "rotation"}}, path)
    opts = {"backbone": "deit_tiny_patch16_224", "input_size": 48, "patch_size": 8, "depth": 4, "stem": "resnet10t"}
    model = create_model("tscam", **opts, stem_pretrained=str(path)).eval()
    stem = model.backbone.vit.patch_embed.proj.body.body.state_dict()
    assert stem and all(torch.equal(v, state[k]) for k, v in stem.items())  # every stem tensor, from the file
    fresh = create_model("tscam", **opts).backbone.vit.patch_embed.proj.body.body.state_dict()
    assert any(not torch.equal(v, stem[k]) for k, v in fresh.items() if v.is_floating_point())
    save_model(tmp_path / "model.pt", model, {"method": "tscam"})
    path.unlink()  # the model file holds the weights: loading it needs no backbone file
    loaded, cfg = load_model(tmp_path / "model.pt", torch.device("cpu"))
    assert cfg["model_kwargs"]["stem_pretrained"] == str(path)
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).logits, model(x).logits)
    with pytest.raises(ValueError, match="needs a CNN stem"):
        create_model("tscam", **{**opts, "stem": "conv"}, stem_pretrained=str(path))


def test_pooling_heads() -> None:
    maps = torch.arange(10.0).view(1, 1, 2, 5)  # values 0..9
    torch.testing.assert_close(wildcat_pool(maps, kmax=0.2, kmin=0.2, alpha=0.7), torch.tensor([[(8.5 + 0.7 * 0.5) / 2]]))
    torch.testing.assert_close(wildcat_pool(maps, kmax=3, kmin=0, alpha=0.7), torch.tensor([[8.0]]))
    crm = torch.tensor([[[[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 3.0], [0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]]])
    peaks = peak_mask(crm, 3)
    assert peaks[0, 0, 0, 0] and peaks[0, 0, 1, 3] and peaks[0, 0, 2, 1] and not peaks[0, 0, 0, 1]
    torch.testing.assert_close(local_max_pool(crm, 3), torch.tensor([[2.5]]))  # 3x3 stride-1 maxima 2, 3, 2, 3


# --- training-time behaviour ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_alignment_loss_decreases(method: str) -> None:
    """A few SGD steps with λ = 4 on a fixed synthetic batch (through the method's training hooks) reduce the alignment
    loss (the default cos loss on the raw channel mean)."""
    model = tiny(method).train()
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(4, 3, 48, 48, generator=g), torch.tensor([1, 2, 5, 6])
    au, has = blobs(4, 48, seed=2), torch.ones(4, dtype=torch.bool)
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)

    def align_now() -> float:
        torch.manual_seed(123)  # ADL draws the same mask each time it is measured
        with torch.no_grad():
            return float(guided_loss(model(x, layers=(5,)), y, au, has, 4.0, (5,))[2])

    before = align_now()
    for _ in range(3):
        xm, aum, hm, ym = model.mix_batch(x, au, has, y)
        out = model(xm, layers=(5,))
        total = guided_loss(out, ym, aum, hm, 4.0, (5,))[0]
        extra = model.extra_loss(out, ym)
        (total if extra is None else total + extra).backward()
        opt.step()
        opt.zero_grad()
    after = align_now()
    # On the raw mean (train.att_norm: none) TS-CAM moves slowest: its layer 5 is the class-token attention, positive
    # and summing to 1, whose background level dominates the cosine (3 steps: 0.370 -> 0.353; min-max: 0.423 -> 0.156).
    assert math.isfinite(before) and after < 0.97 * before, (before, after)


def test_adl_acts_only_in_training() -> None:
    adl, cam = tiny("adl"), tiny("cam")
    cam.load_state_dict(adl.state_dict())  # ADL has no parameters: the same network without the dropout layers
    x = torch.randn(4, 3, 48, 48)
    with torch.no_grad():
        adl.eval(), cam.eval()
        torch.testing.assert_close(adl(x).logits, cam(x).logits)
        adl.train(), cam.train()
        assert not torch.allclose(adl(x).logits, cam(x).logits)
    feat = torch.randn(2, 8, 5, 5)
    drop, keep = ADL(drop_rate=1.0, gamma=0.9).train(), ADL(drop_rate=0.0, gamma=0.9).train()
    att = feat.mean(1, keepdim=True)
    torch.testing.assert_close(drop(feat), feat * (att < 0.9 * att.amax((2, 3), keepdim=True)))  # drop mask
    torch.testing.assert_close(keep(feat), feat * torch.sigmoid(att))  # importance map
    assert torch.equal(drop.eval()(feat), feat)


def test_acol_erases_and_adds_branch_b_only_in_training() -> None:
    model = tiny("acol")
    x, y = torch.randn(4, 3, 48, 48), torch.tensor([1, 2, 3, 4])
    out = model.train()(x)
    extra = model.extra_loss(out, y)
    assert extra is not None and extra.item() > 0
    extra.backward()
    assert model.head.b[0].weight.grad is not None and model.head.a[0].weight.grad is None  # B learns from erased features
    with torch.no_grad():
        ev = model.eval()(x)
        assert model.extra_loss(ev, y) is None
        last = model.backbone(x)[-1]
        torch.testing.assert_close(ev.cams, model.head.a(last))  # the logits' maps: classifier A's
        # the CAM of class k: max(A_k, B_k) with B reading the features erased where A_k >= the threshold, as in training
        a = minmax(model.head.a(last)[torch.arange(4), y])
        b = minmax(model.head.b(last * (a < model.opts["erase_threshold"]).float().unsqueeze(1))[torch.arange(4), y])
        torch.testing.assert_close(model.class_cam(x, y, ev), minmax(torch.maximum(a, b)))
        torch.testing.assert_close(model.class_cam(x, y), model.class_cam(x, y, ev))  # its own pass without `out`
        plain = minmax(model.head.b(last)[torch.arange(4), y])
        assert not torch.allclose(model.class_cam(x, y, ev), minmax(torch.maximum(a, plain)))  # erasing matters
        with torch.autocast("cpu", dtype=torch.bfloat16):  # validation's AMP forward; the map is read after it
            half = model(x)
        assert half.extras["last"].dtype == torch.bfloat16 and model.class_cam(x, y, half).dtype == torch.float32
    bn = create_model("acol", backbone="resnet10t", output_stride=16, hidden=16, batchnorm=True)
    assert [type(m).__name__ for m in bn.head.a] == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU", "Conv2d"]
    assert [m.kernel_size for m in bn.head.b if isinstance(m, torch.nn.Conv2d)] == [(3, 3), (3, 3), (1, 1)]  # published
    local = create_model("acol", backbone="resnet10t", output_stride=16, hidden=16, kernel=1)
    assert [m.kernel_size for m in local.head.a if isinstance(m, torch.nn.Conv2d)] == [(1, 1)] * 3  # each cell reads its own
    with torch.no_grad():
        local_out = local.eval()(x)
        assert local_out.cams.shape == (4, NUM_CLASSES, *local_out.extras["last"].shape[-2:])  # maps keep the features' size
        assert local.class_cam(x, y, local_out).shape == local_out.cams.shape[:1] + local_out.cams.shape[2:]
    with pytest.raises(ValueError, match="methods.acol.kernel=2: an odd size"):
        create_model("acol", backbone="resnet10t", hidden=16, kernel=2)
    att = torch.tensor([[[0.1, 0.9], [0.7, 0.2]]])
    erased = erase(torch.ones(1, 3, 2, 2), att, 0.7)
    assert erased[0, 0].tolist() == [[1.0, 0.0], [0.0, 1.0]]


@pytest.mark.slow  # two models trained 15 steps on 70 faces
def test_acol_batchnorm_keeps_classifier_a_alive() -> None:
    """From scratch, AdamW at the demo's lr kills most of A's first-layer ReLUs within 15 steps; BN before them does not
    (README "What was wrong": why the CPU preset sets methods.acol.batchnorm)."""
    x, y, _, _ = face_tensors(70, size=48, seed=0)
    alive = {}
    for bn in (False, True):
        torch.manual_seed(0)
        model = create_model("acol", backbone="resnet10t", output_stride=8, input_size=48, hidden=128, batchnorm=bn).train()
        opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4, fused=True)  # exact sqrt
        g = torch.Generator().manual_seed(0)
        for _ in range(15):
            idx = torch.randint(0, len(y), (16,), generator=g)
            out = model(x[idx], layers=())
            (F.cross_entropy(out.logits, y[idx]) + model.extra_loss(out, y[idx])).backward()
            opt.step()
            opt.zero_grad()
        with torch.no_grad():
            first = model.head.a[: 3 if bn else 2](model.eval().backbone(x)[-1])  # conv, (BN,) ReLU
        alive[bn] = (first.amax(dim=(0, 2, 3)) > 0).float().mean().item()
    assert alive[False] < 0.5 and alive[True] > 0.9, alive


def test_cutmix_mixes_image_and_au_map_by_the_same_box_only_in_training() -> None:
    model = tiny("cutmix")
    x = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 3, 48, 48).contiguous()  # image b is filled with b
    au = torch.arange(1.0, 5.0).view(4, 1, 1).expand(4, 24, 24).contiguous() / 4  # map at half the image size
    has, y = torch.tensor([True, True, False, True]), torch.tensor([1, 2, 0, 3])
    assert all(a is b for a, b in zip(model.eval().mix_batch(x, au, has, y), (x, au, has, y), strict=True))
    perm = torch.tensor([1, 2, 3, 0])
    xm, aum, hm, soft = cutmix(x, au, has, y, perm, (8, 32, 16, 40), NUM_CLASSES)
    box = torch.zeros(48, 48, dtype=torch.bool)
    box[8:32, 16:40] = True
    for b in range(4):
        assert (xm[b][:, box] == perm[b]).all() and (xm[b][:, ~box] == b).all()
        small = box[::2, ::2]  # the same box on the half-size map
        partner = au[perm[b], 0, 0] if has[perm[b]] else 0.0
        own = au[b, 0, 0] if has[b] else 0.0
        assert (aum[b][small] == partner).all() and (aum[b][~small] == own).all()
    area = 24 * 24 / 48**2
    torch.testing.assert_close(soft.sum(1), torch.ones(4))
    assert soft[0, 1] == pytest.approx(1 - area) and soft[0, 2] == pytest.approx(area)
    assert hm.tolist() == [True, True, True, True]  # sample 2 (no map) now holds sample 3's box
    torch.manual_seed(0)
    xm, aum, hm, soft = model.train().mix_batch(x, au, has, y)
    assert soft.shape == (4, NUM_CLASSES) and not torch.equal(xm, x)


# --- each method end to end ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def faces(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """~100 synthetic 48 px faces with real AU maps and a train/val/test manifest, written once for this module."""
    root = tmp_path_factory.mktemp("faces")
    n, size = 105, 48
    labels = np.random.default_rng(0).permutation(np.arange(n) % NUM_CLASSES)
    split = stratified_split(labels, val_fraction=0.15, test_fraction=0.2, seed=0)
    rows, _ = write_faces(root, labels, split, size=size, prefix="f", folder="img")
    return root, rows.drop(columns="cue")


TRAINED = [m for m in METHODS if not is_posthoc(m)]
POSTHOC = [m for m in METHODS if is_posthoc(m)]  # no training of their own: they read out the CAM model


def settings(method: str) -> tuple[dict, dict]:
    """The 2-epoch run's train settings and the method's options (methods.<m> applied over train.*)."""
    return method_params({**TRAIN, "epochs": 2, "batch_size": 32, "lr": 0.02, "cache_images": "true"}, TINY, method)


def train_two_epochs(method: str, faces: tuple[Path, pd.DataFrame], out: Path) -> Path:
    """Train `method` 2 epochs on the module's faces into out/model.pt (cwd: `out`, where DVCLive looks for a repo)."""
    root, manifest = faces
    train, options = settings(method)
    cfg = TrainConfig.from_params({**train, "method": method})
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(out)
        summary = train_model(cfg, lam=4.0, model_out=out / "model.pt", live_dir=out / "live", model_kwargs=options,
                              manifest=manifest, image_root=root, aumap_path=root / "aumaps.h5")
    assert summary["finished"] and summary["epochs_run"] == 2
    return out / "model.pt"


def assert_evaluates(model: Path, method: str, faces: tuple[Path, pd.DataFrame]) -> None:
    """`evaluate_model` of `model` read out as `method`: every test row, metrics in range, all five layers, every AU class."""
    root, manifest = faces
    m = evaluate_model(model, manifest=manifest, image_root=root, aumap_path=root / "aumaps.h5", batch_size=32,
                       device="cpu", method=method).metrics
    assert m["n"] == int((manifest["split"] == "test").sum()) and 0.0 <= m["cl"] <= 100.0
    for key in ("cam_cos", "att_cos"):
        assert -1.0 <= m[key] <= 1.0, (key, m[key])
    assert sorted(m["att_cos_layers"]) == ["1", "2", "3", "4", "5"]
    for k in AU_CLASSES:
        assert math.isfinite(m["per_class"][LABELS[k]]["cam_cos"]), LABELS[k]


@pytest.fixture(scope="module")
def cam_model(faces: tuple[Path, pd.DataFrame], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CAM model trained 2 epochs once for this module: its own test and the post-hoc methods read it."""
    return train_two_epochs("cam", faces, tmp_path_factory.mktemp("cam"))


@pytest.mark.slow
@pytest.mark.parametrize("method", TRAINED)
def test_each_trained_method_trains_two_epochs_then_evaluates(
    method: str, faces: tuple[Path, pd.DataFrame], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    model = request.getfixturevalue("cam_model") if method == "cam" else train_two_epochs(method, faces, tmp_path)
    train, options = settings(method)
    _, config = load_model(model)
    assert config["method"] == method and config["backbone"] == train["backbone"] and config["input_size"] == 48
    assert config["model_kwargs"] == {**_METHODS[method].options, **options}
    assert_evaluates(model, method, faces)


@pytest.mark.slow
@pytest.mark.parametrize("method", POSTHOC)
def test_each_posthoc_method_reads_out_the_cam_model(method: str, cam_model: Path, faces: tuple[Path, pd.DataFrame]) -> None:
    """As the pipeline runs them (`posthoc@<method>-*` stages): the one CAM model, read out by each; nothing trains."""
    _, config = load_model(cam_model, method=method)
    assert config["method"] == method and config["trained_as"] == "cam"
    assert_evaluates(cam_model, method, faces)
