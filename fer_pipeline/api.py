"""The Python API: a face's AU map, a layer's attention T_l, the AU-alignment loss for your own training loop, and a
trained model.pt's prediction for one face with its CAM, attention and AU map (examples: docs/guides/python-api.md).

Each function is a thin entry to the pipeline's own code: the `aumaps` renderer, `models.maps`, `models.loss`, the
framing of `fer_pipeline.align` and the scoring of `fer predict`. Importing this module imports no torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

    from fer_pipeline.models.base import FERModel

#: Where `make repro` writes the demo's model trained with AUs (the examples' default).
DEMO_MODEL = Path("models/cam-aus/model.pt")


def class_index(label: int | str) -> int:
    """Canonical index (0 neutral ... 6 sadness) of a class index, name or synonym (`fer classes` lists them)."""
    from fer_pipeline.core.labels import NUM_CLASSES, label_index

    if isinstance(label, (int, np.integer)):
        if not 0 <= int(label) < NUM_CLASSES:
            raise ValueError(f"class index {label} is not in 0..{NUM_CLASSES - 1}")
        return int(label)
    return label_index(str(label))


def _au_weights(aus: Mapping[int, float] | Iterable[int]) -> np.ndarray:
    """(len(AUS),) weights in [0, 1] from AU numbers (weight 1) or {AU number: intensity in [0, 1]}."""
    from fer_pipeline.aus.formats import AUS

    given = dict(aus) if isinstance(aus, Mapping) else dict.fromkeys(aus, 1.0)
    unknown = sorted(set(given) - set(AUS))
    if unknown:
        raise ValueError(f"AUs {unknown} have no region; drawable AUs: {', '.join(map(str, AUS))}")
    return np.array([float(given.get(au, 0.0)) for au in AUS], np.float32).clip(0.0, 1.0)


def render_au_map(
    landmarks: np.ndarray,
    label_or_aus: int | str | Mapping[int, float] | Iterable[int],
    image_size: tuple[int, int],
    *,
    size: int = 56,
    codebook: str = "reference",
    radius: float = 0.25,
    smoothing: float = 0.5,
) -> np.ndarray:
    """The AU map of one face: float32 (size, size) in [0, 1], covering the whole (height, width) image.

    `landmarks`: its 68 points (x, y pixels). `label_or_aus`: a class (index, name or synonym: the codebook's AUs of
    that class, as the `aumaps` stage draws them), or its active AUs (AU numbers, or {AU: intensity in [0, 1]}, as
    `aumaps.mode: active` draws them). A neutral face, or one with no region on the image, gets all zeros: the loss
    leaves it out (`has_map` is `map.max() > 0`). Resize the map to (height, width) to lay it on the image.
    """
    from fer_pipeline.aumaps.active import render_active
    from fer_pipeline.aumaps.render import render_maps

    pts = np.asarray(landmarks, np.float32)
    if pts.shape != (68, 2):
        raise ValueError(f"landmarks must be one face's (68, 2) points, got shape {pts.shape}; for a batch use "
                         "fer_pipeline.aumaps.render.render_maps")
    hw = np.asarray([image_size], np.float32).reshape(1, 2)
    opts = {"size": size, "radius": radius, "smoothing": smoothing}
    if isinstance(label_or_aus, (int, np.integer, str)):
        maps, _ = render_maps(pts[None], hw, np.array([class_index(label_or_aus)]), codebook=codebook, **opts)
    else:
        maps, _ = render_active(pts[None], hw, _au_weights(label_or_aus)[None], **opts)
    return maps[0]


def attention_map(features: torch.Tensor, norm: str = "minmax") -> torch.Tensor:
    """T_l of the paper (Eq. 1): the channel mean of (B, C, h, w) features, (B, h, w); `norm="minmax"` scales each map to
    [0, 1] (as the evaluation scores it), `"none"` keeps the raw mean (what the `cos` loss trains on by default)."""
    from fer_pipeline.models.maps import attention

    return attention(features, norm)


def au_loss(
    features: torch.Tensor | Sequence[torch.Tensor],
    au_maps: torch.Tensor | np.ndarray,
    has_map: torch.Tensor | np.ndarray | None = None,
    lam: float = 1.0,
    *,
    kind: str = "cos",
    att_norm: str = "none",
) -> torch.Tensor:
    """The AU term of the paper's loss (Eq. 3), to add to your cross-entropy: lam × mean over the given layers of the
    mean over faces with a map of (1 − cos(T_l, A)).

    `features`: one (B, C, h, w) feature map, or one per layer; `au_maps` (B, H, W) in [0, 1] (uint8 maps are divided
    by 255), resized to each T_l; `has_map` (B,) bool, default `au_maps.max() > 0` per face. `kind`: cos | l1 | l2 | kl
    and `att_norm` (none | minmax) as `train.align_loss` and `train.att_norm` (models.loss).
    """
    import torch

    from fer_pipeline.models.loss import alignment_loss, loss_norm
    from fer_pipeline.models.maps import attention

    layers = [features] if isinstance(features, torch.Tensor) else list(features)
    if not layers:
        raise ValueError("au_loss needs at least one feature map")
    au = torch.as_tensor(au_maps)
    has = au.flatten(1).amax(dim=1) > 0 if has_map is None else torch.as_tensor(has_map)
    norm = loss_norm(kind, att_norm)
    return lam * torch.stack([alignment_loss(attention(f, norm), au, has, kind) for f in layers]).mean()


def load_model(path: str | Path = DEMO_MODEL, device: str = "cpu") -> FERModel:
    """A trained model.pt (e.g. `models/cam-aus/model.pt` after `make repro`), in eval mode on `device` (cpu | cuda |
    auto); its saved config (method, input size, alignment, λ, ...) is `model.saved_config`."""
    from fer_pipeline.evaluate.run import resolve_device
    from fer_pipeline.models import load_model as load

    model, config = load(path, resolve_device(device))
    model.saved_config = config
    return model


def detect_landmarks(image: str | Path | np.ndarray) -> np.ndarray | None:
    """The 68 points (x, y pixels) of the best-scoring face of a photo (path or RGB uint8), as the `landmarks` stage's
    dlib68 backend places them; None when no face is found."""
    from fer_pipeline.explain import detect_face

    return detect_face(_rgb(image)).points


def _rgb(image: str | Path | np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) RGB of a path (EXIF orientation applied) or of an array."""
    from fer_pipeline.data.images import read_image

    if isinstance(image, (str, Path)):
        return read_image(image)
    rgb = np.asarray(image)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"image must be an RGB uint8 (H, W, 3) array or a path, got {rgb.dtype} {rgb.shape}")
    return rgb


@dataclass
class Prediction:
    """One face's prediction; maps are float32 (S, S) in [0, 1] at the AU map size, over the framed face `face`."""

    label: str
    """The predicted class."""
    probabilities: dict[str, float]
    """Class name -> probability."""
    cam_class: str
    """The class whose CAM and AU map are drawn: the true class when given, else the predicted one."""
    cam: np.ndarray
    """The method's CAM of `cam_class`."""
    attention: np.ndarray
    """The last layer's attention T_l (min-max)."""
    au_map: np.ndarray | None
    """`cam_class`'s AU map; None without landmarks or for neutral."""
    scores: dict[str, float]
    """CAM and attention against the AU map (cosine, pointing game, energy share); NaN without an AU map."""
    face: np.ndarray
    """The model's input, uint8 (S_in, S_in, 3), framed as its training faces were."""


def predict(
    model: FERModel | str | Path,
    image: str | Path | np.ndarray,
    landmarks: np.ndarray | None = None,
    *,
    label: int | str | None = None,
) -> Prediction:
    """Predict one face (a path or an RGB uint8 array) with a model from `load_model` (or a model.pt path).

    The image is framed as the model's training faces were (its recorded alignment; the whole image for `align.mode:
    none`); with its 68 `landmarks` (image pixels; `detect_landmarks` finds them in a photo) the AU map of `label`
    (default: the predicted class) is rendered as the `aumaps` stage does and the maps are scored against it, as
    `fer predict` scores. AU map settings: params.yaml's `aumaps` section when run in the project, else the defaults.
    """
    from fer_pipeline.align import map_points, model_alignment, model_input
    from fer_pipeline.core.labels import LABELS
    from fer_pipeline.explain import aumap_settings
    from fer_pipeline.predict.score import score_batch

    net = load_model(model) if isinstance(model, (str, Path)) else model
    config: dict[str, Any] = getattr(net, "saved_config", net.init_config)
    rgb = _rgb(image)
    pts = None if landmarks is None else np.asarray(landmarks, np.float32).reshape(68, 2)
    face, matrix = model_input(rgb, pts, model_alignment(config), int(config.get("input_size") or 224))
    points = map_points(pts, matrix) if pts is not None else np.full((68, 2), np.nan, np.float32)
    target = None if label is None else np.array([class_index(label)])
    device = next(net.parameters()).device
    sc = score_batch(net, face[None], points[None], aumap_settings(), device, target)
    shown = int(sc.pred[0]) if target is None else int(target[0])
    return Prediction(
        label=LABELS[int(sc.pred[0])],
        probabilities={name: float(p) for name, p in zip(LABELS, sc.probs[0], strict=True)},
        cam_class=LABELS[shown],
        cam=sc.cam[0],
        attention=sc.att[0],
        au_map=sc.au[0] if sc.has_map[0] else None,
        scores={k: float(v[0]) for k, v in sc.scores.items()},
        face=face,
    )
