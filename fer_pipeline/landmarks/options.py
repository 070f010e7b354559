"""The choices of the face detection settings (`landmarks.*`, `fer predict`): plain constants, importable without cv2."""

from __future__ import annotations

#: Primary detectors (`landmarks.detector`); `none` uses the dataset's box, else the whole image (aligned crops).
DETECTORS = ("hog", "haar", "none")
#: Steps of `landmarks.fallback`, tried in order when the detector finds no face; a hit is recorded as status 3.
FALLBACKS = ("hog", "haar", "box", "whole")
#: Default long side (px) of the copy detectors search: faces from ~100 px in a 2000 px photo; 4.4x faster end to end there.
DETECT_MAX_SIDE = 800
