"""Metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fer_pipeline.core.labels import NEUTRAL
from fer_pipeline.evaluate.metrics import (
    accuracy,
    au_macro,
    confusion_matrix,
    energy_share,
    macro_f1,
    per_class_mean,
    pointing_game,
)

Y = np.array([0, 0, 1, 1, 2, 2])
P = np.array([0, 1, 1, 1, 2, 0])


def test_accuracy_percent() -> None:
    assert accuracy(Y, P) == pytest.approx(100 * 4 / 6)
    assert math.isnan(accuracy(np.array([]), np.array([])))


def test_confusion_rows_are_true() -> None:
    cm = confusion_matrix(Y, P, num_classes=3)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    with pytest.raises(ValueError):
        confusion_matrix(np.array([0, 3]), np.array([0, 1]), num_classes=3)


def test_macro_f1_hand_computed() -> None:
    # class 0: tp 1, fp 1, fn 1 -> 0.5; class 1: tp 2, fp 1, fn 0 -> 0.8; class 2: tp 1, fp 0, fn 1 -> 2/3
    assert macro_f1(Y, P, num_classes=3) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    # Classes absent from both y and pred do not drag the mean down.
    assert macro_f1(Y, P, num_classes=7) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)


def test_per_class_mean_and_au_macro() -> None:
    values = np.array([0.1, 0.9, 0.5, 0.7, 0.2, 5.0])
    labels = np.array([0, 1, 1, 2, 3, 3])
    valid = np.array([True, True, True, True, True, False])
    pc = per_class_mean(values, labels, valid)
    assert set(pc) == set(range(7))
    assert pc[0] == pytest.approx(0.1) and pc[1] == pytest.approx(0.7) and pc[3] == pytest.approx(0.2)
    assert math.isnan(pc[4]) and math.isnan(pc[6])
    # neutral (0.1) and the NaN classes are ignored: mean of 0.7, 0.7, 0.2
    assert au_macro(pc) == pytest.approx((0.7 + 0.7 + 0.2) / 3)
    assert math.isnan(au_macro({NEUTRAL: 1.0}))


def test_pointing_game() -> None:
    au = np.zeros((2, 8, 8))
    au[:, 2:4, 2:4] = 1.0
    cam = np.zeros((2, 8, 8))
    cam[0, 3, 3] = 1.0  # peak inside the AU region
    cam[1, 6, 6] = 1.0  # peak outside
    np.testing.assert_array_equal(pointing_game(cam, au), [1.0, 0.0])
    assert math.isnan(pointing_game(cam[:1], np.zeros((1, 8, 8)))[0])  # no region: undefined


def test_energy_share() -> None:
    au = np.zeros((2, 8, 8))
    au[:, 2:5, 1:6] = 1.0
    np.testing.assert_allclose(energy_share(au, au), [1.0, 1.0])
    half = au.copy()
    half[1, 7, :] = 3.0 / 8  # 8 pixels * 3/8 = 3 units outside, 15 inside
    np.testing.assert_allclose(energy_share(half, au), [1.0, 15 / 18])
    np.testing.assert_allclose(energy_share(np.zeros((1, 8, 8)), au[:1]), [15 / 64])  # a zero CAM counts as uniform
