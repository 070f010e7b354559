"""Deterministic synthetic faces with ground-truth iBUG-68 landmarks; identity, pose and scene vary a lot per sample,
the class shows only as landmark deformation and texture at the AU locations its codebook entry names, as in real faces."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

from fer_pipeline.core.codebook import CODEBOOKS, aus_for
from fer_pipeline.core.labels import NUM_CLASSES
from fer_pipeline.data.face_geometry import (
    SQUASH_LOW,
    SQUASH_SPAN,
    apply_aus,
    face_frame,
    fit_in_frame,
    identity_shape,
    mean_face,
    place_face,
)

__all__ = ["SyntheticConfig", "SyntheticSample", "apply_aus", "cue_box", "cue_for", "make_sample", "mean_face", "render_face"]

SPLITS: tuple[str, ...] = ("train", "val", "test")
#: The largest generator intensity (`synthetic.intensity` is in [0, INTENSITY_MAX]); AU truth is intensity / INTENSITY_MAX.
INTENSITY_MAX = 2.0
_SH, _AA = 4, cv2.LINE_AA  # cv2 fixed-point bits (sub-pixel drawing), anti-aliasing
Colour = tuple[float, ...]


@dataclass(frozen=True)
class SyntheticConfig:
    """Generator settings; `shortcut` adds a class-coded mark, label-correlated in train/val only."""

    size: int = 112
    intensity: tuple[float, float] = (0.5, 1.0)
    face_scale: tuple[float, float] = (0.55, 0.8)  # head (forehead..chin) height as a fraction of the image
    roll: float = 12.0  # max in-plane rotation, degrees (aligned crops: a few degrees)
    shift: float = 1.0  # fraction of the free border used for random translation (0 = centred, aligned crops)
    shortcut: bool = False
    shortcut_p_train: float = 0.9
    shortcut_p_test: float = 0.5
    codebook: str = "reference"
    au_presence: float = 1.0  # P(each codebook AU of the class is shown); at least one per expressive face

    def __post_init__(self) -> None:
        if self.size < 32:
            raise ValueError(f"size={self.size} is too small (>= 32)")
        if not 0.0 <= self.intensity[0] <= self.intensity[1] <= INTENSITY_MAX:
            raise ValueError(f"intensity={self.intensity} must satisfy 0 <= lo <= hi <= {INTENSITY_MAX:g}")
        if not 0.2 <= self.face_scale[0] <= self.face_scale[1] <= 0.95:
            raise ValueError(f"face_scale={self.face_scale} must satisfy 0.2 <= lo <= hi <= 0.95")
        if not (0.0 <= self.roll <= 45.0 and 0.0 <= self.shift <= 1.0):
            raise ValueError(f"roll={self.roll} must be in [0, 45] degrees and shift={self.shift} in [0, 1]")
        for name in ("shortcut_p_train", "shortcut_p_test", "au_presence"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}={getattr(self, name)} is not a probability")
        if self.codebook not in CODEBOOKS:
            raise ValueError(f"unknown codebook {self.codebook!r}; valid: {', '.join(CODEBOOKS)}")


@dataclass(frozen=True, eq=False)
class SyntheticSample:
    """One generated face: RGB uint8 image, its exact float32 (68, 2) x,y landmarks, class, mark class (-1 = none) and
    the AUs it shows with their intensity in [0, 1] (generator intensity / INTENSITY_MAX; AUs not listed are absent)."""

    image: np.ndarray
    landmarks: np.ndarray
    label: int
    cue: int
    au_intensity: dict[int, float] = field(default_factory=dict)


@lru_cache(maxsize=16)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel x, y coordinates and a fixed table of Gaussian noise (8 images' worth) for a size x size image."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    return xs, ys, np.random.default_rng(12345).standard_normal(size * size * 3 * 8, dtype=np.float32)


def _q(pts: np.ndarray | list) -> np.ndarray:
    """Points -> cv2 fixed-point int32 polygon."""
    return np.round(np.asarray(pts, np.float64) * (1 << _SH)).astype(np.int32).reshape(-1, 1, 2)


def _ell(img: np.ndarray, c: np.ndarray, ax: tuple[float, float], ang: float, col: Colour, th: int = -1) -> None:
    f = 1 << _SH
    axes = (max(1, int(ax[0] * f)), max(1, int(ax[1] * f)))
    cv2.ellipse(img, (int(c[0] * f), int(c[1] * f)), axes, ang, 0, 360, col, th, _AA, _SH)


def _lines(img: np.ndarray, curves: list, col: Colour, th: int = 1) -> None:
    cv2.polylines(img, [_q(c) for c in curves], False, col, th, _AA, _SH)


def _blend(img: np.ndarray, alpha: float, draw: Callable[[np.ndarray], object]) -> None:
    """Draw on a copy and mix it back: semi-transparent shading."""
    ov = img.copy()
    draw(ov)
    a = min(max(float(alpha), 0.0), 1.0)
    cv2.addWeighted(ov, a, img, 1.0 - a, 0.0, dst=img)


_BEZ = {n: np.stack([(1 - t) ** 2, 2 * t * (1 - t), t**2], 1) for n in (5, 7) for t in [np.linspace(0, 1, n)]}


def _curve(a: np.ndarray, ctrl: np.ndarray, b: np.ndarray, n: int = 7) -> np.ndarray:
    """Quadratic Bezier from a to b with control point ctrl."""
    return _BEZ[n] @ np.stack([a, ctrl, b])


def _inset(img: np.ndarray, poly: np.ndarray, fill: Colour, draw: Callable[[np.ndarray, np.ndarray], object]) -> None:
    """Paint `fill` plus `draw(patch, offset)` into img, clipped (anti-aliased) to polygon `poly` (eyes, mouth)."""
    size = img.shape[0]
    x0, y0 = np.floor(poly.min(0) - 2).astype(int).clip(0, size - 1)
    x1, y1 = np.ceil(poly.max(0) + 3).astype(int).clip(1, size)
    crop, off = img[y0:y1, x0:x1], np.array([x0, y0])
    mask = np.zeros(crop.shape[:2], np.uint8)
    cv2.fillPoly(mask, [_q(poly - off)], 255, _AA, _SH)
    patch = np.empty_like(crop)
    patch[:] = fill
    draw(patch, off)
    a = mask.astype(np.float32)[..., None] / 255
    crop[:] = crop + a * (patch.astype(np.float32) - crop)


_CUE_COLOURS = ((255, 0, 0), (0, 220, 0), (0, 80, 255), (255, 230, 0), (255, 0, 255), (0, 230, 230), (255, 255, 255))
# mark positions (fractions of the free border span): top corners/centre, low sides, shoulders: away from the AU regions
_CUE_POS = ((0.0, 0.0), (0.5, 0.0), (1.0, 0.0), (0.0, 0.72), (1.0, 0.72), (0.3, 1.0), (0.7, 1.0))
_HAIR = np.array([(25, 20, 18), (45, 30, 22), (75, 50, 30), (110, 75, 40), (150, 120, 75), (120, 120, 120)], np.float32)
_IRIS = ((70, 45, 25), (40, 30, 20), (60, 90, 120), (70, 95, 60))


def cue_box(cue: int, size: int) -> tuple[int, int, int, int]:
    """Pixel box (x0, y0, x1, y1), ends exclusive, of the shortcut mark of class `cue` in a size x size image."""
    if not 0 <= cue < len(_CUE_POS):
        raise ValueError(f"cue={cue} is not a class index 0..{len(_CUE_POS) - 1}")
    side = max(3, int(round(size * 0.07)))
    x, y = (int(2 + f * (size - side - 4)) for f in _CUE_POS[cue])
    return x, y, x + side, y + side


def render_face(
    points: np.ndarray, aus: Sequence[int], intensity: float | Mapping[int, float], rng: np.random.Generator, size: int,
    cue: int,
) -> np.ndarray:
    """Draw the face with landmarks `points`, texture for the active `aus` and the shortcut mark `cue`: RGB uint8.
    `intensity`: one value for every AU, or AU -> its own (a texture shared by several AUs takes the strongest).

    The same random draws are made whatever the AUs, so one rng state gives one identity/scene for every expression.
    """
    p = np.asarray(points, np.float64)
    o, ex, ey, iod = face_frame(p)

    def at(pt: np.ndarray, du: float, dv: float) -> np.ndarray:  # offset in the face frame, in IODs
        return pt + ex * (iod * du) + ey * (iod * dv)

    ang = float(np.degrees(np.arctan2(ex[1], ex[0])))
    u = rng.random(32)
    tone, ends = rng.normal(0, 8, 3), (236, 198, 172, 100, 66, 48)  # light..dark skin, jittered
    skin_t = tuple(min(250.0, max(30.0, ends[ch] * (1 - u[0]) + ends[ch + 3] * u[0] + tone[ch])) for ch in range(3))

    def dark(k: float) -> Colour:  # a shade of the skin
        return tuple(min(255.0, c * k) for c in skin_t)

    hair = tuple(float(c) * (0.85 + 0.3 * u[2]) for c in _HAIR[min(int(u[1] ** 1.6 * len(_HAIR)), len(_HAIR) - 1)])
    th = max(1, int(round(iod * 0.035)))

    # background: colour + gradient + blobs, drawn at low resolution and upsampled (soft blobs without a large blur)
    n = max(8, size // 4)
    xl, yl, _ = _grid(n)
    bg, g = rng.uniform(20, 235, 3).astype(np.float32), rng.uniform(-70, 70, 3).astype(np.float32)
    gdir = (xl * float(np.cos(u[3] * 6.283)) + yl * float(np.sin(u[3] * 6.283))) / n - 0.5
    small = np.clip(bg + gdir[..., None] * g, 0, 255).astype(np.uint8)
    blobs = rng.uniform(0, 1, (5, 6))
    for k in range(2 + int(u[4] * 4)):
        b, col = blobs[k], tuple(255 * blobs[(k + 1) % 5, 3:])
        _ell(small, b[:2] * n, (n * (0.05 + 0.2 * b[2]), n * (0.05 + 0.2 * b[3])), 180 * b[4], col)
    img = cv2.resize(cv2.GaussianBlur(small, (0, 0), 0.6) if u[5] > 0.5 else small, (size, size), interpolation=cv2.INTER_LINEAR)

    # head from AU-free points (jaw ends, eye corners): long hair behind, neck, clothes, ears, face, hair cap
    c = (p[0] + p[16]) / 2
    a_h, b_h = float((p[16] - p[0]) @ ex) / 2 * 1.02, iod * (1.15 + 0.15 * u[8])
    clothes = tuple(rng.uniform(10, 240, 3))
    bald = u[9] < 0.08
    if not bald:
        long_ = 1.3 * u[10] ** 2
        _ell(img, at(c, 0, long_), (a_h * 1.16, b_h * 1.1 + long_ * iod), ang, hair)
    down, wide = np.array([0.0, 3.0 * iod]), np.array([0.15 * iod, 0.0])  # the neck stays upright when the head rolls
    neck = [at(p[3], 0.4, 0), at(p[3], 0.4, 0) - wide + down, at(p[13], -0.4, 0) + wide + down, at(p[13], -0.4, 0)]
    cv2.fillPoly(img, [_q(neck)], dark(0.8), _AA, _SH)
    sc, sw = at(c, 0, 2.75 + 0.3 * u[6]), iod * (1.9 + 0.5 * u[7])  # shoulders: upright, down to the image bottom
    _ell(img, sc, (sw, iod * 1.0), 0.0, clothes)
    cv2.rectangle(img, (int(sc[0] - sw), int(sc[1])), (int(sc[0] + sw), size), clothes, -1)
    for j, sgn in ((1, -1), (15, 1)):
        _ell(img, at(p[j], 0.05 * sgn, -0.05), (iod * 0.14, iod * 0.3), ang, dark(0.9))
    t = np.linspace(0, np.pi, 15)[:, None]
    cv2.fillPoly(img, [_q(np.r_[p[:17], c + a_h * np.cos(t) * ex - b_h * np.sin(t) * ey])], skin_t, _AA, _SH)
    _lines(img, [p[:17]], dark(0.78), th)
    if not bald:  # cap: head ellipse above a hairline set from the eye line (brows move), lower at the temples
        h0, k_t = float((o - c) @ ey) - iod * (0.72 + 0.5 * u[11]), iod * (0.1 + 0.45 * u[12])
        cu = a_h * 1.07 * np.sin(np.linspace(-np.pi / 2, np.pi / 2, 41))
        span = b_h * 1.07 * np.sqrt(np.clip(1 - (cu / (a_h * 1.07)) ** 2, 0, 1))
        top, bot = -span, np.minimum(span, h0 + k_t * (cu / a_h) ** 2)
        keep = top < bot
        if keep.sum() > 2:
            cap = c + np.r_[cu[keep], cu[keep][::-1]][:, None] * ex + np.r_[top[keep], bot[keep][::-1]][:, None] * ey
            cv2.fillPoly(img, [_q(cap)], tuple(0.95 * v for v in hair), _AA, _SH)

    # AU texture, only where the active AUs act
    au = set(aus)

    def strength(*names: int) -> float:
        if not isinstance(intensity, Mapping):
            return float(intensity)
        return max(float(intensity[a]) for a in names if a in au)

    if 6 in au:
        k = strength(6)  # raised cheeks: highlight bulge, lower-lid bag line, crow's feet
        for m, corner, sgn in ((p[40:42].mean(0), p[36], -1), (p[46:48].mean(0), p[45], 1)):
            _blend(img, 0.35 * k, lambda im, m=m: _ell(im, at(m, 0, 0.3), (iod * 0.24, iod * 0.13), ang, dark(1.18)))
            bag = _curve(at(m, -0.12, 0.08), at(m, 0, 0.16), at(m, 0.12, 0.08))
            fan = [[at(corner, 0.05 * sgn, 0), at(corner, 0.16 * sgn, dy)] for dy in (-0.06, 0.0, 0.06)]
            _blend(img, 0.45 * k, lambda im, bag=bag, fan=fan: (_lines(im, [bag], dark(0.6), th), _lines(im, fan, dark(0.6))))
    if au & {10, 12}:  # nasolabial folds from the nose wings past the mouth corners
        k = strength(10, 12)
        for wing, corner, sgn in ((p[31], p[48], -1), (p[35], p[54], 1)):
            a0, b0 = at(wing, 0.08 * sgn, -0.03), at(corner, 0.07 * sgn, 0.12)
            crv = _curve(a0, at((a0 + b0) / 2, 0.1 * sgn, 0), b0)
            _blend(img, 0.55 * k, lambda im, crv=crv: _lines(im, [crv], dark(0.55), th + 1))
            _blend(img, 0.3 * k, lambda im, crv=crv, sgn=sgn: _lines(im, [at(crv, -0.05 * sgn, 0)], dark(1.2), th))
    if 4 in au:  # vertical furrows between the brows
        m = (p[21] + p[22]) / 2
        fur = [[at(m, 0.06 * s, 0.02), at(m, 0.05 * s, 0.22)] for s in (-1, 1)]
        _blend(img, 0.6 * strength(4), lambda im: _lines(im, fur, dark(0.55), th))
    if 9 in au:  # horizontal wrinkles across the nose bridge
        wr = [_curve(at(p[27], -0.11, z), at(p[27], 0, z - 0.04), at(p[27], 0.11, z), 5) for z in (0.02, 0.09, 0.16)]
        _blend(img, 0.6 * strength(9), lambda im: _lines(im, wr, dark(0.55), th))
    if 17 in au:  # chin boss: deepened mentolabial sulcus
        crv = _curve(at(p[59], 0, 0.1), at(p[57], 0, 0.16), at(p[55], 0, 0.1))
        _blend(img, 0.5 * strength(17), lambda im: _lines(im, [crv], dark(0.6), th))

    # brows: tapered filled polygons
    prof = np.array([0.55, 0.8, 0.95, 1.0, 0.9])[:, None] * iod * (0.07 + 0.08 * u[13]) / 2
    brow_col = tuple(min(255.0, h * 0.8 + s * 0.2 * u[14]) for h, s in zip(hair, skin_t, strict=True))
    for b in (p[17:22], p[26:21:-1]):
        cv2.fillPoly(img, [_q(np.r_[b - ey * prof, (b + ey * prof)[::-1]])], brow_col, _AA, _SH)

    # eyes: sclera + iris clipped to the lid polygon; lash line, lower lid, crease
    iris_col, gaze = _IRIS[int(u[15] * len(_IRIS))], (u[16] - 0.5) * 0.15
    for e in (p[36:42], p[42:48]):
        w = float(np.hypot(*(e[3] - e[0])))
        ic = at((e[0] + e[3]) / 2 + ex * w * gaze, 0, -0.01)

        def iris(patch: np.ndarray, off: np.ndarray, ic: np.ndarray = ic, w: float = w) -> None:
            _ell(patch, ic - off, (w * 0.24, w * 0.24), 0, iris_col)
            _ell(patch, ic - off, (w * 0.1, w * 0.1), 0, (10, 10, 10))

        _inset(img, e, (235, 232, 225), iris)
        _lines(img, [e[:4]], (25, 20, 20), th)
        _lines(img, [np.r_[e[3:], e[:1]], at(e[:4], 0, -0.06)], dark(0.72))

    # nose: side shadow, base, wings, nostrils
    _blend(img, 0.35, lambda im: _lines(im, [[at(p[27], 0.07, 0), at(p[29], 0.1, 0), at(p[35], 0.02, 0)]], dark(0.7), th))
    _lines(img, [p[31:36]], dark(0.72), th)
    wings = [_curve(at(w_, 0, -0.12), at(w_, 0.07 * s, -0.03), at(w_, 0, 0.02), 5) for w_, s in ((p[31], -1), (p[35], 1))]
    _lines(img, wings, dark(0.7))
    for nostril in (p[32], p[34]):
        _ell(img, at(nostril, 0, -0.01), (iod * 0.045, iod * 0.022), ang, dark(0.35))

    # mouth: lips, then the interior (dark, teeth for some identities) wherever the inner lips part
    lip = tuple(min(255.0, s * f + a) for s, f, a in zip(skin_t, (0.82, 0.55, 0.55), (30, 0, 5), strict=True))
    cv2.fillPoly(img, [_q(p[48:60])], lip, _AA, _SH)
    inner, upper_teeth, lower_teeth = p[60:68], u[17] < 0.75, u[18] < 0.3

    def teeth(patch: np.ndarray, off: np.ndarray) -> None:
        if upper_teeth:
            cv2.fillPoly(patch, [_q(np.r_[inner[0:5], at(inner[4::-1], 0, 0.08)] - off)], (225, 220, 205), _AA, _SH)
        if lower_teeth:
            lo = inner[[4, 5, 6, 7, 0]]
            cv2.fillPoly(patch, [_q(np.r_[lo, at(lo[::-1], 0, -0.05)] - off)], (215, 210, 195), _AA, _SH)

    _inset(img, inner, (70, 22, 28), teeth)
    _lines(img, [inner[:5]], tuple(0.6 * v for v in lip))

    if cue >= 0:  # shortcut mark on the border: class-coded position and colour
        x0, y0, x1, y1 = cue_box(cue, size)
        img[y0:y1, x0:x1] = _CUE_COLOURS[cue]

    # camera: blur, lighting gradient, Gaussian noise (a random window of a fixed table: fast)
    img = cv2.GaussianBlur(img, (0, 0), 0.3 + 0.6 * u[19])
    xs, ys, table = _grid(size)
    lc, ls = float(np.cos(u[22] * 6.283)), float(np.sin(u[22] * 6.283))
    light = float(0.75 + 0.4 * u[20]) * (1.0 + float(u[21] - 0.5) * ((xs * lc + ys * ls) / size - 0.5))
    m = size * size * 3
    noise = table[int(u[24] * (len(table) - m)) :][:m].reshape(size, size, 3) * float(2.0 + 5.0 * u[23])
    return np.clip(img * light[..., None] + noise, 0, 255).astype(np.uint8)


def cue_for(split: str, label: int, rng: np.random.Generator, cfg: SyntheticConfig) -> int:
    """Class the shortcut mark encodes (-1 = none): the label in train/val w.p. p_train; a random class in test w.p. p_test."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    if not cfg.shortcut:
        return -1
    if split == "test":
        return int(rng.integers(NUM_CLASSES)) if rng.random() < cfg.shortcut_p_test else -1
    return int(label) if rng.random() < cfg.shortcut_p_train else -1


def make_sample(seed: int, index: int, label: int, split: str, cfg: SyntheticConfig) -> SyntheticSample:
    """Sample `index` of dataset `seed`: a pure function of its arguments (any order, any process: same bytes)."""
    if not 0 <= label < NUM_CLASSES:
        raise ValueError(f"label={label} is not in 0..{NUM_CLASSES - 1}")
    # independent child streams of default_rng([seed, index])'s seed: identity/pose, AU intensity, cue, appearance.
    # Identity and appearance streams never see the label, so every class of one (seed, index) is the same person.
    r_id, r_au, r_cue, r_img = (np.random.default_rng(s) for s in np.random.SeedSequence([seed, index]).spawn(4))
    u = r_id.random(6)
    frac = cfg.face_scale[0] + (cfg.face_scale[1] - cfg.face_scale[0]) * u[0]
    roll, squash, skew = np.radians((u[1] - 0.5) * 2 * cfg.roll), SQUASH_LOW + SQUASH_SPAN * u[2], (u[3] - 0.5) * 0.16
    pts = place_face(identity_shape(r_id), cfg.size, frac, roll, squash, skew)
    pts = fit_in_frame(pts, cfg.size, cfg.intensity[1], (u[4:6] - 0.5) * cfg.shift)
    intensity = float(r_au.uniform(*cfg.intensity))
    aus, strength = shown_aus(aus_for(label, cfg.codebook), intensity, r_au, cfg)
    pts = apply_aus(pts, aus, strength)
    cue = cue_for(split, label, r_cue, cfg)
    image = render_face(pts, aus, strength, r_img, cfg.size, cue)
    k = strength if isinstance(strength, Mapping) else dict.fromkeys(aus, strength)
    truth = {au: min(1.0, float(v) / INTENSITY_MAX) for au, v in k.items()}
    return SyntheticSample(image=image, landmarks=pts, label=int(label), cue=cue, au_intensity=truth)


def shown_aus(
    codebook_aus: tuple[int, ...], intensity: float, rng: np.random.Generator, cfg: SyntheticConfig
) -> tuple[tuple[int, ...], float | dict[int, float]]:
    """(AUs the face shows, their intensity): all of the class's at one intensity when `au_presence` is 1 (the demo, byte
    for byte); else each w.p. `au_presence` (at least one) at its own intensity drawn from `cfg.intensity`."""
    if cfg.au_presence >= 1.0 or not codebook_aus:
        return codebook_aus, intensity
    shown = rng.random(len(codebook_aus)) < cfg.au_presence
    if not shown.any():
        shown[int(rng.integers(len(codebook_aus)))] = True
    own = rng.uniform(*cfg.intensity, len(codebook_aus))
    return tuple(a for a, s in zip(codebook_aus, shown, strict=True) if s), {
        a: float(v) for a, v, s in zip(codebook_aus, own, shown, strict=True) if s
    }
