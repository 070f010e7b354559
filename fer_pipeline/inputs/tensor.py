"""uint8 RGB planes → the normalised float32 (3,H,W) a model reads, and the AU map as a 4th channel (no torch)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np

#: Normalisation of timm's ImageNet weights (the default of every model here; model.pt records its own mean/std).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: An in-place change of the float (3,H,W) planes in [0, 255] before normalisation (training's colour jitter).
Colour = Callable[[np.ndarray], None]


def normalizer(mean: Sequence[float], std: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """(scale, shift) float32 (3,) with v·scale − shift = (v / 255 − mean) / std per channel."""
    m, sd = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    return np.float32(1.0 / 255.0) / sd, m / sd


def to_tensor_planes(
    planes: Sequence[np.ndarray], norm: tuple[np.ndarray, np.ndarray], colour: Colour | None = None
) -> np.ndarray:
    """uint8 R, G, B planes (H,W) → float32 (3,H,W): changed in place by `colour` if given (training's jitter), then
    normalised with `normalizer`'s (scale, shift). All in float32 on contiguous planes: no uint8 rounding between the
    steps, and no interleaved-pixel pass (6x faster than converting a transposed (H,W,3) view)."""
    out = np.empty((3, *planes[0].shape), dtype=np.float32)
    for c in range(3):
        out[c] = planes[c]
    if colour is not None:
        colour(out)
    out *= norm[0][:, None, None]
    out -= norm[1][:, None, None]
    return out


def faces_to_array(faces: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """(B,S,S,3) uint8 framed faces → normalised float32 (B,3,S,S), exactly as the evaluation path feeds the model."""
    norm = normalizer(mean, std)
    planes = [[np.ascontiguousarray(f[:, :, c]) for c in range(3)] for f in faces]
    return np.stack([to_tensor_planes(p, norm) for p in planes])


def with_map(rgb: np.ndarray, au_u8: np.ndarray) -> np.ndarray:
    """(S,S,4) uint8: the image with its AU map (stored uint8, any size covering the same frame) as a 4th channel,
    so that ONE warp moves both (a cv2.warpAffine call costs ~60 us whatever the size, more than a map's pixels)."""
    h, w = rgb.shape[:2]
    grid = au_u8 if au_u8.shape == (h, w) else cv2.resize(au_u8, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.dstack([rgb, grid])
