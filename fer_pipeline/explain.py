"""What `fer explain IMAGE` runs: find the face and its 68 landmarks, predict the expression, and draw what the model looked at.

Works on any photo: the landmarks stage's dlib detector (HOG, Haar fallback; the best-scoring face is kept; with none,
the whole image is used) finds the face and its 68 points, and `fer_pipeline.align.model_input` frames it with the
alignment the model was trained with (model.pt's record: `align.mode: similarity` warps the face onto the template as
the `align` stage did; `none` feeds the whole image, as training read its pre-aligned crops). The predicted class's AU
map is rendered from the framed points exactly as the `aumaps` stage does. One PNG shows the photo with the framed
region and the 68 points, then the framed face with the AU map, the CAM and the layer-5 attention; `--json` prints the
prediction, the class probabilities and the map scores (against the predicted class's AU map, since a single photo has
no ground truth). The 68-point model is trained on iBUG-300W: non-commercial use only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: Side (px) of the framed face shown for a `mode: none` model (its input is the whole image at the input size).
DISPLAY_SIDE = 256


@dataclass
class Face:
    """68 landmarks (x, y pixels of the photo; None when no face was found) and the detector's box (or the whole image)."""

    points: np.ndarray | None
    box: tuple[int, int, int, int]
    status: str
    detected: bool


def detect_face(rgb: np.ndarray) -> Face:
    """The landmarks stage's dlib68 detector (default settings: HOG, Haar fallback) and its 68 points, so a photo gets
    the points (hence the framing) the `landmarks` + `align` stages would give it; no face: whole image, no points."""
    from fer_pipeline.landmarks import dlib68
    from fer_pipeline.landmarks.store import Status

    model = dlib68.load(dlib68.Dlib68Config())
    image = np.ascontiguousarray(rgb, dtype=np.uint8)
    box, status = model.locate(image)
    if box is None:
        h, w = rgb.shape[:2]
        return Face(None, (0, 0, w - 1, h - 1), Status(status).name.lower(), False)
    return Face(model.points(image, box), box, Status(status).name.lower(), True)


def framed_region(matrix: np.ndarray, side: int) -> tuple[int, int, int, int]:
    """Bounding box (x0, y0, x1, y1) in the photo of a side x side frame under the 2x3 image->frame `matrix`."""
    import cv2

    inv = cv2.invertAffineTransform(np.asarray(matrix, np.float64))
    lo, hi = -0.5, side - 0.5  # the frame's outer pixel edges (pixel centres are integers)
    corners = np.array([[lo, lo, 1], [hi, lo, 1], [lo, hi, 1], [hi, hi, 1]], np.float64) @ inv.T + 0.5  # image edges
    (x0, y0), (x1, y1) = np.floor(corners.min(0) + 1e-6), np.ceil(corners.max(0) - 1e-6)
    return int(x0), int(y0), int(x1), int(y1)


def aumap_settings(params_path: Path = Path("params.yaml")) -> dict[str, Any]:
    """The `aumaps` section of params.yaml when run in the project, else the renderer's defaults."""
    from fer_pipeline.core.io import load_params

    defaults = {"codebook": "reference", "size": 56, "radius": 0.25, "smoothing": 0.5}
    if not params_path.is_file():
        return defaults
    section = load_params(params_path).get("aumaps") or {}
    return {k: type(v)(section.get(k, v)) for k, v in defaults.items()}


def explain(image: str | Path, model_path: str | Path, out: str | Path, device: str = "auto") -> dict[str, Any]:
    """Run the whole explanation for one photo, write the PNG to `out`, and return the JSON-able result."""
    import torch

    from fer_pipeline.align import Alignment, frame_face, framing_matrix, map_points, model_alignment, model_input
    from fer_pipeline.aumaps.render import render_maps
    from fer_pipeline.core.labels import LABELS, NEUTRAL
    from fer_pipeline.data.images import read_image
    from fer_pipeline.evaluate.figures import explain_figure, save_figure
    from fer_pipeline.evaluate.metrics import energy_share, pointing_game
    from fer_pipeline.evaluate.run import resolve_device
    from fer_pipeline.inputs import faces_to_array
    from fer_pipeline.models import load_model
    from fer_pipeline.models.maps import attention, cosine, reference_attention, resize

    dev = resolve_device(device)
    model, config = load_model(model_path, dev)
    rgb = read_image(image)
    face = detect_face(rgb)
    alignment = model_alignment(config)  # the framing the model was trained with (none for older models)
    small, _ = model_input(rgb, face.points, alignment, int(config["input_size"]))
    shown_as = alignment if alignment.mode != "none" else Alignment("none", alignment.template, DISPLAY_SIDE)
    crop, matrix = frame_face(rgb, face.points, shown_as)  # what is drawn: the framing at a readable size
    _, fallback = framing_matrix(face.points, rgb.shape[:2], alignment)
    box = framed_region(matrix, crop.shape[0])
    x = torch.from_numpy(faces_to_array(small[None], model.mean, model.std)).to(dev)  # the evaluation path's normalisation
    layer = model.layer_names[-1]
    with torch.no_grad():
        out_ = model(x, layers=(layer,))
        probs = out_.logits.float().softmax(dim=1)[0].cpu().numpy()
        feat = out_.features[layer]
        att_t = attention(feat)
    pred = int(probs.argmax())
    cam_t = model.cam(x, torch.tensor([pred], device=dev))  # the method's own CAM hook
    settings = aumap_settings()
    s = int(settings["size"])
    side = crop.shape[0]
    pts = map_points(face.points, matrix) if face.points is not None else np.full((68, 2), np.nan, np.float32)
    au, has = render_maps(
        pts[None],
        np.array([[side, side]]),
        np.array([pred]),
        codebook=str(settings["codebook"]),
        size=s,
        radius=float(settings["radius"]),
        smoothing=float(settings["smoothing"]),
    )
    cam = resize(cam_t.detach().float(), (s, s))[0].cpu()
    att = resize(att_t.float(), (s, s))[0].cpu()  # min-max: shown, pointing game, energy share
    att_ref = reference_attention(feat, (s, s))[0].cpu()  # what ATT-COS scores, as the evaluation does
    scores: dict[str, float | None] = dict.fromkeys(
        ("cam_cos", "att_cos", "cam_pointing", "cam_energy", "att_pointing", "att_energy")
    )
    if pred != NEUTRAL and has[0]:
        au_t = torch.from_numpy(au)
        for name, m, for_cos in (("cam", cam, cam), ("att", att, att_ref)):
            scores[f"{name}_cos"] = float(cosine(for_cos[None], au_t)[0])
            scores[f"{name}_pointing"] = float(pointing_game(m[None].numpy(), au)[0])
            scores[f"{name}_energy"] = float(energy_share(m[None].numpy(), au)[0])
    title = f"{Path(image).name}: {LABELS[pred]} ({probs[pred]:.0%})" + (
        "" if face.detected else " - no face found, whole image used"
    )
    points = face.points if face.points is not None else np.zeros((0, 2), np.float32)
    fig = explain_figure(rgb, box, points, crop, au[0] if has[0] else None, cam.numpy(), att.numpy(), title)
    save_figure(fig, out)
    return {
        "image": str(image),
        "model": str(model_path),
        "figure": str(out),
        "face": {
            "detected": face.detected,
            "status": face.status,
            "box": [int(v) for v in face.box],
            "framed": list(box),  # bounding box in the photo of the framed region
            "alignment": alignment.to_dict(),
            "fallback": fallback.name.lower(),
        },
        "prediction": LABELS[pred],
        "probabilities": {LABELS[k]: float(p) for k, p in enumerate(probs)},
        "scores": scores,
        "landmarks": face.points.round(1).tolist() if face.points is not None else None,
    }
