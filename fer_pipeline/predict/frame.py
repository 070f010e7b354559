"""Per image: read it, find the face and its 68 landmarks (the pipeline's own dlib68 detector chain), and frame it as
the model's training faces were framed (`align.model_input` with the alignment model.pt records: the one framing the
`align` stage, training, evaluation and `fer explain` use); every failure is a status with a reason, never an exception."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fer_pipeline.align import Alignment, map_points, model_input
from fer_pipeline.data.affectnet import BOX_COLUMNS
from fer_pipeline.data.images import ImageError, read_image
from fer_pipeline.landmarks.dlib68 import Dlib68Config, dataset_box, load
from fer_pipeline.landmarks.store import Status

#: Row statuses of `fer predict` (the CSV's `status` column): a prediction exists for OK and FALLBACK only.
OK, FALLBACK, NO_FACE, BAD_IMAGE = "ok", "fallback", "no_face", "bad_image"
STATUSES = (OK, FALLBACK, NO_FACE, BAD_IMAGE)


@dataclass(frozen=True)
class FrameConfig:
    """How a photo becomes the model's input: the detector chain, the model's alignment and its input side."""

    detector: Dlib68Config = field(default_factory=Dlib68Config)
    alignment: Alignment = field(default_factory=Alignment)
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
    face, matrix = model_input(rgb, photo_points, cfg.alignment, cfg.input_size, box_xywh)
    return Framed(
        OK if status == Status.OK else FALLBACK,
        "" if status == Status.OK else "face found by a fallback step",
        face=face,
        points=map_points(photo_points, matrix),
        photo_points=photo_points,
        matrix=matrix,
        photo_hw=rgb.shape[:2],
    )


def frame_rows(rows: pd.DataFrame, cfg: FrameConfig) -> list[Framed]:
    """`frame_row` over a block of input rows (one joblib task; the worker loads the landmark model once)."""
    boxes = rows[list(BOX_COLUMNS)].to_numpy(dtype=np.float64)
    return [frame_row(str(p), b if np.isfinite(b).all() else None, cfg) for p, b in zip(rows["path"], boxes, strict=True)]
