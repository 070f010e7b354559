"""A tiny model trained here: evaluate's figures and extra metrics, offline `dvc plots show`, the report's side-by-side
figure, and `fer explain` on a photo that is not a crop (skimage's astronaut)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from fer_pipeline import cli
from fer_pipeline.core.labels import AU_CLASSES, LABELS, NUM_CLASSES
from fer_pipeline.data.manifest import stratified_split
from fer_pipeline.evaluate.extended import Extended, evaluate_extended, write_extended
from fer_pipeline.evaluate.figures import DPI, EXPLAIN_PANEL, HEADER, PANEL, samples_figure, save_figure
from fer_pipeline.evaluate.headline import headline
from fer_pipeline.evaluate.panel import read_panel
from fer_pipeline.landmarks.store import LandmarkTable, write_landmark_store
from fer_pipeline.report.extra import render_extra, write_compare_figure
from fer_pipeline.train import TrainConfig, train_model
from tests.conftest import favour_class, make_clone, run
from tests.dataset_trees import astronaut
from tests.faces import write_faces

torch.set_num_threads(2)

pytestmark = pytest.mark.slow  # every test here trains a model
N, SIZE = 112, 64


def png(path: Path) -> np.ndarray:
    """A PNG as an (H, W, C) array; fails when missing or unreadable."""
    assert path.is_file(), path
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None, path
    return img


def grid_px(rows: int, cols: int, panel: float = PANEL) -> tuple[int, int]:
    """(height, width) in pixels of a figure with rows x cols panels, from the layout constants."""
    return round((rows * panel + HEADER) * DPI), round(cols * panel * DPI)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """~110 synthetic 64 px faces with shortcut marks, landmark + AU map stores, and a 1-epoch resnet18 model."""
    root = tmp_path_factory.mktemp("tiny")
    labels = np.random.default_rng(0).permutation(np.arange(N) % NUM_CLASSES)
    split = stratified_split(labels, val_fraction=0.1, test_fraction=0.25, seed=0)
    manifest, pts = write_faces(root, labels, split, size=SIZE, prefix="t", seed=1, shortcut=True)
    ids = manifest["sample_id"].tolist()
    write_landmark_store(root / "landmarks.h5", LandmarkTable(ids, pts, np.tile([SIZE, SIZE], (N, 1)), np.zeros(N, np.uint8)))
    tc = TrainConfig.from_params(
        {
            "backbone": "resnet18",
            "output_stride": 16,
            "input_size": SIZE,
            "epochs": 1,
            "batch_size": 32,
            "lr": 0.02,
            "device": "cpu",
        }
    )
    train_model(
        tc,
        lam=2.0,
        manifest=manifest,
        image_root=root,
        aumap_path=root / "aumaps.h5",
        model_out=root / "model.pt",
        live_dir=root / "live",
    )
    return root, manifest


@pytest.fixture(scope="module")
def evaluated(trained: tuple[Path, pd.DataFrame]) -> tuple[Extended, Path]:
    """The extended evaluation of the tiny model, written as two runs' outputs (for the plots and report tests)."""
    root, manifest = trained
    ext = evaluate_extended(
        root / "model.pt",
        manifest=manifest,
        image_root=root,
        aumap_path=root / "aumaps.h5",
        landmark_path=root / "landmarks.h5",
        batch_size=32,
        device="cpu",
        faithfulness_n=12,
        deletion_steps=4,
    )
    out = root / "out"
    for run_id in ("cam-noaus", "cam-aus"):
        write_extended(
            ext,
            run_id,
            metrics_path=out / "metrics" / f"{run_id}.json",
            plots_dir=out / "plots" / run_id,
            figures_dir=out / "figures" / run_id,
        )
    return ext, out


def test_extended_metrics(evaluated: tuple[Extended, Path], trained: tuple[Path, pd.DataFrame]) -> None:
    ext, out = evaluated
    m = json.loads((out / "plots" / "cam-aus" / "details.json").read_text())  # every metric; the DVC metric: headline
    assert json.loads((out / "metrics" / "cam-aus.json").read_text()) == headline(m)
    for key in ("cam_pointing", "cam_energy", "att_pointing", "att_energy", "cue_area"):
        assert 0.0 <= m[key] <= 1.0, key
    for key in ("cue_cam_share_agree", "cue_cam_share_conflict", "cue_att_share_agree", "cue_att_share_conflict"):
        assert m[key] is None or 0.0 <= m[key] <= 1.0, key
    assert m["deletion_n"] == 12 and 0.0 <= m["deletion_auc"] <= 1.0 and 0.0 <= m["deletion_auc_random"] <= 1.0
    assert m["deletion_score"] == pytest.approx(m["deletion_auc_random"] - m["deletion_auc"], abs=1e-3)
    happy = m["per_class"]["happiness"]
    assert (
        set(happy["att_au_share"]) == {"AU6", "AU12", "AU25"} and sum(happy["att_au_share"].values()) <= happy["att_energy"] + 0.2
    )
    assert m["per_class"]["neutral"]["cam_pointing"] is None  # neutral has no AU region
    assert set(m["att_au_share"]) >= {"AU1", "AU12", "AU26"}
    # the sample panel holds the first test sample of every AU class, with maps in [0, 1]
    panel = read_panel(out / "plots" / "cam-aus" / "samples.h5")
    assert [int(v) for v in panel.label] == list(AU_CLASSES) and panel.image.shape[1:] == (112, 112, 3)
    assert panel.cam.shape == panel.au.shape == (6, 56, 56) and panel.att.min() >= 0.0 and panel.att.max() <= 1.0
    cos = pd.read_csv(out / "plots" / "cam-aus" / "cosine.csv")
    assert list(cos.columns) == ["class", "layer", "cos"] and len(cos) == 7 * 6
    macro_cam = cos[(cos["class"] == "macro") & (cos["layer"] == "cam")]["cos"].item()
    assert macro_cam == pytest.approx(m["cam_cos"], abs=1e-4)


def test_figures_exist_sized_and_not_blank(evaluated: tuple[Extended, Path], tmp_path: Path) -> None:
    ext, out = evaluated
    fig_dir = out / "figures" / "cam-aus"
    expected = {
        "class_maps.png": grid_px(len(AU_CLASSES), 4),
        "samples.png": grid_px(len(AU_CLASSES), 4),
        "confusion.png": (500, 600),
        "cosine.png": (500, 600),
    }
    assert sorted(p.name for p in fig_dir.iterdir()) == sorted(expected)
    for name, hw in expected.items():
        img = png(fig_dir / name)
        assert img.shape[:2] == hw, name
        assert img[..., :3].astype(float).var() > 100.0, f"{name} is blank"
    p = ext.panel
    save_figure(samples_figure(p.image, p.au, p.cam, p.att, p.titles(), "cam-aus: test samples"), tmp_path / "again.png")
    assert (tmp_path / "again.png").read_bytes() == (fig_dir / "samples.png").read_bytes()  # deterministic bytes


def test_report_side_by_side_figure(evaluated: tuple[Extended, Path], tmp_path: Path) -> None:
    _, out = evaluated
    panels = {aus: read_panel(out / "plots" / f"cam-{aus}" / "samples.h5") for aus in ("noaus", "aus")}
    assert write_compare_figure(panels, "cam", tmp_path / "cam-samples.png")
    img = png(tmp_path / "cam-samples.png")
    assert img.shape[:2] == grid_px(len(AU_CLASSES), 5) and img[..., :3].var() > 100.0
    metrics = {r: json.loads((out / "plots" / r / "details.json").read_text()) for r in ("cam-noaus", "cam-aus")}
    text = render_extra(metrics, ["cam"], {"cam": "figures/cam-samples.png"})
    assert (
        "CAM pointing game" in text and "deletion score" in text and "AU12" in text and "![cam](figures/cam-samples.png)" in text
    )


def test_dvc_plots_html_opens_offline(evaluated: tuple[Extended, Path], tmp_path: Path) -> None:
    _, out = evaluated
    repo = make_clone(tmp_path / "repo")
    for run_id in ("cam-noaus", "cam-aus"):
        for sub in ("plots", "figures"):
            for f in (out / sub / run_id).iterdir():
                (repo / sub / run_id).mkdir(parents=True, exist_ok=True)
                (repo / sub / run_id / f.name).write_bytes(f.read_bytes())
    (repo / "reports" / "figures").mkdir(parents=True, exist_ok=True)  # the committed baseline's figures may be there
    (repo / "reports" / "figures" / "cam-samples.png").write_bytes((out / "figures" / "cam-aus" / "samples.png").read_bytes())
    (repo / "dvc.lock").unlink(missing_ok=True)  # plots as dvc.yaml declares them, not the committed baseline's hashes
    run(["dvc", "plots", "show", "-o", "html"], repo)
    html = (repo / "html" / "index.html").read_text()
    scripts = re.findall(r"<script[^>]*>", html, flags=re.I)
    assert scripts and not [s for s in scripts if "src" in s.lower()], scripts  # inline only: no CDN, no file
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html, flags=re.I)
    assert "cdn.jsdelivr" not in html
    images = re.findall(r'<img src="([^"]+)"', html)
    assert len(images) >= 9 and all((repo / "html" / src).is_file() for src in images)  # 4 PNGs x 2 runs + report
    assert "plots_cam-aus_cosine_csv" in html and "plots_cam-aus_confusion_csv" in html


def test_fer_explain_on_a_photo(trained: tuple[Path, pd.DataFrame], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = trained
    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR))
    fig = tmp_path / "explained.png"
    # the trained model's copy that predicts happiness whatever it sees (the bias does not enter the maps): scored maps
    happy = favour_class(root / "model.pt", tmp_path / "happy.pt", LABELS.index("happiness"))
    assert cli.main(["explain", str(photo), "--model", str(happy), "--json", "--out", str(fig), "--device", "cpu"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["prediction"] in LABELS and sum(res["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert res["face"]["detected"] and res["face"]["status"] == "ok"
    x0, y0, x1, y1 = res["face"]["box"]
    assert 120 < x0 < x1 < 340 and 20 < y0 < y1 < 260  # Eileen Collins' face, not the whole 512 x 512 photo
    # a model trained without `align` (mode none) saw its images whole: the photo is framed whole, as in training
    assert res["face"]["alignment"]["mode"] == "none" and res["face"]["framed"] == [0, 0, 512, 512]
    scores = res["scores"]
    assert res["prediction"] == "happiness"
    assert all(v is not None and math.isfinite(v) for v in scores.values()) and 0.0 <= scores["cam_cos"] <= 1.0
    img = png(fig)
    assert img.shape[:2] == grid_px(1, 4, EXPLAIN_PANEL) and img[..., :3].var() > 100.0

    noface = tmp_path / "noise.png"
    cv2.imwrite(str(noface), np.full((80, 80, 3), 127, np.uint8))
    assert cli.main(["explain", str(noface), "--model", str(root / "model.pt"), "--json", "--out", str(tmp_path / "n.png")]) == 0
    assert json.loads(capsys.readouterr().out)["face"]["detected"] is False  # whole image used, still explained
    # a neutral prediction has no AU map: no scores
    neutral = favour_class(root / "model.pt", tmp_path / "neutral.pt", LABELS.index("neutral"))
    assert cli.main(["explain", str(photo), "--model", str(neutral), "--json", "--out", str(tmp_path / "m.png")]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["prediction"] == "neutral" and all(v is None for v in res["scores"].values())
    assert cli.main(["explain", str(photo), "--model", str(tmp_path / "missing.pt")]) == 2
    assert "missing.pt" in capsys.readouterr().err
