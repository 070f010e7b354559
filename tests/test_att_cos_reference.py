"""ATT-COS as the paper's reference code computes it (raw channel mean, upsampled, shifted only when negative), beside
its min-max variant; and the metrics, scores and table rows built on it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fer_pipeline.core.labels import AU_CLASSES, LABELS, NEUTRAL
from fer_pipeline.evaluate.run import ATT_LAYER, Inference, att_cos, summarize
from fer_pipeline.models.maps import attention, cosine, reference_attention

torch.set_num_threads(2)


def _three_blobs(size: int = 56) -> torch.Tensor:
    """(1, size, size) AU-like map in [0, 1]: three flat-topped blobs (radius 9.5 px, soft edge) on a zero background."""
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    out = torch.zeros(size, size)
    for cy, cx in ((16, 15), (16, 41), (40, 28)):
        d = ((yy - cy) ** 2 + (xx - cx) ** 2).sqrt()
        out = torch.maximum(out, torch.sigmoid((9.5 - d) / 1.25))
    return out[None]


def _features(t: torch.Tensor, channels: int = 4) -> torch.Tensor:
    """(B, C, h, w) features whose channel mean is the (B, h, w) map t (channels differ, the mean is t)."""
    spread = torch.linspace(-1.0, 1.0, channels).view(1, channels, 1, 1)
    return t.unsqueeze(1) + spread


@pytest.mark.parametrize(("b", "expected"), [(0.25, 0.953), (0.5, 0.891), (1.0, 0.805)])
def test_background_level_lowers_reference_att_cos_not_minmax(b: float, expected: float) -> None:
    """T = b + A: the reference computation keeps the background level b (cosine drops with b); min-max removes it."""
    au = _three_blobs()
    feat = _features(b + au)
    has = torch.ones(1, dtype=torch.bool)
    assert att_cos(feat, au, has).item() == pytest.approx(expected, abs=0.005)
    assert cosine(attention(feat), au).item() == pytest.approx(1.0, abs=1e-4)
    # A positive map is neither shifted nor rescaled: at the AU map's size it is T itself.
    torch.testing.assert_close(reference_attention(feat, (56, 56)), b + au)


def test_negative_map_is_shifted_by_its_raw_minimum_after_the_reference_resize() -> None:
    """A T_l with negative values: bilinear (align_corners=True, antialias) to the AU size, clamped to T_l's range, then
    shifted by -min(T_l), as the reference does; a map with a positive minimum keeps its level."""
    g = torch.Generator().manual_seed(0)
    t = torch.randn(2, 7, 7, generator=g)
    t[1] = t[1].abs() + 0.3  # second sample: all positive
    out = reference_attention(_features(t), (56, 56))
    up = F.interpolate(t.unsqueeze(1), size=(56, 56), mode="bilinear", align_corners=True, antialias=True).squeeze(1)
    lo, hi = t.amin(dim=(1, 2)), t.amax(dim=(1, 2))
    up = torch.minimum(torch.maximum(up, lo.view(-1, 1, 1)), hi.view(-1, 1, 1))
    torch.testing.assert_close(out[0], up[0] - lo[0])
    torch.testing.assert_close(out[1], up[1])
    assert out[0].min().item() >= -1e-6  # shifted: non-negative
    assert out[1].min().item() >= lo[1].item() - 1e-6 > 0.0  # not shifted, not min-max: the background level stays
    # Without an AU map the score is NaN, never 0.
    au = _three_blobs().expand(2, 56, 56)
    cos = att_cos(_features(t), au, torch.tensor([True, False]))
    assert math.isfinite(cos[0].item()) and math.isnan(cos[1].item())


def test_summarize_reports_the_reference_headline_and_the_minmax_variant() -> None:
    """`att_cos` (headline, per class) comes from the reference scores, `att_cos_minmax` from the min-max ones; a
    validation pass on another layer gets no min-max figure (it would be another layer's)."""
    y = np.array([k for k in AU_CLASSES for _ in range(2)] + [NEUTRAL])
    has = y != NEUTRAL
    ref = np.where(has, 0.6, np.nan)
    mm = np.where(has, 0.9, np.nan)
    inf = Inference(y=y, pred=y, has_map=has, rows=np.arange(y.size), cam_cos=ref, att_cos={ATT_LAYER: ref},
                    att_cos_minmax=mm)
    metrics, _ = summarize(inf)
    assert metrics["att_cos"] == pytest.approx(0.6) and metrics["att_cos_minmax"] == pytest.approx(0.9)
    happy = metrics["per_class"][LABELS[AU_CLASSES[0]]]
    assert happy["att_cos"] == pytest.approx(0.6) and happy["att_cos_minmax"] == pytest.approx(0.9)
    other = Inference(y=y, pred=y, has_map=has, rows=np.arange(y.size), cam_cos=ref, att_cos={4: ref}, att_cos_minmax=mm)
    assert math.isnan(summarize(other)[0]["att_cos_minmax"])
