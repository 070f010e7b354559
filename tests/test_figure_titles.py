"""Figure titles stay inside the figure: a long sample id (or file name) is shrunk, then cut in the middle, never clipped."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from fer_pipeline.evaluate.figures import MIN_FONT, compare_figure, explain_figure, samples_figure

LONG_ID = "affectnet_train_subDirectory_0123_4f9a2c8e1b7d45e6a0c3_face_00017_aligned_crop"


def _texts(fig: Figure) -> list:
    """Every non-empty title of the figure (panel titles and the figure title)."""
    titles = [ax.title for ax in fig.axes] + ([fig._suptitle] if fig._suptitle is not None else [])
    return [t for t in titles if t.get_text()]


def _assert_inside(fig: Figure) -> list[str]:
    """Draw, then check every title's bbox against the figure's; the drawn title strings."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    for t in _texts(fig):
        ext = t.get_window_extent(renderer)
        assert ext.x0 >= box.x0 and ext.x1 <= box.x1 and ext.y0 >= box.y0 and ext.y1 <= box.y1, (t.get_text(), ext, box)
    return [t.get_text() for t in _texts(fig)]


def test_long_sample_id_title_lies_inside_the_figure() -> None:
    img, m = np.zeros((2, 32, 32, 3), np.uint8), np.zeros((2, 8, 8), np.float32)
    labels = [f"{LONG_ID}: happiness -> surprise", "s001: fear -> fear"]
    fig = samples_figure(img, m, m, m, labels, f"cam-aus: test samples of {LONG_ID}")
    titles = _assert_inside(fig)
    first = fig.axes[0].title
    assert first.get_text().startswith("affectnet_train") and first.get_text().endswith("-> surprise")
    assert "…" in first.get_text() and first.get_fontsize() == MIN_FONT  # shrunk first, then cut in the middle
    assert "s001: fear -> fear" in titles and fig.axes[4].title.get_fontsize() == 7  # a short title is left as it was
    # neighbouring panels' titles do not overlap either
    renderer = fig.canvas.get_renderer()
    row = [fig.axes[i].title.get_window_extent(renderer) for i in range(4)]
    assert all(a.x1 <= b.x0 for a, b in zip(row, row[1:], strict=False))


def test_compare_and_explain_titles_lie_inside_the_figure() -> None:
    img, m = np.zeros((1, 32, 32, 3), np.uint8), np.zeros((1, 8, 8), np.float32)
    fig = compare_figure(img, m, {"w/o AUs": (m, m), "w/ AUs": (m, m)}, [f"{LONG_ID}: anger -> anger"], "cam")
    _assert_inside(fig)
    photo, crop = np.zeros((64, 64, 3), np.uint8), np.zeros((32, 32, 3), np.uint8)
    title = f"{LONG_ID * 3}.jpg: happiness (97%) - no face found, whole image used"
    fig = explain_figure(photo, (0, 0, 63, 63), np.zeros((68, 2)), crop, None, m[0], m[0], title)
    assert fig._suptitle.get_text().endswith("whole image used")
    _assert_inside(fig)


@pytest.mark.parametrize("label", ["", "neutral (n=3)"])
def test_short_titles_are_unchanged(label: str) -> None:
    img, m = np.zeros((1, 32, 32, 3), np.uint8), np.zeros((1, 8, 8), np.float32)
    fig = samples_figure(img, m, m, m, [label], "short")
    assert fig.axes[0].title.get_text() == label and fig._suptitle.get_fontsize() == 9
