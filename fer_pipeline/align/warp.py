"""One face framing for every use (the `align` stage, training, `fer explain`, batch prediction): a similarity
transform from five stable landmarks to a canonical template (or, for pre-cropped faces, a rotation and shift that
keeps the crop's scale and place), one warp whose border adds no edge (`align.border`), the 68 points mapped through the same
2x3 matrix. Pure numpy/cv2 functions (no torch, no files)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import IntEnum
from typing import Any

import cv2
import numpy as np

from fer_pipeline.data.face_geometry import anchor_points, template_anchors

#: `align.mode`: none (images used as they are: pre-aligned crops, the synthetic demo) | similarity (warp to the template)
#: | rigid (rotation only: the eyes levelled about the face centre, at the crop's own scale and place; pre-cropped faces).
#: params also accept `auto` (`framing.py`), which the `align` stage resolves to one of these.
MODES = ("none", "similarity", "rigid")
#: `align.border`: what fills the frame where the warp leaves the photo. replicate (the edge pixels extended: no edge,
#: no invented features) | reflect (mirrored content: a mirrored eye or jaw can appear) | constant (black: a hard edge).
BORDERS = {"replicate": cv2.BORDER_REPLICATE, "reflect": cv2.BORDER_REFLECT_101, "constant": cv2.BORDER_CONSTANT}
#: `border` of frames written before the key existed (their stores and model.pt records lack it).
LEGACY_BORDER = "constant"
#: Default `align.template`: head (brows' top .. chin) height / frame side, the demo's framing (mid `synthetic.face_scale`).
DEFAULT_TEMPLATE = 0.83
#: Least-squares weight of each anchor (eyes, eyes, nose tip, mouth corners): expressions move the mouth, not the eyes.
ANCHOR_WEIGHTS = np.array([1.0, 1.0, 0.5, 0.25, 0.25])
#: The constant written where the warp leaves the photo (black: the same for every row and every use).
BORDER_VALUE = (0, 0, 0)
#: Below this scale the face region is first shrunk with INTER_AREA (a bilinear warp alone aliases a large photo).
SHRINK_BELOW = 0.8


#: model.pt's config key holding the face alignment the model was trained with.
RECORD_KEY = "face_alignment"


class Fallback(IntEnum):
    """How a row was framed: from its landmarks, the dataset's face box, the whole image, or not at all (unreadable)."""

    LANDMARKS = 0
    BOX = 1
    WHOLE = 2
    NONE = 3


@dataclass(frozen=True)
class Alignment:
    """How faces are framed (params `align.*`; what model.pt records): `mode`, `template` (head height / frame side,
    where the eyes and mouth land), `size` (output side in px) and `border` (the fill outside the photo; `none` warps
    nothing, so its border is always the legacy value: its stores and records keep their bytes)."""

    mode: str = "none"
    template: float = DEFAULT_TEMPLATE
    size: int = 112
    border: str = LEGACY_BORDER

    def __post_init__(self) -> None:
        if self.mode == "auto":
            raise ValueError("align.mode auto is resolved by the `align` stage: read the concrete alignment with "
                             "fer_pipeline.align.store.resolve_alignment (or stage_inputs), after `dvc repro align`")
        if self.mode not in MODES:
            raise ValueError(f"align.mode={self.mode!r} unknown; valid: {', '.join(MODES)} or auto")
        if self.border not in BORDERS:
            raise ValueError(f"align.border={self.border!r} unknown; valid: {', '.join(BORDERS)}")
        if self.mode == "none":
            object.__setattr__(self, "border", LEGACY_BORDER)
        if not 0.2 <= float(self.template) <= 1.5:
            raise ValueError(f"align.template={self.template!r} (head height / frame side) must be in [0.2, 1.5]")
        if int(self.size) < 16:
            raise ValueError(f"align.size={self.size!r} must be >= 16 px")
        object.__setattr__(self, "template", float(self.template))
        object.__setattr__(self, "size", int(self.size))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able record (model.pt's `alignment`, the store's attributes); the legacy border is left out, so
        records written before `border` existed read back equal."""
        out = asdict(self)
        if self.border == LEGACY_BORDER:
            del out["border"]
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Alignment:
        """From params `align` or a model.pt record; None or {} (a model saved before alignment existed) is `none`."""
        d = dict(d or {})
        return cls(str(d.get("mode", "none")), float(d.get("template", DEFAULT_TEMPLATE)), int(d.get("size", 112)),
                   str(d.get("border", LEGACY_BORDER)))


def augment_border(align_params: Mapping[str, Any] | None) -> str:
    """The fill of training augmentation's crop and rotation: `align.border` in every mode (`none` too, where the
    alignment itself warps nothing), so that augmentation adds no edge the framed faces lack."""
    border = str(dict(align_params or {}).get("border", LEGACY_BORDER))
    if border not in BORDERS:
        raise ValueError(f"align.border={border!r} unknown; valid: {', '.join(BORDERS)}")
    return border


def model_alignment(config: Mapping[str, Any]) -> Alignment:
    """The alignment a model was trained with, from its model.pt config (`load_model`'s second value); a model saved
    before alignment existed was trained on the images as they are: `none`."""
    return Alignment.from_dict(config.get(RECORD_KEY))


def alignment_notes(alignment: Alignment | Mapping[str, Any] | None, choice: str = "") -> list[str]:
    """The report's note on how the faces were framed (none for `mode: none`: the images as they are), led by `choice`
    (`framing.describe`: which mode and why, e.g. what `auto` measured)."""
    al = alignment if isinstance(alignment, Alignment) else Alignment.from_dict(alignment)
    if al.mode == "none":
        return []
    lead = f"{choice}. " if choice else ""
    if al.mode == "rigid":
        return [f"{lead}Faces framed by the `align` stage: each crop rotated to level the eyes (its own scale and place), "
                f"{al.border} border, {al.size} px; models, AU maps and metrics all use the framed faces."]
    return [f"{lead}Faces framed by the `align` stage: {al.mode} transform of eyes, nose tip and mouth corners onto the "
            f"template (head {al.template:g} of the frame), {al.border} border, {al.size} px; models, AU maps and metrics "
            "all use the framed faces."]


def template(alignment: Alignment) -> np.ndarray:
    """(5, 2) target anchors in output pixels (`face_geometry.template_anchors`: one place for the canonical face)."""
    return template_anchors(alignment.size, alignment.template)


def similarity(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """2x3 weighted least-squares similarity (rotation, uniform scale, shift; no reflection) taking src to dst, in
    closed form (Umeyama in complex numbers): deterministic, no RANSAC."""
    s, d = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    w = np.ones(len(s)) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum()
    zs, zd = s[:, 0] + 1j * s[:, 1], d[:, 0] + 1j * d[:, 1]
    ms, md = w @ zs, w @ zd
    cs, cd = zs - ms, zd - md
    var = float(w @ np.abs(cs) ** 2)
    if var <= 1e-12:
        raise ValueError("the anchor points coincide: no similarity transform")
    c = (w * np.conj(cs)) @ cd / var
    t = md - c * ms
    return np.array([[c.real, -c.imag, t.real], [c.imag, c.real, t.imag]])


def rigid(src: np.ndarray, image_hw: tuple[int, int], size: int, weights: np.ndarray) -> np.ndarray:
    """2x3 rotation levelling the src anchors' eye line, about their weighted centroid, which stays where `mode: none`
    puts it (the crop's own scale and place): the face is levelled without zooming or moving the crop."""
    s = np.asarray(src, np.float64)
    w = np.asarray(weights, np.float64) / np.sum(weights)
    h, wd = image_hw
    eye = s[1] - s[0]
    angle = -np.arctan2(eye[1], eye[0])
    k = size / max(h, wd)
    c, sn = k * np.cos(angle), k * np.sin(angle)
    rot = np.array([[c, -sn], [sn, c]])
    pivot = w @ s
    placed = (pivot + 0.5) * np.array([size / wd, size / h]) - 0.5  # `none`'s pixel-centre mapping of the pivot
    return np.column_stack([rot, placed - rot @ pivot])


def box_matrix(box_xywh: np.ndarray, size: int) -> np.ndarray:
    """2x3 scale + shift putting the square around a face box (x, y, w, h; side = the larger) on the size x size frame."""
    x, y, w, h = (float(v) for v in box_xywh)
    k = size / max(w, h)
    cx, cy, c = x + (w - 1) / 2, y + (h - 1) / 2, (size - 1) / 2
    return np.array([[k, 0.0, c - k * cx], [0.0, k, c - k * cy]])


def usable_box(box_xywh: np.ndarray | None) -> bool:
    """A dataset face box that can frame a face (finite, positive width and height)."""
    if box_xywh is None:
        return False
    b = np.asarray(box_xywh, np.float64).reshape(-1)
    return b.size == 4 and bool(np.isfinite(b).all()) and b[2] >= 1 and b[3] >= 1


def framing_matrix(
    points68: np.ndarray | None, image_hw: tuple[int, int], alignment: Alignment, box_xywh: np.ndarray | None = None
) -> tuple[np.ndarray, Fallback]:
    """(2x3 image->frame matrix, how it was found): the landmarks' anchors on the template; where the points are missing
    or not finite, the dataset box; else the whole image. `mode: none` is the training loader's plain square resize."""
    h, w = (int(v) for v in image_hw)
    s = alignment.size
    if alignment.mode == "none":  # cv2.resize's pixel-centre mapping: x' = (x + 0.5) * s / w - 0.5
        return np.array([[s / w, 0.0, 0.5 * s / w - 0.5], [0.0, s / h, 0.5 * s / h - 0.5]]), Fallback.WHOLE
    if points68 is not None:
        pts = np.asarray(points68, np.float64).reshape(68, 2)
        if np.isfinite(pts).all():
            anchors = anchor_points(pts)
            if np.ptp(anchors[:2, 0]) + np.ptp(anchors[:2, 1]) > 1e-6:  # two distinct eyes
                if alignment.mode == "rigid":  # the crop's own scale, as `none` resizes it
                    return rigid(anchors, (h, w), s, ANCHOR_WEIGHTS), Fallback.LANDMARKS
                return similarity(anchors, template(alignment), ANCHOR_WEIGHTS), Fallback.LANDMARKS
    if usable_box(box_xywh):
        return box_matrix(np.asarray(box_xywh, np.float64).reshape(4), s), Fallback.BOX
    return box_matrix(np.array([0.0, 0.0, w, h]), s), Fallback.WHOLE


def resize_square(rgb: np.ndarray, size: int) -> np.ndarray:
    """uint8 (size,size,3): the whole image resized to the square (INTER_AREA down, bilinear up); `mode: none`."""
    h, w = rgb.shape[:2]
    if (h, w) == (size, size):
        return rgb
    interp = cv2.INTER_AREA if h > size or w > size else cv2.INTER_LINEAR
    return cv2.resize(rgb, (size, size), interpolation=interp)


def warp(rgb: np.ndarray, matrix: np.ndarray, size: int, border: str = LEGACY_BORDER) -> np.ndarray:
    """uint8 (size,size,3) frame of `rgb` under `matrix` (bilinear; `border`: BORDERS). A face shrunk below
    SHRINK_BELOW is first cut out and area-resized (no aliasing, and a 4 K photo is not warped whole)."""
    mode = BORDERS[border]
    m = np.asarray(matrix, np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    if scale < SHRINK_BELOW:
        inv = cv2.invertAffineTransform(m)
        corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], np.float64) @ inv.T
        pad = 2.0 / scale
        x0, y0 = np.floor(corners.min(0) - pad).astype(int).clip(0, [rgb.shape[1], rgb.shape[0]])
        x1, y1 = np.ceil(corners.max(0) + pad).astype(int).clip(0, [rgb.shape[1], rgb.shape[0]])
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            crop = rgb[y0:y1, x0:x1]
            nw, nh = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
            small = cv2.resize(crop, (nw, nh), interpolation=cv2.INTER_AREA)
            fx, fy = nw / (x1 - x0), nh / (y1 - y0)
            # small pixel (u, v) <- crop pixel ((u + 0.5) / fx - 0.5, ...) <- image pixel (+ x0, + y0)
            back = np.array([[1 / fx, 0.0, 0.5 / fx - 0.5 + x0], [0.0, 1 / fy, 0.5 / fy - 0.5 + y0], [0.0, 0.0, 1.0]])
            return cv2.warpAffine(small, m @ back, (size, size), flags=cv2.INTER_LINEAR,
                                  borderMode=mode, borderValue=BORDER_VALUE)
    return cv2.warpAffine(np.ascontiguousarray(rgb), m, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=mode, borderValue=BORDER_VALUE)


def map_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(..., K, 2) points through (..., 2, 3) matrices (float32; NaN stays NaN): the landmarks in the framed face."""
    p = np.asarray(points, np.float64)
    m = np.asarray(matrix, np.float64)
    return (np.einsum("...kj,...ij->...ki", p, m[..., :2]) + m[..., None, :, 2]).astype(np.float32)


def frame_face(
    rgb: np.ndarray, points68: np.ndarray | None, alignment: Alignment, box_xywh: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ONE framing every use calls: (uint8 (S,S,3) face, 2x3 float64 image->face matrix) for an RGB image, its 68
    landmarks (x, y px; None/NaN = not found) and an `Alignment` (model.pt's record). `similarity`: anchors on the
    template, else the dataset box `box_xywh`, else the whole image; `none`: the whole image resized to the square, as
    the loader does. Map the points with `map_points(points68, matrix)`; `framing_matrix` also says which fallback."""
    matrix, _ = framing_matrix(points68, rgb.shape[:2], alignment, box_xywh)
    if alignment.mode == "none":
        return resize_square(rgb, alignment.size), matrix
    return warp(rgb, matrix, alignment.size, alignment.border), matrix


def model_input(
    rgb: np.ndarray, points68: np.ndarray | None, alignment: Alignment, input_size: int, box_xywh: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 (input_size, input_size, 3) network input, 2x3 image->input matrix) exactly as training fed the model:
    `none` resizes the whole image (the loader's `read_rgb`), `similarity` frames the face at `alignment.size`
    (`frame_face`, the aligned store's bytes) and resizes that (the loader reading the store)."""
    if alignment.mode == "none":
        square = Alignment("none", alignment.template, input_size)
        return frame_face(rgb, None, square)
    face, matrix = frame_face(rgb, points68, alignment, box_xywh)
    k = input_size / alignment.size
    to_input = np.array([[k, 0.0, 0.5 * k - 0.5], [0.0, k, 0.5 * k - 0.5], [0.0, 0.0, 1.0]])  # cv2.resize's mapping
    return resize_square(face, input_size), to_input[:2] @ np.vstack([matrix, [0.0, 0.0, 1.0]])
