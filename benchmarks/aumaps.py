"""AU maps: the vectorised renderer vs a reference-style one (per image, per AU: cv2 filled ellipses at 224 px, down to
28×28, 3×3 box blur, back up, max-combine, min-max). Targets: ≥ 10× faster, same maps within tolerance, store ≤ 4 KB/image. Also
`aumaps.mode: active` (per-AU weights, one profile per region) beside codebook mode, as a ratio.

    python benchmarks/aumaps.py [--n 700] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np
from common import fmt, interleaved, machine, paired, summary

from fer_pipeline.aumaps.active import au_weights, render_active
from fer_pipeline.aumaps.anchors import au_regions, inter_ocular
from fer_pipeline.aumaps.render import render_maps, to_uint8
from fer_pipeline.aumaps.store import write_aumap_store
from fer_pipeline.aus.formats import AUS
from fer_pipeline.core.codebook import aus_for
from fer_pipeline.core.labels import NEUTRAL, NUM_CLASSES
from fer_pipeline.data.synthetic import SyntheticConfig, make_sample

CANVAS, LOW = 224, 28


def reference_maps(landmarks: np.ndarray, hw: np.ndarray, labels: np.ndarray, radius: float, size: int) -> np.ndarray:
    """The reference implementation's way: one canvas per AU per image, drawn, blurred at 28x28, combined by max."""
    out = np.zeros((len(labels), size, size), np.float32)
    for i, label in enumerate(labels):
        if label == NEUTRAL:
            continue
        sx, sy = CANVAS / hw[i, 1], CANVAS / hw[i, 0]
        r = radius * float(inter_ocular(landmarks[i])[0]) * sx
        regions = au_regions(landmarks[i], aus_for(int(label), "reference"))
        combined = np.zeros((CANVAS, CANVAS), np.float32)
        for centres in regions.values():
            canvas = np.zeros((CANVAS, CANVAS), np.float32)
            for x, y in centres[0]:
                cv2.ellipse(canvas, (round(x * sx), round(y * sy)), (round(r), round(r)), 0, 0, 360, 1.0, -1)
            low = cv2.blur(cv2.resize(canvas, (LOW, LOW), interpolation=cv2.INTER_AREA), (3, 3))
            np.maximum(combined, cv2.resize(low, (CANVAS, CANVAS), interpolation=cv2.INTER_LINEAR), out=combined)
        lo, hi = combined.min(), combined.max()
        combined = (combined - lo) / max(hi - lo, 1e-8)
        out[i] = cv2.resize(combined, (size, size), interpolation=cv2.INTER_AREA)
    return out


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-map cosine of flattened maps."""
    a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=700)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size", type=int, default=56)
    ap.add_argument("--radius", type=float, default=0.25)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    labels = np.arange(args.n) % NUM_CLASSES
    cfg = SyntheticConfig(size=112)
    pts = np.stack([make_sample(0, i, int(labels[i]), "train", cfg).landmarks for i in range(args.n)]).astype(np.float32)
    hw = np.tile([112, 112], (args.n, 1))

    res: dict[str, np.ndarray] = {}

    def ours() -> None:
        res["ours"] = render_maps(pts, hw, labels, size=args.size, radius=args.radius)[0]

    def reference() -> None:
        res["reference"] = reference_maps(pts, hw, labels, args.radius, args.size)

    intensity = np.random.default_rng(0).random((args.n, len(AUS))).astype(np.float32)  # some AUs at 0-ish, all weighted
    weights = au_weights(intensity, labels)

    def active() -> None:
        res["active"] = render_active(pts, hw, weights, size=args.size, radius=args.radius)[0]

    times = interleaved({"vectorised": ours, "reference-style": reference, "active": active}, args.repeats)
    med, low = summary(times, "reference-style", "vectorised")
    print(f"{args.n} faces, {args.size}x{args.size} maps, one process")
    print(fmt(times))
    verdict = "met" if med >= 10 else "NOT met"
    print(f"speed-up vectorised over reference-style: median {med:.1f}x, min {low:.1f}x  (target >= 10x: {verdict})")
    act = paired(times, "active", "vectorised")
    print(f"active mode (weighted regions) takes {act:.2f}x the codebook renderer's time (median paired ratio)")
    print(f"per face: active {min(times['active']) / args.n * 1e6:.1f} us, "
          f"vectorised {min(times['vectorised']) / args.n * 1e6:.1f} us, "
          f"reference-style {min(times['reference-style']) / args.n * 1e6:.1f} us")

    drawn = labels != NEUTRAL
    cos = cosines(res["ours"][drawn], res["reference"][drawn])
    mae = np.abs(res["ours"][drawn] - res["reference"][drawn]).mean()
    verdict = "met" if cos.min() >= 0.9 else "NOT met"
    print(f"same maps: cosine mean {cos.mean():.3f}, min {cos.min():.3f}; mean |diff| {mae:.3f}")
    print(f"  tolerance: cosine >= 0.9 on every map: {verdict}")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "aumaps.h5"
        has_map = drawn.copy()
        attrs = {"codebook": "reference", "size": args.size, "radius": args.radius, "smoothing": 0.5}
        write_aumap_store(path, [f"s{i:06d}" for i in range(args.n)], to_uint8(res["ours"]), has_map, attrs)
        per = path.stat().st_size / args.n
    raw = args.size * args.size
    verdict = "met" if per <= 4096 else "NOT met"
    print(f"store: {per:.0f} bytes per image ({raw} raw uint8, 1/7 neutral rows all zero)  (target <= 4 KB: {verdict})")
    print(f"machine after: {machine()}")


if __name__ == "__main__":
    main()
