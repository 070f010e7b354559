"""AU maps off the image: rows that lose their map under the reach rule (a region counts only if it reaches the
frame), measured side by side with the old rule (any Gaussian tail on the grid) on synthetic sets, in one run.

    python benchmarks/aumap_reach.py [--n 700]

Sets: the demo's framing (params.yaml `synthetic`), photo-style frames (`synthetic.canvas: 224`), crops as tight as
real 48 px datasets ship (head height 1.12-1.19 x the frame: jaw and brows leave it), and a stress set: demo faces
moved by up to one frame side (a misplaced detection). Prints rows with a map under each rule and rows whose uint8
map bytes changed. Prints rows with a map under each rule, and whether the
demo's uint8 maps are byte-identical.
"""

from __future__ import annotations

import argparse
from unittest import mock

import numpy as np

from fer_pipeline.aumaps import render
from fer_pipeline.aumaps.render import render_maps, to_uint8
from fer_pipeline.core.labels import NUM_CLASSES
from fer_pipeline.data.photo import paste_in_canvas
from fer_pipeline.data.synthetic import SyntheticConfig, make_sample

DEMO = SyntheticConfig(size=112, intensity=(0.8, 1.6), face_scale=(0.78, 0.88), roll=4.0, shift=0.3)  # params.yaml
TIGHT = SyntheticConfig(size=112, intensity=(0.8, 1.6), face_scale=(0.9, 0.95), roll=4.0, shift=0.3)
#: name -> (generator config, canvas side (0 = none), crop: the central fraction of the frame kept, shift: max move
#: of the face in frame sides)
SETS = {
    "demo (face_scale 0.78-0.88)": (DEMO, 0, 1.0, 0.0),
    "photo-style (synthetic.canvas 224)": (DEMO, 224, 1.0, 0.0),
    "tight crops (face_scale 0.9-0.95, central 80 % kept: 1.12-1.19)": (TIGHT, 0, 0.8, 0.0),
    "stress: demo faces moved up to 1 frame side": (DEMO, 0, 1.0, 1.0),
}


def faces(cfg: SyntheticConfig, canvas: int, crop: float, shift: float, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n,68,2) landmarks, (n,2) image sizes and labels of n generated faces (classes in turn). `crop` < 1 keeps the
    central part of each frame (the generator stops at face_scale 0.95; maps do not depend on the pixel size)."""
    labels = np.arange(n) % NUM_CLASSES
    pts = np.empty((n, 68, 2), np.float32)
    for i in range(n):
        s = make_sample(0, i, int(labels[i]), "train", cfg)
        pts[i] = s.landmarks
        if canvas:
            _, pts[i], _ = paste_in_canvas(s.image, s.landmarks, canvas, np.random.default_rng([0, i, 1]))
    side = canvas or cfg.size
    if crop < 1:
        kept = round(side * crop)
        pts -= np.float32((side - kept) / 2)
        side = kept
    pts += (np.random.default_rng(1).uniform(-shift, shift, (n, 1, 2)) * side).astype(np.float32)
    return pts, np.tile([side, side], (n, 1)), labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=700)
    n = ap.parse_args().n
    for name, (cfg, canvas, crop, shift) in SETS.items():
        pts, hw, labels = faces(cfg, canvas, crop, shift, n)
        new, has_new = render_maps(pts, hw, labels)
        with mock.patch.object(render, "reaches", lambda c, *a: np.ones(c.shape[:2], bool)):  # the old rule
            old, has_old = render_maps(pts, hw, labels)
        changed = int((to_uint8(new) != to_uint8(old)).any(axis=(1, 2)).sum())
        print(f"{name}: {n} rows, with a map: old rule {int(has_old.sum())}, reach rule {int(has_new.sum())} "
              f"(lost {int((has_old & ~has_new).sum())}); rows whose map bytes changed: {changed}")


if __name__ == "__main__":
    main()
