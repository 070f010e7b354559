"""Per image: read it, find the face and its 68 landmarks (the pipeline's own dlib68 detector chain), and frame it as
the model's training faces were framed; every failure is a status with a reason, never an exception."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import pandas as pd

from fer_pipeline.data.images import ImageError, read_image
from fer_pipeline.landmarks.dlib68 import Dlib68Config, dataset_box, load
from fer_pipeline.landmarks.store import Status

#: Row statuses of `fer predict` (the CSV's `status` column): a prediction exists for OK and FALLBACK only.
OK, FALLBACK, NO_FACE, BAD_IMAGE = "ok", "fallback", "no_face", "bad_image"
STATUSES = (OK, FALLBACK, NO_FACE, BAD_IMAGE)


@dataclass(frozen=True)
class FrameConfig:
    """How a photo becomes the model's input: the detector chain and the model's input side."""

    detector: Dlib68Config = field(default_factory=Dlib68Config)
    input_size: int = 112


@dataclass
class Framed:
    """One input row after framing: the face (S,S,3) uint8 and its 68 points in face pixels, or a status and reason."""

    status: str
    reason: str = ""
    face: np.ndarray | None = None
    points: np.ndarray | None = None  # (68,2) in the face's pixels
    photo_points: np.ndarray | None = None  # (68,2) in the photo's pixels
    matrix: np.ndarray | None = None  # 2x3: photo pixels -> face pixels
    photo_hw: tuple[int, int] = (0, 0)


def resize_square(rgb: np.ndarray, size: int) -> np.ndarray:
    """The whole image resized to the square input exactly as training and evaluation read a pre-aligned image."""
    h, w = rgb.shape[:2]
    if (h, w) == (size, size):
        return rgb
    return cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA if h > size or w > size else cv2.INTER_LINEAR)


def frame(rgb: np.ndarray, points: np.ndarray, cfg: FrameConfig) -> tuple[np.ndarray, np.ndarray]:
    """The model's input face (S,S,3) and the 2x3 photo -> face matrix. Without a detector (pre-aligned crops, as the
    pipeline trains on them) the whole image is resized; a detected face is cropped around its landmarks."""
    size = int(cfg.input_size)
    h, w = rgb.shape[:2]
    if cfg.detector.detector == "none":
        return resize_square(rgb, size), np.array([[size / w, 0.0, 0.0], [0.0, size / h, 0.0]])
    from fer_pipeline.explain import face_crop

    crop, (x0, y0, x1, _) = face_crop(rgb, points)
    s = size / float(x1 - x0)
    return resize_square(crop, size), np.array([[s, 0.0, -s * x0], [0.0, s, -s * y0]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N,2) points through a 2x3 affine matrix."""
    return (points @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def frame_row(path: str, box_xywh: np.ndarray | None, cfg: FrameConfig) -> Framed:
    """Read, detect, landmark and frame one image; any failure is returned as a status with its reason."""
    try:
        rgb = read_image(path)
    except ImageError as e:
        return Framed(BAD_IMAGE, str(e))
    model = load(cfg.detector)
    found, status = model.locate(rgb, dataset_box(box_xywh))
    if found is None:
        steps = ", ".join((cfg.detector.detector, *cfg.detector.fallback))
        return Framed(
            NO_FACE, f"{path}: no face found (tried {steps}; --fallback whole uses the whole image)", photo_hw=rgb.shape[:2]
        )
    photo_points = model.points(np.ascontiguousarray(rgb), found)
    face, matrix = frame(rgb, photo_points, cfg)
    return Framed(
        OK if status == Status.OK else FALLBACK,
        "" if status == Status.OK else "face found by a fallback step",
        face=face,
        points=apply(matrix, photo_points),
        photo_points=photo_points,
        matrix=matrix,
        photo_hw=rgb.shape[:2],
    )


def frame_rows(rows: pd.DataFrame, cfg: FrameConfig) -> list[Framed]:
    """`frame_row` over a block of input rows (one joblib task; the worker loads the landmark model once)."""
    boxes = rows[["box_x", "box_y", "box_w", "box_h"]].to_numpy(dtype=np.float64)
    return [frame_row(str(p), b if np.isfinite(b).all() else None, cfg) for p, b in zip(rows["path"], boxes, strict=True)]
