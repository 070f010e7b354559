"""`align.mode: auto`: the framing a dataset's faces need, read from its own landmarks. Tight crops (the head about as
tall as the frame or taller) keep their scale under `rigid`; photos with a small face are brought to the template by
`similarity`. The decision is a pure function of the landmark store (numpy + h5py, no torch)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fer_pipeline.align.warp import MODES
from fer_pipeline.landmarks.store import USABLE, open_landmark_store

AUTO = "auto"
#: What `align.mode` accepts: a concrete mode, or `auto` (resolved by the `align` stage to one of AUTO_PICKS).
CHOICES = (*MODES, AUTO)
#: Median head height / image side at and above which `auto` picks `rigid` (below: `similarity`). Measured
#: (`benchmarks/align_auto.py`, 2,000 faces a set): tight 48 px crops 1.14, the demo's aligned crops 0.83, photo-style
#: frames (a demo face in a 224 px scene) 0.41; 0.6 is about the geometric mean of the photo frames and the 0.83
#: template. Below it the template enlarges the face with no border (photo set, CL w/o -> w/ AUs: similarity
#: 58.40 -> 97.24 %, none 19.30 -> 62.66 %); above it the crop is the face, and the template can only zoom it out and
#: fill the frame from outside the photo (tight set: similarity 52.38 -> 94.99 %, rigid 95.74 -> 98.25 %).
TIGHT_HEAD = 0.6
#: The modes `auto` resolves to.
AUTO_PICKS = ("similarity", "rigid")
#: Landmark-store rows read at a time (memory does not grow with N).
BLOCK_ROWS = 65536


@dataclass(frozen=True)
class Framing:
    """A dataset's measured framing: median head height / image side over `rows` usable rows, and auto's pick."""

    head_height: float
    rows: int

    @property
    def pick(self) -> str:
        """The mode `auto` resolves to (`pick_mode`)."""
        return pick_mode(self.head_height)

    def to_attrs(self) -> dict[str, Any]:
        """The aligned store's attributes (rounded: equal landmarks give equal bytes on every machine)."""
        return {"framing_head_height": round(float(self.head_height), 4), "framing_rows": int(self.rows),
                "framing_auto": self.pick}

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> Framing | None:
        """From an aligned store's attributes; None for a store written without them (`mode: none`, older stores)."""
        if "framing_head_height" not in attrs:
            return None
        return cls(float(attrs["framing_head_height"]), int(attrs["framing_rows"]))


def pick_mode(head_height: float) -> str:
    """`rigid` for tight crops (median head height / image side >= TIGHT_HEAD), else `similarity`."""
    return "rigid" if float(head_height) >= TIGHT_HEAD else "similarity"


def head_heights(points: np.ndarray, image_size: np.ndarray) -> np.ndarray:
    """(N,) head height / image side of (N, 68, 2) landmarks in images of (N, 2) H, W: brows' top (jaw ends raised
    1.22 inter-ocular distances, as `face_geometry.place_face` and so the template measure it) to chin, along the
    face's own vertical axis (roll-free), over the long side (the scale `rigid` keeps). NaN where not measurable."""
    p = np.asarray(points, np.float64).reshape(-1, 68, 2)
    side = np.asarray(image_size, np.float64).reshape(-1, 2).max(axis=1)
    eyes = (p[:, 42] + p[:, 45] - p[:, 36] - p[:, 39]) / 2  # right eye centre -> left eye centre (`face_frame`)
    iod = np.hypot(eyes[:, 0], eyes[:, 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        ey = np.stack([-eyes[:, 1], eyes[:, 0]], axis=1) / iod[:, None]  # the face's "down" axis
        top = np.einsum("nk,nk->n", (p[:, 0] + p[:, 16]) / 2, ey) - 1.22 * iod
        out = (np.einsum("nk,nk->n", p[:, 8], ey) - top) / side
    ok = np.isfinite(p).all(axis=(1, 2)) & (side > 0) & (iod > 0) & np.isfinite(out)
    return np.where(ok, out, np.nan)


def measure_framing(points: np.ndarray, image_size: np.ndarray, status: np.ndarray) -> Framing | None:
    """The median framing over the rows with usable landmarks (status in USABLE, finite points); None when there are none."""
    usable = np.isin(np.asarray(status, np.uint8), [int(u) for u in USABLE])
    h = head_heights(np.asarray(points)[usable], np.asarray(image_size)[usable])
    h = h[np.isfinite(h)]
    return Framing(float(np.median(h)), int(h.size)) if h.size else None


def landmark_framing(path: str | Path) -> Framing | None:
    """`measure_framing` of a landmark store, read in blocks; None when no row has usable landmarks."""
    heights = []
    with open_landmark_store(path) as f:
        n = int(f["status"].shape[0])
        for a in range(0, n, BLOCK_ROWS):
            rows = slice(a, min(n, a + BLOCK_ROWS))
            status = f["status"][rows]
            usable = np.isin(status, [int(u) for u in USABLE])
            if usable.any():
                h = head_heights(f["landmarks"][rows][usable], f["image_size"][rows][usable])
                heights.append(h[np.isfinite(h)])
    h = np.concatenate(heights) if heights else np.zeros(0)
    return Framing(float(np.median(h)), int(h.size)) if h.size else None


def resolve_mode(mode: str, framing: Framing | None, where: str | Path) -> str:
    """The concrete mode of `align.mode`: itself, or for `auto` the framing's pick (a clear error without one)."""
    if mode not in CHOICES:
        raise ValueError(f"align.mode={mode!r} unknown; valid: {', '.join(CHOICES)}")
    if mode != AUTO:
        return mode
    if framing is None:
        raise ValueError(
            f"align.mode auto: landmark store {where} has no row with usable landmarks, so the faces' framing cannot be "
            "measured; check the landmarks (`fer landmarks qa`, landmarks.backend) or set align.mode to none, rigid or "
            "similarity in params.yaml"
        )
    return framing.pick


def describe(requested: str, mode: str, framing: Framing | None) -> str:
    """One line on the choice: "align.mode auto → rigid: median head height 0.91 of the frame (…)"."""
    if framing is None:
        return f"align.mode {mode}"
    measured = (f"median head height {framing.head_height:.2f} of the frame over {framing.rows} faces "
                f"(rigid at {TIGHT_HEAD:g} and above, similarity below)")
    if requested == AUTO and framing.pick != mode:
        return f"align.mode auto picks {framing.pick} ({measured}), but the store holds {mode}: rerun `dvc repro align`"
    if requested == AUTO:
        return f"align.mode auto → {mode}: {measured}"
    hint = "" if framing.pick == mode else f"; auto would pick {framing.pick}"
    return f"align.mode {mode}: {measured}{hint}"
