"""The Python API: every ```python example of its guide and of the README runs (against a model from a tiny training),
and the functions agree with the pipeline code they wrap."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fer_pipeline import api
from fer_pipeline.aumaps.render import render_maps
from fer_pipeline.core.codebook import aus_for
from fer_pipeline.core.labels import LABELS, NUM_CLASSES
from fer_pipeline.data.manifest import stratified_split
from fer_pipeline.data.synthetic import SyntheticConfig, make_sample
from fer_pipeline.train import TrainConfig, train_model
from tests.faces import write_faces

torch.set_num_threads(2)
ROOT = Path(__file__).resolve().parents[1]
PAGES = ("docs/guides/python-api.md", "README.md")


def examples(page: str) -> list[str]:
    """The ```python blocks of a page, in order."""
    return re.findall(r"^```python\n(.*?)^```", (ROOT / page).read_text(encoding="utf-8"), re.M | re.S)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CAM model with AUs from one epoch on 42 synthetic 64 px faces (resnet10t): a real model.pt, made in seconds."""
    root = tmp_path_factory.mktemp("train")
    labels = np.arange(42) % NUM_CLASSES
    split = stratified_split(labels, val_fraction=0.15, test_fraction=0.15, seed=0)
    manifest = write_faces(root, labels, split, size=64, prefix="t")[0]
    cfg = {"backbone": "resnet10t", "output_stride": 16, "input_size": 64, "epochs": 1, "batch_size": 16, "device": "cpu"}
    out = root / "model.pt"
    train_model(TrainConfig.from_params({**cfg, "lr": 0.02, "seed": 0}), lam=4.0, manifest=manifest, image_root=root,
                aumap_path=root / "aumaps.h5", model_out=out, live_dir=None)
    return out


@pytest.mark.parametrize("page", PAGES)
def test_examples_run(page: str, model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each example runs as written (outside the project: the default AU map settings) and prints its shapes."""
    blocks = examples(page)
    assert blocks, f"{page} has no ```python example"
    monkeypatch.setenv("FER_MODEL", str(model_path))
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        assert len(code.splitlines()) <= 20, f"{page}: an example of {len(code.splitlines())} lines; keep them short"
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(code, f"{page} example", "exec"), {"__name__": "__example__"})
        text = printed.getvalue()
        assert text.strip(), f"{page}: an example printed nothing"
        if "api.predict" in code:
            assert text.split()[0] in LABELS and "(56, 56)" in text, text


def test_import_stays_light() -> None:
    """`import fer_pipeline.api` loads no torch (nor does `import fer_pipeline`): `fer --help` stays fast."""
    code = "import sys, fer_pipeline, fer_pipeline.api; print('torch' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"


def test_render_au_map_is_the_stage_renderer() -> None:
    """By class: the `aumaps` stage's map; by the class's codebook AUs at full intensity: the same map; neutral: zeros."""
    face = make_sample(0, 3, 1, "test", SyntheticConfig(size=80))
    by_class = api.render_au_map(face.landmarks, "happy", (80, 80))
    stage, has = render_maps(face.landmarks[None], np.array([[80, 80]]), np.array([1]))
    assert has[0] and np.array_equal(by_class, stage[0]) and by_class.max() == 1.0
    book = aus_for(1)  # happiness's AUs in the reference codebook
    np.testing.assert_allclose(api.render_au_map(face.landmarks, book, (80, 80)), by_class, atol=1e-6)
    weaker = api.render_au_map(face.landmarks, {**dict.fromkeys(book, 1.0), book[-1]: 0.3}, (80, 80))
    assert not np.allclose(weaker, by_class)
    assert api.render_au_map(face.landmarks, "neutral", (80, 80)).max() == 0.0
    with pytest.raises(ValueError, match="drawable AUs"):
        api.render_au_map(face.landmarks, [99], (80, 80))
    with pytest.raises(ValueError, match="unknown expression class"):
        api.render_au_map(face.landmarks, "bored", (80, 80))


def test_au_loss_leaves_out_faces_without_a_map() -> None:
    """A T_l shaped like A costs 0; a face without a map (zeros) adds nothing, whatever its features; λ scales."""
    face = make_sample(0, 1, 2, "test", SyntheticConfig(size=64))
    a = torch.from_numpy(api.render_au_map(face.landmarks, 2, (64, 64)))
    au = torch.stack([a, torch.zeros_like(a)])
    feat = torch.stack([a.expand(4, 56, 56), torch.rand(4, 56, 56)])  # face 0: every channel is A
    assert api.au_loss(feat, au).item() == pytest.approx(0.0, abs=1e-5)
    other = feat.clone()
    other[1] = torch.rand(4, 56, 56) * 5
    assert api.au_loss(other, au).item() == pytest.approx(0.0, abs=1e-5)
    off = torch.stack([torch.rand(4, 56, 56), torch.rand(4, 56, 56)])
    one = api.au_loss(off, au)
    assert one.item() > 0.01 and api.au_loss(off, au, lam=3.0).item() == pytest.approx(3 * one.item())
    assert api.au_loss([off, feat], au).item() == pytest.approx(one.item() / 2, rel=1e-5)  # the mean over layers
    assert api.attention_map(off).shape == (2, 56, 56)


def test_predict_class_maps_and_no_landmarks(model_path: Path) -> None:
    """A given class draws its CAM and AU map; without landmarks there is no AU map and no score."""
    model = api.load_model(model_path)
    assert model.saved_config["input_size"] == 64 and model.saved_config["lambda"] == 4.0
    face = make_sample(1, 0, 3, "test", SyntheticConfig(size=64))
    out = api.predict(model, face.image, face.landmarks, label="fear")
    assert out.cam_class == "fear" and out.au_map is not None and out.cam.shape == out.au_map.shape == (56, 56)
    assert sum(out.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert np.isfinite(out.scores["cam_cos"]) and out.face.shape == (64, 64, 3)
    bare = api.predict(model_path, face.image)
    assert bare.au_map is None and np.isnan(bare.scores["cam_cos"]) and bare.cam_class == bare.label
    assert bare.probabilities == pytest.approx(out.probabilities, abs=1e-6)
