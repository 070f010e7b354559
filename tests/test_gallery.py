"""The report's gallery from small fake sample panels: one row per AU class with a face shared by every run, columns
face + AU map + each method's CAM without and with AUs; the strip is its first row; the docs show the report's copy."""

from __future__ import annotations

import filecmp
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from fer_pipeline.core.labels import AU_CLASSES, LABELS, NEUTRAL
from fer_pipeline.evaluate.figures import DPI, GALLERY_PANEL, grid_figsize
from fer_pipeline.evaluate.panel import Panel
from fer_pipeline.report.gallery import gallery_grid, gallery_section, write_gallery

ROOT = Path(__file__).resolve().parents[1]


def fake_panel(labels: list[int], seed: int, ids: list[str] | None = None) -> Panel:
    """A panel of 16 px faces with random maps; sample ids `s<i>` unless given."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    return Panel(
        sample_id=ids or [f"s{i}" for i in range(n)],
        label=np.array(labels, np.int64),
        pred=np.array([(y + seed) % len(LABELS) for y in labels], np.int64),
        image=rng.integers(0, 255, (n, 16, 16, 3), dtype=np.uint8),
        au=rng.random((n, 8, 8), dtype=np.float32),
        cam=rng.random((n, 8, 8), dtype=np.float32),
        att=rng.random((n, 8, 8), dtype=np.float32),
    )


def grid_px(rows: int, cols: int) -> tuple[int, int]:
    """(height, width) in pixels of a gallery of rows x cols panels."""
    w, h = grid_figsize(rows, cols, GALLERY_PANEL)
    return round(h * DPI), round(w * DPI)


def test_gallery_grid_rows_are_classes_columns_are_runs(tmp_path: Path) -> None:
    """Two methods: 6 rows (one face per AU class, canonical order) x (face, AU map, 2 x 2 CAMs); the strip is row 0."""
    labels = [*AU_CLASSES, *AU_CLASSES, NEUTRAL]  # two faces per AU class and a neutral one: the first of each is drawn
    panels = {m: {aus: fake_panel(labels, seed) for aus, seed in (("noaus", 1), ("aus", 2))} for m in ("cam", "wildcat")}
    faces, cams, preds = gallery_grid(panels)
    assert faces.sample_id == [f"s{i}" for i in range(len(AU_CLASSES))] and list(faces.label) == list(AU_CLASSES)
    assert list(cams) == ["cam w/o AUs", "cam with AUs", "wildcat w/o AUs", "wildcat with AUs"]
    assert np.array_equal(cams["wildcat with AUs"], panels["wildcat"]["aus"].cam[: len(AU_CLASSES)])
    assert preds["cam w/o AUs"][0] == LABELS[(AU_CLASSES[0] + 1) % len(LABELS)]

    assert write_gallery(panels, tmp_path / "gallery.png", tmp_path / "strip.png")
    img, strip = mpimg.imread(tmp_path / "gallery.png"), mpimg.imread(tmp_path / "strip.png")
    assert img.shape[:2] == grid_px(len(AU_CLASSES), 2 + 4) and img[..., :3].var() > 0.01
    assert strip.shape[:2] == grid_px(1, 2 + 4)
    write_gallery(panels, tmp_path / "again.png")
    assert filecmp.cmp(tmp_path / "again.png", tmp_path / "gallery.png", shallow=False)  # equal inputs, equal bytes
    assert "![gallery](figures/gallery.png)" in gallery_section("figures/gallery.png")


def test_gallery_keeps_faces_every_run_has() -> None:
    """A face missing from one run is replaced by the class's next shared face; a class with none is left out."""
    labels = [AU_CLASSES[0], AU_CLASSES[0], AU_CLASSES[1]]
    full = fake_panel(labels, 1)
    partial = fake_panel(labels[1:], 2, ids=["s1", "s2"])
    faces, cams, _ = gallery_grid({"cam": {"noaus": full, "aus": partial}})
    assert faces.sample_id == ["s1", "s2"] and [c.shape for c in cams.values()] == [(2, 8, 8), (2, 8, 8)]
    assert gallery_grid({"cam": {"noaus": full, "aus": fake_panel([AU_CLASSES[2]], 3, ids=["x"])}}) is None
    assert not write_gallery({}, Path("never-written.png"))


def test_docs_show_the_reports_gallery() -> None:
    """docs/assets/ holds docs/make_gallery.py's copies of the report's gallery (once the report stage has drawn it)."""
    report = ROOT / "reports" / "figures" / "gallery.png"
    if not report.is_file():
        pytest.skip("reports/figures/gallery.png not drawn yet: `dvc repro report`, then `python docs/make_gallery.py`")
    for name in ("gallery.png", "gallery-strip.png"):
        assert filecmp.cmp(ROOT / "reports" / "figures" / name, ROOT / "docs" / "assets" / name, shallow=False), (
            f"docs/assets/{name} differs from the report's: run python docs/make_gallery.py"
        )


def test_make_gallery_copies_a_table1_checkouts_gallery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`docs/make_gallery.py --table1 DIR` copies DIR's gallery (the eleven methods) beside the demo's, byte for byte;
    a checkout that has not run the preset is an error naming the file."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_gallery", ROOT / "docs" / "make_gallery.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    figures = tmp_path / "demo" / "reports" / "figures"
    figures.mkdir(parents=True)
    for name in module.NAMES:
        (figures / name).write_bytes(name.encode())
    table1 = tmp_path / "t1" / "reports" / "figures"
    table1.mkdir(parents=True)
    (table1 / "gallery.png").write_bytes(b"eleven methods")
    monkeypatch.setattr(module, "SOURCE", figures)
    monkeypatch.setattr(module, "OUT", tmp_path / "assets")
    (tmp_path / "assets").mkdir()
    assert module.main(["--table1", str(tmp_path / "nowhere")]) == 1
    assert module.main(["--table1", str(tmp_path / "t1")]) == 0
    assert (tmp_path / "assets" / module.TABLE1).read_bytes() == b"eleven methods"
    assert (tmp_path / "assets" / "gallery.png").read_bytes() == b"gallery.png"
