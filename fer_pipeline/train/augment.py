"""Joint image + AU-map augmentation as ONE affine warp per array (cv2), drawn from a per-(seed, epoch, sample) RNG.

Why not torchvision.transforms.v2: its crop → rotate → flip chain costs ~5 ms a 112 px sample on one thread and
10-25x that when torch's intra-op threads fight other processes for 2 cores (BENCHMARKS.md, "Training step"); the
composed warp costs ~0.3 ms and interpolates once. The draw is a pure function of (seed, epoch, sample index), so
the same sample gets the same augmentation whatever the number of DataLoader workers or DDP processes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

#: RandomResizedCrop-style area and aspect ranges, rotation (degrees), flip probability, colour jitter strengths.
CROP_SCALE = (0.75, 1.0)
CROP_RATIO = (0.9, 1.1)
DEGREES = 10.0
FLIP_P = 0.5
BRIGHTNESS, CONTRAST, SATURATION = 0.3, 0.3, 0.2


@dataclass(frozen=True)
class Draw:
    """One sample's augmentation: crop box in unit coordinates, rotation, flip, and jitter factors in applied order."""

    box: tuple[float, float, float, float]  # x0, y0, w, h as fractions of the source image
    angle: float  # degrees, counter-clockwise as seen on screen
    flip: bool
    jitter: tuple[tuple[str, float], ...]  # ("brightness" | "contrast" | "saturation", factor), in order


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The RNG of one sample in one epoch (independent of workers, ranks and the order samples are visited)."""
    return np.random.default_rng((int(seed) & 0xFFFFFFFF, int(epoch), int(index)))


def draw(rng: np.random.Generator) -> Draw:
    """Random crop (area CROP_SCALE, aspect CROP_RATIO), rotation ±DEGREES, flip, colour jitter in a random order."""
    area = rng.uniform(*CROP_SCALE)
    ratio = math.exp(rng.uniform(math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1])))
    w, h = min(1.0, math.sqrt(area * ratio)), min(1.0, math.sqrt(area / ratio))
    x0, y0 = rng.uniform(0.0, 1.0 - w), rng.uniform(0.0, 1.0 - h)
    angle = rng.uniform(-DEGREES, DEGREES)
    flip = bool(rng.random() < FLIP_P)
    factors = {
        "brightness": rng.uniform(1 - BRIGHTNESS, 1 + BRIGHTNESS),
        "contrast": rng.uniform(1 - CONTRAST, 1 + CONTRAST),
        "saturation": rng.uniform(1 - SATURATION, 1 + SATURATION),
    }
    order = rng.permutation(3)
    names = tuple(factors)
    return Draw((x0, y0, w, h), angle, flip, tuple((names[i], float(factors[names[i]])) for i in order))


def affine(d: Draw, src_hw: Sequence[int], out_size: int) -> np.ndarray:
    """2x3 forward matrix (source pixel → output pixel, pixel-centre convention) of crop → rotate → flip.

    Expressed through unit coordinates, so an image and its lower-resolution AU map covering the same frame get
    the same geometric transform.
    """
    h_src, w_src = float(src_hw[0]), float(src_hw[1])
    x0, y0, w, h = d.box
    s = float(out_size)
    # source pixel centre p → unit (p + 0.5) / n → crop frame → output continuous coords → output pixel index (-0.5)
    crop = np.array(
        [
            [s / (w * w_src), 0.0, s * (0.5 / w_src - x0) / w - 0.5],
            [0.0, s / (h * h_src), s * (0.5 / h_src - y0) / h - 0.5],
            [0.0, 0.0, 1.0],
        ]
    )
    c = (s - 1.0) / 2.0
    rot = np.vstack([cv2.getRotationMatrix2D((c, c), d.angle, 1.0), [0, 0, 1]])
    flip = np.array([[-1.0, 0.0, s - 1.0], [0.0, 1.0, 0.0], [0, 0, 1]]) if d.flip else np.eye(3)
    return (flip @ rot @ crop)[:2]


def warp(src: np.ndarray, m: np.ndarray, out_size: int) -> np.ndarray:
    """Bilinear warp of `src` (H,W[,C]) by forward matrix `m` into (out_size, out_size[,C]); outside → 0."""
    return cv2.warpAffine(src, m, (out_size, out_size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def jitter(rgb: np.ndarray, d: Draw) -> np.ndarray:
    """Brightness / contrast / saturation on uint8 RGB, saturating after each step (torchvision ColorJitter on uint8, no hue)."""
    x = np.ascontiguousarray(rgb)
    for name, f in d.jitter:
        if name == "brightness":
            x = cv2.addWeighted(x, f, x, 0.0, 0.0)
        elif name == "contrast":
            mean = cv2.mean(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY))[0]
            x = cv2.addWeighted(x, f, x, 0.0, (1.0 - f) * mean)
        else:
            grey = cv2.cvtColor(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
            x = cv2.addWeighted(x, f, grey, 1.0 - f, 0.0)
    return x


def normalizer(mean: Sequence[float], std: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """(scale, shift) float32 (3,1,1) with v·scale − shift = (v / 255 − mean) / std per channel."""
    m, sd = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    return (np.float32(1.0 / 255.0) / sd)[:, None, None], (m / sd)[:, None, None]


def to_chw(rgb: np.ndarray, norm: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """uint8 (H,W,3) → float32 (3,H,W) normalised with `normalizer`'s (scale, shift)."""
    x = rgb.transpose(2, 0, 1).astype(np.float32)
    x *= norm[0]
    x -= norm[1]
    return x


def augment(
    rgb: np.ndarray, au: np.ndarray | None, d: Draw, out_size: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Apply draw `d`: the same geometric warp to the image and (if given) its AU map, jitter to the image only.

    Returns the jittered image as uint8 (S,S,3) and the map as float32 (S,S) in [0,1].
    """
    img = warp(rgb, affine(d, rgb.shape[:2], out_size), out_size)
    out_map = None
    if au is not None:
        out_map = warp(np.asarray(au, dtype=np.float32), affine(d, au.shape[:2], out_size), out_size)
        np.clip(out_map, 0.0, 1.0, out=out_map)
    return jitter(img, d), out_map
