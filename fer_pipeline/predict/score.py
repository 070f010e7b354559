"""Batched inference for `fer predict`: class probabilities, the method's CAM and the layer-5 attention of the predicted
class, scored against that class's AU map rendered from the face's landmarks (as the `aumaps` stage renders it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fer_pipeline.core.labels import NEUTRAL
from fer_pipeline.models.base import FERModel

#: Per-image map scores (predicted class's AU map), the CSV's columns after the probabilities.
SCORE_COLUMNS = ("cam_cos", "att_cos", "cam_pointing", "att_pointing", "cam_energy", "att_energy")


@dataclass
class Scored:
    """A batch's results: probabilities (B,K), CAM/attention/AU maps (B,s,s) at the AU map size, has_map and scores."""

    probs: np.ndarray
    cam: np.ndarray
    att: np.ndarray
    au: np.ndarray
    has_map: np.ndarray
    scores: dict[str, np.ndarray]

    @property
    def pred(self) -> np.ndarray:
        """Predicted class per image."""
        return self.probs.argmax(axis=1)


def to_batch(faces: np.ndarray, model: FERModel) -> torch.Tensor:
    """(B,S,S,3) uint8 faces -> normalised (B,3,S,S) float32, exactly as the evaluation path normalises."""
    from fer_pipeline.inputs import faces_to_array

    return torch.from_numpy(faces_to_array(faces, model.mean, model.std))


@torch.no_grad()
def score_batch(
    model: FERModel,
    faces: np.ndarray,
    points: np.ndarray,
    settings: dict[str, Any],
    device: torch.device,
    target: np.ndarray | None = None,
) -> Scored:
    """Predict a batch of framed faces and score CAM and attention against the AU map of class `target` (per face;
    None: the predicted class, as `fer predict` does; `fer_pipeline.api.predict` passes a known true class)."""
    from fer_pipeline.aumaps.render import render_maps
    from fer_pipeline.evaluate.metrics import energy_share, pointing_game
    from fer_pipeline.models.maps import attention, cosine, reference_attention, resize

    x = to_batch(faces, model).to(device, memory_format=torch.channels_last)
    layer = model.layer_names[-1]
    out = model(x, layers=(layer,))
    probs = out.logits.float().softmax(dim=1)
    pred = probs.argmax(dim=1)  # the class whose CAM and AU map are drawn: predicted, or `target` when given
    if target is not None:
        pred = torch.as_tensor(np.asarray(target, np.int64), device=pred.device).view(-1)
    cam_t = model.class_cam(x, pred, out)  # the method's own map (gradient methods run their own pass)
    s = int(settings["size"])
    cam = resize(cam_t.detach().float(), (s, s)).cpu()
    att = resize(attention(out.features[layer]).float(), (s, s)).cpu()  # min-max: shown, pointing game, energy share
    att_ref = reference_attention(out.features[layer], (s, s)).cpu()  # what ATT-COS scores, as the evaluation does
    side = faces.shape[1]
    pred_np = pred.cpu().numpy()
    au, has = render_maps(
        points,
        np.tile([side, side], (len(faces), 1)),
        pred_np,
        codebook=str(settings["codebook"]),
        size=s,
        radius=float(settings["radius"]),
        smoothing=float(settings["smoothing"]),
    )
    has = has & (pred_np != NEUTRAL)
    scores = {c: np.full(len(faces), np.nan) for c in SCORE_COLUMNS}
    if has.any():
        au_t = torch.from_numpy(au[has])
        for name, m, for_cos in (("cam", cam[has], cam[has]), ("att", att[has], att_ref[has])):
            scores[f"{name}_cos"][has] = cosine(for_cos, au_t).numpy()
            scores[f"{name}_pointing"][has] = pointing_game(m.numpy(), au[has])
            scores[f"{name}_energy"][has] = energy_share(m.numpy(), au[has])
    return Scored(probs.cpu().numpy(), cam.numpy(), att.numpy(), au, has, scores)
