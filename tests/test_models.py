"""Models: shapes, CAM identity, map helpers, the guided loss's masking and gradient routing, model files."""

from __future__ import annotations

import pytest
import timm
import torch

from fer_pipeline.core.labels import NUM_CLASSES
from fer_pipeline.models import FERModel, ModelOutput, create_model, list_methods, load_model, save_model
from fer_pipeline.models.loss import ALIGN_KINDS, alignment_loss, guided_loss, loss_norm
from fer_pipeline.models.maps import attention, cosine, minmax, resize, select_class

torch.set_num_threads(2)


def _blob(n: int, size: int, seed: int) -> torch.Tensor:
    """(n, size, size) maps in [0, 1] with one Gaussian blob each at a seeded random place."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    c = torch.rand(n, 2, generator=g) * size * 0.6 + size * 0.2
    d2 = (yy[None] - c[:, 0, None, None]) ** 2 + (xx[None] - c[:, 1, None, None]) ** 2
    return torch.exp(-d2 / (2 * (size / 6) ** 2))


@pytest.fixture(scope="module")
def model16() -> FERModel:
    torch.manual_seed(0)
    return create_model("cam", backbone="resnet18", pretrained="none", output_stride=16).eval()


@pytest.mark.parametrize(("stride", "side"), [(32, 4), (16, 7)])
def test_shapes(stride: int, side: int) -> None:
    m = create_model("cam", output_stride=stride)
    assert m.layer_names == (1, 2, 3, 4, 5) and m.method == "cam"
    out = m(torch.randn(2, 3, 112, 112), layers=(1, 3, 5))
    assert isinstance(out, ModelOutput)
    assert out.logits.shape == (2, NUM_CLASSES)
    assert out.cams.shape == (2, NUM_CLASSES, side, side)
    assert set(out.features) == {1, 3, 5}
    assert out.features[1].shape == (2, 64, 56, 56)
    assert out.features[5].shape == (2, 512, side, side)


def test_bad_layer_and_method() -> None:
    with pytest.raises(ValueError, match="cam"):
        create_model("no-such-method")
    assert "cam" in list_methods()
    m = create_model("cam")
    with pytest.raises(ValueError, match="valid"):
        m(torch.randn(1, 3, 64, 64), layers=(6,))


def test_logits_are_mean_cam_plus_bias(model16: FERModel) -> None:
    with torch.no_grad():
        out = model16(torch.randn(3, 3, 112, 112))
    expected = out.cams.mean(dim=(2, 3)) + model16.head.fc.bias
    torch.testing.assert_close(out.logits, expected, rtol=1e-4, atol=1e-4)


def test_cam_normalised(model16: FERModel) -> None:
    x = torch.randn(3, 3, 112, 112)
    for target in (None, torch.tensor([0, 3, 6])):
        c = model16.cam(x, target)
        assert c.shape == (3, 7, 7) and not c.requires_grad
        assert torch.isfinite(c).all() and c.min() >= 0 and c.max() <= 1
    with torch.no_grad():
        out = model16(x)
    torch.testing.assert_close(model16.cam(x, torch.tensor([1, 2, 3])), minmax(select_class(out.cams, torch.tensor([1, 2, 3]))))


def test_map_helpers() -> None:
    feat = torch.randn(2, 16, 5, 5)
    t = attention(feat)
    assert t.shape == (2, 5, 5) and t.min() >= 0 and t.max() <= 1
    assert torch.allclose(t.amax(dim=(1, 2)), torch.ones(2))
    assert (minmax(torch.full((2, 4, 4), 3.0)) == 0).all()
    assert resize(torch.rand(2, 56, 56), (7, 7)).shape == (2, 7, 7)
    a = torch.rand(2, 6, 6)
    torch.testing.assert_close(cosine(a, a), torch.ones(2))


def test_cosine_zero_maps_nan_safe() -> None:
    a = torch.zeros(2, 4, 4, requires_grad=True)
    b = torch.rand(2, 4, 4, requires_grad=True)
    c = cosine(a, b)
    assert torch.equal(c.detach(), torch.zeros(2))
    c.sum().backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()
    # A constant feature map -> T_l == 0 -> cosine 0, still finite gradients into the features.
    f = torch.ones(1, 3, 4, 4, requires_grad=True)
    cosine(attention(f), torch.rand(1, 4, 4)).sum().backward()
    assert torch.isfinite(f.grad).all()


@pytest.mark.parametrize("kind", ALIGN_KINDS)
def test_alignment_kinds(kind: str) -> None:
    au = _blob(4, 7, seed=1)
    has = torch.ones(4, dtype=torch.bool)
    same = alignment_loss(au.clone(), au, has, kind)
    other = alignment_loss(_blob(4, 7, seed=2).roll(3, dims=2), au, has, kind)
    assert same.item() < 1e-5
    assert other.item() > same.item() + 1e-3
    # A full-resolution AU map is resized to the attention's size.
    au56 = _blob(4, 56, seed=1)
    assert alignment_loss(resize(au56, (7, 7)), au56, has, kind).item() < 1e-5


def test_cos_loss_sees_the_background_level_only_on_the_raw_mean() -> None:
    """T = c + A: the paper's raw-mean cosine loss grows with the background level c; min-max removes c (same loss)."""
    au = _blob(4, 7, seed=1)
    has = torch.ones(4, dtype=torch.bool)

    def feat(c: float) -> torch.Tensor:  # three channels whose mean is c + A
        return (c + au).unsqueeze(1).repeat(1, 3, 1, 1)

    raw = [alignment_loss(attention(feat(c), loss_norm("cos", "none")), au, has, "cos").item() for c in (0.0, 0.5, 1.0, 2.0)]
    mm = [alignment_loss(attention(feat(c), loss_norm("cos", "minmax")), au, has, "cos").item() for c in (0.0, 0.5, 1.0, 2.0)]
    assert raw[0] < 1e-5 and all(b > a + 0.01 for a, b in zip(raw, raw[1:], strict=False))
    assert max(mm) - min(mm) < 1e-5
    # guided_loss follows train.att_norm for cos only; l1 / l2 / kl always compare min-max maps.
    assert [loss_norm(k, "none") for k in ALIGN_KINDS] == ["none", "minmax", "minmax", "minmax"]
    with pytest.raises(ValueError, match="valid: none, minmax"):
        attention(feat(0.0), "zscore")


def test_alignment_mask_and_empty() -> None:
    att = torch.rand(4, 7, 7, requires_grad=True)
    au = _blob(4, 14, seed=3)
    has = torch.tensor([True, False, True, False])
    base = alignment_loss(att, au, has)
    au2 = au.clone()
    au2[1] = torch.rand(14, 14)
    au2[3] = float("nan")
    again = alignment_loss(att, au2, has)
    assert torch.equal(base, again)
    again.backward()
    assert torch.isfinite(att.grad).all() and (att.grad[[1, 3]] == 0).all()
    # Only the valid rows count: equal to the loss over those rows alone.
    torch.testing.assert_close(base, alignment_loss(att[[0, 2]], au[[0, 2]], torch.ones(2, dtype=torch.bool)))
    none = alignment_loss(att, au, torch.zeros(4, dtype=torch.bool))
    assert none.item() == 0 and none.requires_grad
    # uint8 maps as stored are accepted.
    u8 = (au * 255).round().to(torch.uint8)
    assert abs(alignment_loss(att, u8, has).item() - base.item()) < 1e-2


def test_align_gradient_reaches_only_layers_up_to_chosen() -> None:
    torch.manual_seed(0)
    m = create_model("cam", output_stride=16).train()
    x = torch.randn(4, 3, 64, 64)
    y = torch.tensor([1, 2, 3, 4])
    out = m(x, layers=(3,))
    _, ce, align = guided_loss(out, y, _blob(4, 28, seed=0), torch.ones(4, dtype=torch.bool), lam=1.0, layers=(3,))
    align.backward()  # the alignment term alone (CE left out of the graph)

    def grad_norm(mod: torch.nn.Module) -> float:
        return sum(float(p.grad.abs().sum()) for p in mod.parameters() if p.grad is not None)

    body = m.backbone.body
    assert grad_norm(body.layer3) == 0 and grad_norm(body.layer4) == 0 and grad_norm(m.head) == 0
    for mod in (body.conv1, body.layer1, body.layer2):
        assert grad_norm(mod) > 0
    assert ce.requires_grad


def test_lambda_zero_is_ce_only() -> None:
    m = create_model("cam", output_stride=16).train()
    out = m(torch.randn(4, 3, 64, 64), layers=(5,))
    y = torch.tensor([0, 1, 2, 3])
    total, ce, align = guided_loss(out, y, _blob(4, 28, seed=0), torch.tensor([False, True, True, True]), lam=0.0, layers=(5,))
    assert torch.equal(total, ce) and total.requires_grad
    assert not align.requires_grad and 0 <= align.item() <= 1
    with pytest.raises(KeyError, match="layers"):
        guided_loss(out, y, _blob(4, 28, seed=0), torch.ones(4, dtype=torch.bool), lam=1.0, layers=(4,))


def test_sgd_reduces_alignment() -> None:
    torch.manual_seed(0)
    m = create_model("cam", output_stride=8).train()
    opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
    x = torch.randn(8, 3, 64, 64)
    y = torch.arange(8) % NUM_CLASSES
    au, has = _blob(8, 28, seed=5), torch.ones(8, dtype=torch.bool)
    history = []
    for _ in range(5):
        total, _, align = guided_loss(m(x, layers=(5,)), y, au, has, lam=4.0, layers=(5,))
        opt.zero_grad()
        total.backward()
        opt.step()
        history.append(align.item())
    assert history[-1] < history[0] - 0.1, history


def test_save_load_roundtrip(tmp_path, model16: FERModel) -> None:
    path = tmp_path / "run" / "model.pt"
    save_model(path, model16, {"input_size": 112, "layers": [5], "lambda": 4.0})
    assert path.is_file() and not list(path.parent.glob("*.tmp"))
    loaded, cfg = load_model(path)
    assert cfg["method"] == "cam" and cfg["output_stride"] == 16 and cfg["input_size"] == 112 and cfg["layers"] == [5]
    assert not loaded.training
    x = torch.randn(2, 3, 112, 112)
    with torch.no_grad():
        assert torch.equal(model16(x).logits, loaded(x).logits)


def test_load_errors_name_the_file(tmp_path) -> None:
    missing = tmp_path / "nope.pt"
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_model(missing)
    bad = tmp_path / "bad.pt"
    torch.save({"state_dict": {}, "config": {"method": "cam", "backbone": "resnet18", "num_classes": 7}}, bad)
    with pytest.raises(ValueError, match="bad.pt"):
        load_model(bad)


def test_pretrained_local_file(tmp_path) -> None:
    ref = timm.create_model("resnet18", pretrained=False, num_classes=1000)  # a classifier state_dict, fc included
    good = tmp_path / "r18.pth"
    torch.save({"state_dict": ref.state_dict()}, good)
    m = create_model("cam", pretrained=str(good))
    torch.testing.assert_close(m.backbone.body.conv1.weight, ref.conv1.weight)
    sd = ref.state_dict()
    sd["conv1.weight"] = torch.zeros(64, 1, 7, 7)
    wrong = tmp_path / "wrong.pth"
    torch.save(sd, wrong)
    with pytest.raises(ValueError, match="wrong.pth"):
        create_model("cam", pretrained=str(wrong))
    with pytest.raises(FileNotFoundError, match="absent.pth"):
        create_model("cam", pretrained=str(tmp_path / "absent.pth"))
    with pytest.raises(ValueError, match="timm pretrained name"):
        create_model("cam", pretrained="resnet34.a1_in1k")  # another architecture's weights: refused before any download
