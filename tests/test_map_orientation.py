"""Each method's own class map is oriented like its logits: after a few guided steps on tiny synthetic faces, the map of
the labelled class is higher on the face's AU region than off it, and hiding that region lowers the class's score.

A map that is min-max scaled from a mostly negative response (the face most negative) or that seeks the background
fails the first check while its logits still depend on the face (the second check). PRM's peak stimulation does that
when trained from scratch with the alignment (README "Table 1 on a CPU"): pinned as a strict xfail, so a change that
makes it face-oriented shows up as XPASS.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F

from fer_pipeline.core.train_config import method_params
from fer_pipeline.models import FERModel, create_model, list_methods
from fer_pipeline.models.gradient import GradientCAM
from fer_pipeline.models.loss import guided_loss
from fer_pipeline.models.registry import _METHODS
from tests.faces import face_tensors
from tests.test_methods import TINY, TRAIN

torch.set_num_threads(2)
pytestmark = pytest.mark.slow  # every case trains a model
SIZE, STEPS, LAM = 48, 60, 4.0
#: The two transformer methods need more steps before hiding the AU region lowers their class score: at 60 steps that
#: precondition read +0.076 (APViT) and -0.027 (TS-CAM) at 2 threads, -0.019 and +0.011 at 1, a verdict on the last
#: bits; at 150 steps +0.23 and +0.37 at 2 threads, +0.13 and +0.02 at 1.
STEPS_OF = {"apvit": 150, "tscam": 150}
PRM_TRAP = "PRM's peak stimulation from scratch with the alignment: its class maps end most negative on the face"
#: Every registered method with its published options (PRM: peak stimulation).
CASES = [
    pytest.param(m, {}, id=m, marks=[pytest.mark.xfail(strict=True, reason=PRM_TRAP)] if m == "prm" else [])
    for m in list_methods()
]


def trained(method: str, options: dict[str, Any], faces: tuple[torch.Tensor, ...]) -> FERModel:
    """The method at test size (6x6 maps at 48 px), `STEPS` (`STEPS_OF`) AdamW steps of CE + λ·alignment through its hooks."""
    x, y, au, has = faces
    own = {method: {**TINY.get(method, {}), **options}}
    train, opts = method_params({**TRAIN, "input_size": SIZE, "output_stride": 8}, own, method)
    torch.manual_seed(0)
    model = create_model(method, backbone=train["backbone"], output_stride=8, input_size=SIZE, **opts).train()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4, fused=True)  # exact sqrt
    g = torch.Generator().manual_seed(0)
    for _ in range(STEPS_OF.get(method, STEPS)):
        idx = torch.randint(0, len(y), (16,), generator=g)
        xm, aum, hm, ym = model.mix_batch(x[idx], au[idx], has[idx], y[idx])
        out = model(xm, layers=(5,))
        loss = guided_loss(out, ym, aum, hm, LAM, (5,))[0]
        extra = model.extra_loss(out, ym)
        (loss if extra is None else loss + extra).backward()
        opt.step()
        opt.zero_grad()
    return model.eval()


@pytest.fixture(scope="module")
def cam_weights(faces: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
    """The trained CAM classifier's weights, which GradCAM, GradCAM++ and LayerCAM read (they train as CAM)."""
    return trained("cam", {}, faces).state_dict()


@pytest.fixture(scope="module")
def faces() -> tuple[torch.Tensor, ...]:
    """70 synthetic 48 px faces (10 a class) with their AU maps."""
    return face_tensors(70, size=SIZE, seed=0)


@pytest.mark.parametrize(("method", "options"), CASES)
def test_class_map_is_oriented_like_the_logits(
    method: str, options: dict[str, Any], faces: tuple[torch.Tensor, ...], request: pytest.FixtureRequest
) -> None:
    if method == "cam" or issubclass(_METHODS[method], GradientCAM):  # post hoc: the CAM model, read by grad-cam
        model = create_model(method, backbone=TRAIN["backbone"], output_stride=8, input_size=SIZE).eval()
        model.load_state_dict(request.getfixturevalue("cam_weights"))
    else:
        model = trained(method, options, faces)
    x, y, au, has = faces
    x, y, au = x[:35][has[:35]], y[:35][has[:35]], au[:35][has[:35]]  # the AU classes' first faces
    region = F.interpolate(au[:, None], size=(SIZE, SIZE), mode="bilinear")[:, 0] > 0.5
    with torch.no_grad():
        score = model(x, layers=()).logits.gather(1, y[:, None])[:, 0]
        hidden = model(x * ~region[:, None], layers=()).logits.gather(1, y[:, None])[:, 0]  # AU region set to the mean
    cam = F.interpolate(model.class_cam(x, y)[:, None].float(), size=(SIZE, SIZE), mode="bilinear")[:, 0]
    inside = torch.stack([c[r].mean() - c[~r].mean() for c, r in zip(cam, region, strict=True)])
    assert (score - hidden).mean() > 0, "hiding the AU region does not lower the class score: the check means nothing"
    assert inside.mean() > 0.02 and (inside > 0).float().mean() >= 0.5, (inside.mean().item(), (inside > 0).float().mean().item())
