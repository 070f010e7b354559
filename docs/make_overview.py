"""The front page's figure: a face with its AU map, its CAM without AUs and its CAM with AUs (docs/assets/overview.png).

    python docs/make_overview.py            # after `make repro` (it reads reports/figures/cam-samples.png)

It cuts three panels out of the committed report figure (one test face per AU class; columns: face + AU map, CAM and
attention without AUs, CAM and attention with AUs) so the figure always shows the committed baseline's model. Panels
are found by their black frames, not by fixed pixel offsets, so a change of the report's layout that keeps the frames
still works; one that does not stops with an error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "reports" / "figures" / "cam-samples.png"
OUT = ROOT / "docs" / "assets" / "overview.png"
#: Columns of the report figure kept, with their titles here.
PANELS = ((0, "a face and its AU map"), (1, "CAM without AUs (λ = 0)"), (3, "CAM with AUs (λ = 4)"))


def frames(dark: np.ndarray, axis: int) -> list[tuple[int, int]]:
    """(start, end) pixel pairs of the panel frames along one axis: lines that are dark over half the image."""
    lines = np.flatnonzero(dark.mean(axis=axis) > 0.5)
    runs = [int(g[0]) for g in np.split(lines, np.flatnonzero(np.diff(lines) > 1) + 1) if g.size]
    if len(runs) % 2:
        raise ValueError(f"{SOURCE.name}: found {len(runs)} frame lines along axis {axis}, expected pairs")
    return [(runs[i], runs[i + 1]) for i in range(0, len(runs), 2)]


def panels(image: np.ndarray, row: int) -> list[np.ndarray]:
    """The kept panels (inside their frames) of one row of the report figure."""
    dark = image[..., :3].mean(axis=-1) < 0.15
    cols, rows = frames(dark, 0), frames(dark, 1)
    if row >= len(rows) or max(c for c, _ in PANELS) >= len(cols):
        raise ValueError(f"{SOURCE.name}: {len(rows)} rows x {len(cols)} columns of panels; cannot take row {row}")
    (y0, y1) = rows[row]
    return [image[y0 + 2 : y1 - 1, cols[c][0] + 2 : cols[c][1] - 1, :3] for c, _ in PANELS]


def render(source: Path, out: Path, row: int) -> None:
    """Write the three-panel figure of report row `row` (0 = happiness, the first AU class)."""
    from fer_pipeline.core.labels import AU_CLASSES, LABELS

    crops = panels(plt.imread(source), row)
    fig, axes = plt.subplots(1, len(crops), figsize=(2.2 * len(crops), 2.5), dpi=100)
    for ax, crop, (_, title) in zip(axes, crops, PANELS, strict=True):
        ax.imshow(crop)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle(f"test face, class {LABELS[AU_CLASSES[row]]} (demo model)", fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, metadata={"Software": None})
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, default=SOURCE, help="the report's sample figure (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=OUT, help="PNG to write (default: %(default)s)")
    parser.add_argument("--row", type=int, default=0, help="which AU class's face: 0 happiness ... 5 sadness (default 0)")
    args = parser.parse_args(argv)
    render(args.source, args.out, args.row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
