"""Border fraction of framed faces: the share of each framed frame that lies outside the photo (where the warp has
to invent pixels: black under `align.border: constant`), for `align.mode` none / similarity / rigid, side by side.

    python benchmarks/align_border.py [--n 300]

Sets: crops as tight as real 48 px datasets ship (synthetic faces at face_scale 0.9-0.95, the central 80 % kept, so
the head is 1.12-1.19 x the frame, resized to 48 px; framed at 48 px), and photo-style frames (`synthetic.canvas:
224`, framed at 112 px). Cheap: no training; the masks are warped exactly as the faces are.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from fer_pipeline.align.warp import Alignment, framing_matrix, map_points, warp
from fer_pipeline.data.photo import paste_in_canvas
from fer_pipeline.data.synthetic import SyntheticConfig, make_sample

DEMO = SyntheticConfig(size=112, intensity=(0.8, 1.6), face_scale=(0.78, 0.88), roll=4.0, shift=0.3)
TIGHT = SyntheticConfig(size=112, intensity=(0.8, 1.6), face_scale=(0.9, 0.95), roll=4.0, shift=0.3)


def tight(i: int) -> tuple[np.ndarray, np.ndarray]:
    """A 48 px crop whose head is 1.12-1.19 x the frame, and its landmarks."""
    s = make_sample(0, i, i % 7, "train", TIGHT)
    a, side = 11, 90  # central 80 % of 112 px
    img = cv2.resize(s.image[a : a + side, a : a + side], (48, 48), interpolation=cv2.INTER_AREA)
    return img, (s.landmarks - a) * (48 / side)


def photo(i: int) -> tuple[np.ndarray, np.ndarray]:
    """A 224 px photo-style frame with the face pasted off-centre, and its landmarks."""
    s = make_sample(0, i, i % 7, "train", DEMO)
    img, pts, _ = paste_in_canvas(s.image, s.landmarks, 224, np.random.default_rng([0, i, 1]))
    return img, pts


def measure(get, n: int, size: int) -> None:  # noqa: ANN001 -- a face source above
    for mode in ("none", "similarity", "rigid"):
        al = Alignment(mode, 0.83, size, "constant")
        border, iod = [], []
        for i in range(n):
            img, pts = get(i)
            m, _ = framing_matrix(pts, img.shape[:2], al)
            inside = warp(np.full(img.shape, 255, np.uint8), m, size, "constant")[..., 0] if mode != "none" else None
            border.append(0.0 if inside is None else float((inside < 128).mean()))
            p = map_points(pts, m)
            iod.append(float(np.linalg.norm(p[36:42].mean(0) - p[42:48].mean(0))))
        b = np.asarray(border)
        print(f"  {mode:10s} border fraction median {np.median(b):.3f}, p90 {np.percentile(b, 90):.3f}; "
              f"inter-ocular distance median {np.median(iod):.1f} px of {size}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    n = ap.parse_args().n
    print(f"tight 48 px crops ({n} faces, framed at 48 px, template 0.83):")
    measure(tight, n, 48)
    print(f"photo-style frames ({n} faces, canvas 224, framed at 112 px, template 0.83):")
    measure(photo, n, 112)


if __name__ == "__main__":
    main()
