"""Beyond-paper metrics on hand-made maps: pointing game, energy share, per-AU shares, cue shares, deletion helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fer_pipeline.aumaps.anchors import ANCHOR_OF
from fer_pipeline.aumaps.render import render_maps
from fer_pipeline.core.codebook import aus_for
from fer_pipeline.core.labels import LABELS, NEUTRAL
from fer_pipeline.data.synthetic import SyntheticConfig, cue_box, make_sample
from fer_pipeline.evaluate.extra_metrics import (
    ANCHORS,
    add_per_class,
    anchor_shares,
    au_partition,
    extra_metrics,
    map_scores,
)
from fer_pipeline.evaluate.faithfulness import auc, pixel_ranks, subset_indices
from fer_pipeline.evaluate.metrics import energy_share
from fer_pipeline.evaluate.shortcut import cue_masks, cue_metrics

HAPPY = LABELS.index("happiness")
SIZE = 56


def faces(labels: list[int], size: int = 112) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generator landmarks of synthetic faces of `labels`, their image sizes, and their rendered AU maps."""
    cfg = SyntheticConfig(size=size)
    pts = np.stack([make_sample(3, i, k, "test", cfg).landmarks for i, k in enumerate(labels)])
    hw = np.tile([size, size], (len(labels), 1))
    maps, _ = render_maps(pts, hw, np.array(labels), size=SIZE)
    return pts, hw, maps


def test_pointing_and_energy_on_hand_made_maps() -> None:
    au = np.zeros((3, 8, 8))
    au[:, 2:5, 1:6] = 1.0
    cam = np.zeros((3, 8, 8))
    cam[0, 3, 3] = 1.0  # peak inside the AU region
    cam[1, 7, 7] = 1.0  # peak outside
    cam[2] = au[2]  # the AU map itself
    s = map_scores(cam, cam, au, np.array([True, True, True]))
    np.testing.assert_array_equal(s["cam_pointing"], [1.0, 0.0, 1.0])
    np.testing.assert_allclose(s["cam_energy"], [1.0, 0.0, 1.0])  # a map equal to the AU map: share 1
    none = map_scores(cam, cam, au, np.array([True, False, True]))  # no AU map (neutral): undefined, not 0
    assert math.isnan(none["att_pointing"][1]) and math.isnan(none["att_energy"][1])


def test_per_class_and_macro() -> None:
    m: dict = {"per_class": {}}
    labels = np.array([NEUTRAL, HAPPY, HAPPY, 2])
    add_per_class(m, "x", np.array([9.0, 1.0, 0.0, 0.25]), labels, labels != NEUTRAL)
    assert m["per_class"]["happiness"]["x"] == 0.5 and m["per_class"]["surprise"]["x"] == 0.25
    assert math.isnan(m["per_class"]["neutral"]["x"]) and m["x"] == pytest.approx(0.375)  # macro over AU classes only


def test_partition_is_the_au_region_and_shares_add_up() -> None:
    labels = [1, 2, 3, 4, 5, 6, 1, 4]
    pts, hw, maps = faces(labels)
    part = au_partition(pts, hw, np.array(labels), size=SIZE)
    # the union of the per-AU regions is the AU map's >= 0.5 region (same radius and smoothing as the renderer)
    union, region = part >= 0, maps >= 0.5
    iou = (union & region).sum(axis=(1, 2)) / (union | region).sum(axis=(1, 2))
    assert iou.min() > 0.98, iou
    att = np.random.default_rng(0).random((len(labels), SIZE, SIZE))
    shares = anchor_shares(att, part, np.array(labels))
    # per-AU shares partition the region: they sum to the energy share of the attention on the region
    np.testing.assert_allclose(np.nansum(shares, axis=1), energy_share(att, union.astype(float)), rtol=1e-9)
    assert np.all(np.nansum(shares, axis=1) <= 1.0)
    # regions a class does not use are NaN; the ones it uses are finite
    for i, k in enumerate(labels):
        used = {ANCHORS.index(ANCHOR_OF[au]) for au in aus_for(k)}
        assert {j for j in range(len(ANCHORS)) if np.isfinite(shares[i, j])} == used


def test_attention_on_one_au_region_scores_that_au() -> None:
    pts, hw, maps = faces([HAPPY])
    part = au_partition(pts, hw, np.array([HAPPY]), size=SIZE)
    corners = ANCHORS.index("mouth_corners")  # AU12
    att = (part == corners).astype(float)
    m: dict = {"per_class": {}}
    extra_metrics(m, cam=att, att=att, au=maps, has_map=np.array([True]), labels=np.array([HAPPY]), partition=part)
    share = m["per_class"]["happiness"]["att_au_share"]
    assert set(share) == {"AU6", "AU12", "AU25"}
    assert share["AU12"] == pytest.approx(1.0) and share["AU6"] == 0.0 and share["AU25"] == 0.0
    assert m["att_au_share"]["AU12"] == pytest.approx(1.0)
    assert m["att_energy"] == pytest.approx(1.0) and m["cam_pointing"] == 1.0
    neutral = au_partition(pts, hw, np.array([NEUTRAL]), size=SIZE)
    assert (neutral == -1).all() and np.isnan(anchor_shares(att, neutral, np.array([NEUTRAL]))).all()


def test_cue_box_matches_the_rendered_mark_and_its_share() -> None:
    cfg = SyntheticConfig(size=112, shortcut=True, shortcut_p_test=1.0)
    s = make_sample(0, 0, HAPPY, "test", cfg)
    plain = make_sample(0, 0, HAPPY, "test", SyntheticConfig(size=112))  # same face, same draws, no mark
    x0, y0, x1, y1 = cue_box(s.cue, 112)
    diff = np.abs(s.image.astype(int) - plain.image.astype(int)).sum(axis=2)
    assert diff[y0 + 1 : y1 - 1, x0 + 1 : x1 - 1].min() > 0  # the mark covers its box
    diff[max(0, y0 - 3) : y1 + 3, max(0, x0 - 3) : x1 + 3] = 0
    assert diff.max() == 0  # and nothing outside it (but the camera blur's rim)
    cue = np.array([s.cue, -1, (s.cue + 1) % 7])
    labels = np.array([s.cue, HAPPY, s.cue])
    masks = cue_masks(cue, np.tile([112, 112], (3, 1)), SIZE)
    assert masks[1].sum() == 0 and masks[0].sum() > 0
    out = cue_metrics(masks, np.ones_like(masks), cue, labels, np.tile([112, 112], (3, 1)))
    assert out["cue_cam_share_agree"] == pytest.approx(1.0) and out["cue_cam_share_conflict"] == pytest.approx(1.0)
    assert out["cue_att_share_agree"] == pytest.approx(masks[0].mean())  # a uniform map's share is the box area
    with pytest.raises(ValueError, match="square"):
        cue_masks(np.array([0]), np.array([[100, 120]]), SIZE)


def test_deletion_helpers() -> None:
    sal = torch.zeros(1, 2, 2)
    sal[0, 1, 1] = 1.0
    ranks = pixel_ranks(sal, (2, 2))
    assert ranks[0, 3] == 0 and sorted(ranks[0].tolist()) == [0, 1, 2, 3]  # most salient pixel first
    curve = torch.tensor([[1.0, 0.5, 0.0], [1.0, 1.0, 1.0]])
    np.testing.assert_allclose(auc(curve), [0.5, 1.0])
    assert subset_indices(10, 4).tolist() == [0, 3, 6, 9] and subset_indices(3, 8).tolist() == [0, 1, 2]
    assert subset_indices(5, 0).size == 0
