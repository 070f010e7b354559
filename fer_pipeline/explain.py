"""`fer explain IMAGE`: find the face and its 68 landmarks, predict the expression, and draw what the model looked at.

Works on any photo: dlib's HOG detector finds the faces (the best-scoring one is kept; with none, the whole image is
used, as for pre-cropped faces), the face box plus a margin is cropped to a square as the model was trained on, and
the predicted class's AU map is rendered from the landmarks exactly as the `aumaps` stage does. One PNG shows the
photo with the box and the 68 points, then the crop with the AU map, the CAM and the layer-5 attention; `--json`
prints the prediction, the class probabilities and the map scores (against the predicted class's AU map, since a
single photo has no ground truth). The 68-point model is trained on iBUG-300W: non-commercial use only.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fer_pipeline.core import paths

DEFAULT_MODEL = paths.model_path("cam-aus")
#: Square crop side = (1 + 2·margin) × the larger side of the landmarks' box (the face then fills ~60 %, as in training).
MARGIN = 0.3
#: The crop centre sits this fraction of the landmarks' box height above its centre (room for the forehead).
LIFT = 0.1
#: Short side (px) below which the face detector searches an upsampled image.
UPSAMPLE_BELOW = 400


@dataclass
class Face:
    """68 landmarks (x, y pixels of the photo), the detector's box and score; `detected` False = whole-image fallback."""

    points: np.ndarray
    box: tuple[int, int, int, int]
    score: float
    detected: bool


def detect_face(rgb: np.ndarray) -> Face:
    """Best-scoring dlib HOG face and its 68 landmarks; the whole image when no face is found.

    Photos under UPSAMPLE_BELOW px (short side) are searched at twice their size: HOG misses faces under ~80 px.
    """
    import dlib
    import face_recognition_models

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())
    h, w = rgb.shape[:2]
    rects, scores, _ = detector.run(rgb, 1 if min(h, w) < UPSAMPLE_BELOW else 0, 0.0)
    if len(rects):
        best = int(np.argmax(scores))
        rect, score, found = rects[best], float(scores[best]), True
    else:
        rect, score, found = dlib.rectangle(0, 0, w - 1, h - 1), float("nan"), False
    shape = predictor(rgb, rect)
    points = np.array([(p.x, p.y) for p in shape.parts()], np.float32)
    return Face(points, (rect.left(), rect.top(), rect.right(), rect.bottom()), score, found)


def face_crop(rgb: np.ndarray, points: np.ndarray, margin: float = MARGIN) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Square crop around the landmarks (edge-replicated where it leaves the photo) and its box (x0, y0, x1, y1)."""
    import cv2

    lo, hi = points.min(axis=0), points.max(axis=0)
    side = int(round((1.0 + 2.0 * margin) * float(max(hi - lo))))
    cx, cy = (lo + hi) / 2.0 - np.array([0.0, LIFT * float(hi[1] - lo[1])])
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    h, w = rgb.shape[:2]
    pad = max(0, -x0, -y0, x0 + side - w, y0 + side - h)
    padded = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else rgb
    crop = padded[y0 + pad : y0 + pad + side, x0 + pad : x0 + pad + side]
    return np.ascontiguousarray(crop), (x0, y0, x0 + side, y0 + side)


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
    import cv2
    import torch

    from fer_pipeline.aumaps.render import render_maps
    from fer_pipeline.core.labels import LABELS, NEUTRAL
    from fer_pipeline.data.images import read_image
    from fer_pipeline.evaluate.figures import explain_figure, save_figure
    from fer_pipeline.evaluate.metrics import energy_share, pointing_game
    from fer_pipeline.evaluate.run import resolve_device
    from fer_pipeline.models import load_model
    from fer_pipeline.models.maps import attention, cosine, resize
    from fer_pipeline.train.augment import normalizer, to_tensor_planes

    dev = resolve_device(device)
    model, config = load_model(model_path, dev)
    rgb = read_image(image)
    face = detect_face(rgb)
    crop, box = face_crop(rgb, face.points)
    size = int(config["input_size"])
    small = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_LINEAR)
    planes = [np.ascontiguousarray(small[:, :, c]) for c in range(3)]  # the evaluation path's normalisation
    x = torch.from_numpy(to_tensor_planes(planes, None, normalizer(model.mean, model.std)))[None].to(dev)
    layer = model.layer_names[-1]
    with torch.no_grad():
        out_ = model(x, layers=(layer,))
        probs = out_.logits.float().softmax(dim=1)[0].cpu().numpy()
        att_t = attention(out_.features[layer])
    pred = int(probs.argmax())
    cam_t = model.cam(x, torch.tensor([pred], device=dev))  # the method's own CAM hook
    settings = aumap_settings()
    s = int(settings["size"])
    side = crop.shape[0]
    pts = face.points - np.array(box[:2], np.float32)
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
    att = resize(att_t.float(), (s, s))[0].cpu()
    scores: dict[str, float | None] = dict.fromkeys(
        ("cam_cos", "att_cos", "cam_pointing", "cam_energy", "att_pointing", "att_energy")
    )
    if pred != NEUTRAL and has[0]:
        au_t = torch.from_numpy(au)
        for name, m in (("cam", cam), ("att", att)):
            scores[f"{name}_cos"] = float(cosine(m[None], au_t)[0])
            scores[f"{name}_pointing"] = float(pointing_game(m[None].numpy(), au)[0])
            scores[f"{name}_energy"] = float(energy_share(m[None].numpy(), au)[0])
    title = f"{Path(image).name}: {LABELS[pred]} ({probs[pred]:.0%})" + (
        "" if face.detected else " - no face found, whole image used"
    )
    fig = explain_figure(rgb, box, face.points, crop, au[0] if has[0] else None, cam.numpy(), att.numpy(), title)
    save_figure(fig, out)
    return {
        "image": str(image),
        "model": str(model_path),
        "figure": str(out),
        "face": {
            "detected": face.detected,
            "score": face.score if face.detected else None,
            "box": list(face.box),
            "crop": list(box),
        },
        "prediction": LABELS[pred],
        "probabilities": {LABELS[k]: float(p) for k, p in enumerate(probs)},
        "scores": scores,
        "landmarks": face.points.round(1).tolist(),
    }


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `explain` on the `fer` command's subparsers."""
    p = subparsers.add_parser(
        "explain",
        help="predict the expression of a photo and draw its landmarks, AU map, CAM and attention",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("image", help="a photo (any size; the face is found and cropped)")
    p.add_argument("--model", default=str(DEFAULT_MODEL), help=f"model file (default: {DEFAULT_MODEL})")
    p.add_argument("--out", default=None, help="PNG to write (default: <image stem>_explain.png in the current folder)")
    p.add_argument("--json", action="store_true", help="print the prediction, probabilities and scores as JSON")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Execute `fer explain` from parsed arguments; 0 on success."""
    out = Path(args.out) if args.out else Path(f"{Path(args.image).stem}_explain.png")
    result = explain(args.image, args.model, out, device=args.device)
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "landmarks"}, indent=2))
    else:
        probs = result["probabilities"]
        print(f"{args.image}: {result['prediction']} ({probs[result['prediction']]:.1%}) -> {out}", file=sys.stdout)
    return 0
