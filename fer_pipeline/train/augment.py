"""Joint image + AU-map augmentation on top of the model's input contract (`fer_pipeline.inputs`): ONE cv2 affine warp
(the map rides as a 4th image channel), then colour jitter in the float pass that normalises; drawn from a
per-(seed, epoch, sample) RNG. Where the crop or rotation leaves the image, the image is filled as `align.border` says
(replicate | reflect | constant black) and the AU map always with 0: the map has no AU outside the face.

Why not torchvision.transforms.v2: its crop → rotate → flip chain costs ~10 ms a 112 px sample on one thread and
10x that when torch's intra-op threads fight other processes for 2 cores (BENCHMARKS.md, "Training step"); this
costs ~0.3 ms. The draw is a pure function of (seed, epoch, sample index), so a sample gets the same augmentation
whatever the number of DataLoader workers or DDP processes.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from fer_pipeline.align.warp import BORDERS, LEGACY_BORDER
from fer_pipeline.inputs.tensor import Colour

#: RandomResizedCrop-style area and aspect ranges, rotation (degrees), flip probability, colour jitter strengths.
CROP_SCALE = (0.75, 1.0)
CROP_RATIO = (0.9, 1.1)
DEGREES = 10.0
FLIP_P = 0.5
BRIGHTNESS, CONTRAST, SATURATION = 0.3, 0.3, 0.2
_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601, as torchvision's rgb_to_grayscale


@dataclass(frozen=True)
class Draw:
    """One sample's augmentation: crop box in unit coordinates, rotation, flip, and jitter factors in applied order."""

    box: tuple[float, float, float, float]  # x0, y0, w, h as fractions of the source image
    angle: float  # degrees, counter-clockwise as seen on screen
    flip: bool
    jitter: tuple[tuple[str, float], ...]  # ("brightness" | "contrast" | "saturation", factor), in order


def sample_rng(seed: int, epoch: int, index: int) -> random.Random:
    """The RNG of one sample in one epoch (independent of workers, ranks and the order samples are visited).

    `random.Random` seeded with a string (hashed with SHA-512, the same in every process): ~10x cheaper to create
    than a NumPy Generator, which matters once per sample.
    """
    return random.Random(f"fer-augment:{int(seed)}:{int(epoch)}:{int(index)}")


def draw(rng: random.Random) -> Draw:
    """Random crop (area CROP_SCALE, aspect CROP_RATIO), rotation ±DEGREES, flip, colour jitter in a random order."""
    area = rng.uniform(*CROP_SCALE)
    ratio = math.exp(rng.uniform(math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1])))
    w, h = min(1.0, math.sqrt(area * ratio)), min(1.0, math.sqrt(area / ratio))
    x0, y0 = rng.uniform(0.0, 1.0 - w), rng.uniform(0.0, 1.0 - h)
    angle = rng.uniform(-DEGREES, DEGREES)
    flip = rng.random() < FLIP_P
    factors = [
        ("brightness", rng.uniform(1 - BRIGHTNESS, 1 + BRIGHTNESS)),
        ("contrast", rng.uniform(1 - CONTRAST, 1 + CONTRAST)),
        ("saturation", rng.uniform(1 - SATURATION, 1 + SATURATION)),
    ]
    rng.shuffle(factors)
    return Draw((x0, y0, w, h), angle, flip, tuple(factors))


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


def warp(src: np.ndarray, m: np.ndarray, out_size: int, border: str = LEGACY_BORDER) -> np.ndarray:
    """Bilinear warp of `src` (H,W[,C]) by forward matrix `m` into (out_size, out_size[,C]); outside filled as `border`
    (`align.border`: replicate | reflect | constant 0)."""
    return cv2.warpAffine(src, m, (out_size, out_size), flags=cv2.INTER_LINEAR, borderMode=BORDERS[border], borderValue=0)


def jitter_coefficients(d: Draw, channel_means: Sequence[float]) -> tuple[float, float, float]:
    """(a, b, c) with jittered x = a·x + b·grey(x) + c for every RGB channel: the draw's brightness / contrast /
    saturation composed in order (each has that form, and so has their composition).

    Brightness scales (a = f), saturation blends with the pixel's grey (ITU-R 601 luma; a = f, b = 1 − f), contrast
    blends with the image's mean grey (a = f, c = (1 − f)·mean). Exact except that torchvision also clamps to
    [0, 255] between the steps.
    """
    grey_mean = float(_LUMA @ np.asarray(channel_means, np.float64)[:3])
    a, b, c = 1.0, 0.0, 0.0
    for name, f in d.jitter:
        current = (a + b) * grey_mean + c  # mean grey after the steps so far (grey(1) = 1)
        if name == "brightness":
            a, b, c = f * a, f * b, f * c
        elif name == "saturation":
            a, b, c = f * a, f * b + (1.0 - f) * (a + b), f * c + (1.0 - f) * c
        else:
            a, b, c = f * a, f * b, f * c + (1.0 - f) * current
    return a, b, c


def colour_jitter(d: Draw) -> Colour:
    """The draw's colour jitter as an in-place change of float32 (3,H,W) planes in [0, 255] (for `to_tensor_planes`):
    x → a·x + b·grey(x) + c with the draw's coefficients from the planes' channel means, clamped to [0, 255]."""

    def apply(out: np.ndarray) -> None:
        a, b, c0 = jitter_coefficients(d, out.mean(axis=(1, 2), dtype=np.float64))
        grey = out[0] * np.float32(b * _LUMA[0])
        grey += out[1] * np.float32(b * _LUMA[1])
        grey += out[2] * np.float32(b * _LUMA[2])
        grey += np.float32(c0)
        out *= np.float32(a)
        out += grey
        np.clip(out, 0.0, 255.0, out=out)

    return apply


def geometry(x: np.ndarray, d: Draw, out_size: int, border: str = LEGACY_BORDER) -> np.ndarray:
    """The draw's crop → rotate → flip of an (H,W[,C]) uint8 array into (out_size, out_size[,C]): channels 0-2 (the
    image) filled outside as `border` says, any further channel (the AU map) with 0, whatever `border` says."""
    m = affine(d, x.shape[:2], out_size)
    out = warp(x, m, out_size, border)
    if border != "constant" and x.ndim == 3 and x.shape[2] > 3:  # the map has no AU outside the image: 0, not an echo
        out[..., 3:] = warp(np.ascontiguousarray(x[..., 3:]), m, out_size).reshape(out.shape[:2] + (-1,))
    return out


@dataclass(frozen=True)
class Augmentation:
    """Training's augmentation for `fer_pipeline.inputs.FERDataset(augment=...)`: the draw of a row in an epoch is a
    function of `seed`, the epoch and the row (the same in every DataLoader worker and DDP process). `border`: the fill
    of the image outside the crop and rotation (`align.border`; the AU map gets 0 there)."""

    seed: int = 0
    border: str = LEGACY_BORDER

    def __post_init__(self) -> None:
        if self.border not in BORDERS:
            raise ValueError(f"align.border={self.border!r} unknown; valid: {', '.join(BORDERS)}")

    def draw(self, epoch: int, index: int) -> Draw:
        """Row `index`'s draw in `epoch`."""
        return draw(sample_rng(self.seed, epoch, index))

    def geometry(self, x: np.ndarray, d: Draw, out_size: int) -> np.ndarray:
        """The draw's crop → rotate → flip (image and map as one array; the map's fill is 0)."""
        return geometry(x, d, out_size, self.border)

    def colour(self, d: Draw) -> Colour:
        """The draw's colour jitter."""
        return colour_jitter(d)
