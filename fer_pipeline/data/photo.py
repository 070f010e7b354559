"""Photo-style synthetic frames (`synthetic.canvas`): a generated face pasted small and off-centre into a larger scene,
its face box written to the manifest, as in a web photo with a dataset box (AffectNet) — what `align` is for."""

from __future__ import annotations

import cv2
import numpy as np


def scene(rng: np.random.Generator, side: int) -> np.ndarray:
    """uint8 (side, side, 3) smooth random scene: a coarse random colour grid upsampled, plus mild noise."""
    coarse = rng.uniform(20, 235, (4, 4, 3)).astype(np.float32)
    big = cv2.resize(coarse, (side, side), interpolation=cv2.INTER_CUBIC)
    return np.clip(big + rng.normal(0, 4, big.shape).astype(np.float32), 0, 255).astype(np.uint8)


def paste_in_canvas(
    image: np.ndarray, points: np.ndarray, canvas: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frame (canvas, canvas, 3), points moved with the face, box x y w h) for a square face image pasted at a
    uniformly drawn position of a `canvas` px scene (the face keeps its pixels: a smaller share of the frame)."""
    side = image.shape[0]
    if canvas <= side:
        raise ValueError(f"synthetic.canvas={canvas} must exceed synthetic.size={side} (0 = no canvas)")
    frame = scene(rng, canvas)
    x0, y0 = (int(v) for v in rng.integers(0, canvas - side + 1, 2))
    frame[y0 : y0 + side, x0 : x0 + side] = image
    return frame, (np.asarray(points, np.float32) + np.float32([x0, y0])), np.array([x0, y0, side, side], np.float64)
