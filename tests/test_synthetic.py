"""Synthetic face generator: determinism, geometry of every AU, locality of expression pixels, shortcut-cue rates."""

from __future__ import annotations

import numpy as np
import pytest

from fer_pipeline.core.codebook import ALL_AUS, aus_for
from fer_pipeline.core.labels import LABELS, NUM_CLASSES
from fer_pipeline.data.synthetic import (
    SyntheticConfig,
    SyntheticSample,
    apply_aus,
    cue_for,
    make_sample,
    mean_face,
    render_face,
)

CFG = SyntheticConfig()
HAPPY, SURPRISE, FEAR = LABELS.index("happiness"), LABELS.index("surprise"), LABELS.index("fear")


def _iod(p: np.ndarray) -> float:
    return float(np.hypot(*((p[42] + p[45] - p[36] - p[39]) / 2)))


def test_make_sample_is_a_pure_function_of_its_arguments() -> None:
    a = make_sample(7, 3, HAPPY, "train", CFG)
    make_sample(7, 99, 0, "test", CFG)  # interleaved calls must not matter
    b = make_sample(7, 3, HAPPY, "train", CFG)
    assert a.image.tobytes() == b.image.tobytes()
    assert a.landmarks.tobytes() == b.landmarks.tobytes()
    assert (a.label, a.cue) == (b.label, b.cue)
    c = make_sample(7, 4, HAPPY, "train", CFG)
    d = make_sample(8, 3, HAPPY, "train", CFG)
    assert np.abs(a.image.astype(int) - c.image.astype(int)).mean() > 10
    assert np.abs(a.image.astype(int) - d.image.astype(int)).mean() > 10
    assert not np.allclose(a.landmarks, c.landmarks)


@pytest.mark.parametrize("size", [64, 112])
def test_shapes_and_dtypes(size: int) -> None:
    s = make_sample(0, 1, 2, "val", SyntheticConfig(size=size))
    assert isinstance(s, SyntheticSample)
    assert s.image.shape == (size, size, 3) and s.image.dtype == np.uint8
    assert s.landmarks.shape == (68, 2) and s.landmarks.dtype == np.float32
    assert s.label == 2 and s.cue == -1
    assert s.image.std() > 10  # not a blank canvas


def test_landmarks_stay_inside_the_image_even_at_full_intensity() -> None:
    cfg = SyntheticConfig(size=64, intensity=(1.0, 1.0))  # raised brows and dropped jaws near the border
    pts = np.stack([make_sample(9, i, i % NUM_CLASSES, "train", cfg).landmarks for i in range(700)])
    assert np.isfinite(pts).all()
    assert pts.min() >= 0 and pts.max() <= cfg.size - 1


def test_identity_and_pose_vary() -> None:
    pts = np.stack([make_sample(2, i, 0, "train", CFG).landmarks for i in range(60)])
    iods = np.array([_iod(p) for p in pts])
    assert iods.max() / iods.min() > 1.3  # scale
    angles = np.degrees([np.arctan2(*(p[45] - p[36])[::-1]) for p in pts])
    assert angles.min() < -5 and angles.max() > 5  # in-plane rotation
    centres = pts.mean(1)
    assert centres.std(0).min() > 2  # translation
    mouth_w = np.array([np.hypot(*(p[54] - p[48])) for p in pts]) / iods
    assert mouth_w.max() / mouth_w.min() > 1.2  # face shape


def test_mean_face_is_a_symmetric_face_inside_the_image() -> None:
    p = mean_face(112)
    assert p.shape == (68, 2) and p.dtype == np.float32
    assert p.min() > 0 and p.max() < 111
    mirror = [*range(16, -1, -1), *range(26, 16, -1), 27, 28, 29, 30, 35, 34, 33, 32, 31]  # iBUG left/right pairs
    mirror += [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40, 54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]
    mirror += [64, 63, 62, 61, 60, 67, 66, 65]
    cx = p[[36, 39, 42, 45], 0].mean()
    np.testing.assert_allclose(p[mirror, 0], 2 * cx - p[:, 0], atol=1e-3)
    np.testing.assert_allclose(p[mirror, 1], p[:, 1], atol=1e-3)
    # iBUG order: brows above eyes above nose tip above mouth above chin
    assert p[17:27, 1].max() < p[36:48, 1].min() < p[33, 1] < p[51, 1] < p[57, 1] < p[8, 1]
    assert p[36, 0] < p[39, 0] < p[42, 0] < p[45, 0]


# ---- AU geometry (image y grows downwards: "up" = smaller y) ----
P0 = mean_face(112).astype(np.float64)
I0 = _iod(P0)


def _moved(au: int, intensity: float = 1.0) -> np.ndarray:
    return apply_aus(P0, [au], intensity).astype(np.float64) - P0


def _up(d: np.ndarray, *idx: int) -> bool:
    return bool((d[list(idx), 1] < -0.02 * I0).all())


def _down(d: np.ndarray, *idx: int) -> bool:
    return bool((d[list(idx), 1] > 0.02 * I0).all())


def _width(p: np.ndarray, a: int, b: int) -> float:
    return float(abs(p[b, 0] - p[a, 0]))


def test_every_codebook_au_is_modelled() -> None:
    for au in ALL_AUS:
        assert np.abs(_moved(au)).max() > 0.02 * I0, au


@pytest.mark.parametrize(
    ("au", "check"),
    [
        (1, lambda d, q: _up(d, 20, 21, 22, 23) and abs(d[17, 1]) < 1e-6),
        (2, lambda d, q: _up(d, 17, 18, 25, 26) and abs(d[21, 1]) < 1e-6),
        (4, lambda d, q: _down(d, 20, 21, 22, 23) and _width(q, 21, 22) < _width(P0, 21, 22) - 0.05 * I0),
        (5, lambda d, q: _up(d, 37, 38, 43, 44)),
        (6, lambda d, q: _up(d, 40, 41, 46, 47)),
        (7, lambda d, q: (q[40, 1] - q[38, 1]) < (P0[40, 1] - P0[38, 1]) - 0.04 * I0),
        (9, lambda d, q: _up(d, 31, 32, 33, 34, 35)),
        (10, lambda d, q: _up(d, 49, 50, 51, 52, 53, 61, 62, 63)),
        (12, lambda d, q: _up(d, 48, 54) and d[48, 0] < -0.05 * I0 and d[54, 0] > 0.05 * I0),
        (15, lambda d, q: _down(d, 48, 54)),
        (16, lambda d, q: _down(d, 56, 57, 58, 66)),
        (17, lambda d, q: _up(d, 7, 8, 9, 57)),
        (20, lambda d, q: _width(q, 48, 54) > _width(P0, 48, 54) + 0.15 * I0 and abs(d[48, 1]) < 0.02 * I0),
        (23, lambda d, q: _width(q, 48, 54) < _width(P0, 48, 54) - 0.05 * I0 and q[57, 1] - q[51, 1] < P0[57, 1] - P0[51, 1]),
        (24, lambda d, q: q[57, 1] - q[51, 1] < P0[57, 1] - P0[51, 1] - 0.05 * I0),
        (25, lambda d, q: q[66, 1] - q[62, 1] > P0[66, 1] - P0[62, 1] + 0.05 * I0),
        (26, lambda d, q: _down(d, 57, 66, 8, 7, 9) and abs(d[0, 1]) < 1e-6),
        (27, lambda d, q: d[57, 1] > _moved(26)[57, 1] and _width(q, 48, 54) < _width(P0, 48, 54)),
    ],
)
def test_au_moves_its_points_the_right_way(au: int, check) -> None:
    d = _moved(au)
    assert check(d, P0 + d)
    # points outside the AU's own region never move; eye corners (the face frame) never move for any AU
    assert np.abs(d[[36, 39, 42, 45, 0, 16, 27]]).max() < 1e-4


def test_au_deformation_scales_with_intensity_and_face_size_and_follows_rotation() -> None:
    d1, d05 = _moved(12, 1.0), _moved(12, 0.5)
    np.testing.assert_allclose(d05, d1 / 2, atol=1e-3)
    centre = P0.mean(0)
    big = (P0 - centre) * 2 + centre
    np.testing.assert_allclose(apply_aus(big, [12], 1.0) - big, 2 * d1, atol=2e-3)
    th = np.radians(20)
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    turned = (P0 - centre) @ rot.T + centre
    np.testing.assert_allclose(apply_aus(turned, [12, 26], 1.0) - turned, (apply_aus(P0, [12, 26], 1.0) - P0) @ rot.T, atol=2e-3)


def test_lips_never_cross_when_aus_combine() -> None:
    for label in range(NUM_CLASSES):
        q = apply_aus(P0, aus_for(label), 1.0)
        assert (q[[67, 66, 65], 1] >= q[[61, 62, 63], 1] - 1e-4).all(), LABELS[label]
        assert (q[[41, 40, 47, 46], 1] > q[[37, 38, 43, 44], 1]).all(), LABELS[label]


def test_unknown_au_is_rejected() -> None:
    with pytest.raises(ValueError, match="AU3"):
        apply_aus(P0, [3], 1.0)


# ---- pixels: the expression lives in the AU regions only ----
def test_happiness_differs_from_neutral_only_around_eyes_cheeks_and_mouth() -> None:
    for index in range(4):
        neu, hap = make_sample(5, index, 0, "train", CFG), make_sample(5, index, HAPPY, "train", CFG)
        p, iod = neu.landmarks, _iod(neu.landmarks)
        moved = np.flatnonzero(np.abs(hap.landmarks - p).max(1) > 1e-3)
        assert set(moved) <= {40, 41, 46, 47, *range(48, 68)}  # AU6 lower lids, AU12/25 mouth
        lo = np.minimum(p[[36, 37, 38, 43, 44, 45, 31, 35]].min(0), p[48:68].min(0)) - 0.45 * iod
        hi = np.maximum(p[[36, 45, 31, 35]].max(0), p[48:68].max(0)) + 0.45 * iod
        ys, xs = np.mgrid[0 : CFG.size, 0 : CFG.size]
        box = (xs >= lo[0]) & (xs <= hi[0]) & (ys >= lo[1]) & (ys <= hi[1])
        diff = np.abs(neu.image.astype(int) - hap.image.astype(int)).max(-1)
        assert diff[~box].max() == 0, index  # background, hair, brows, forehead, jaw: identical
        assert (diff[box] > 10).sum() > 50, index  # the expression is visible


@pytest.mark.parametrize("label", range(1, NUM_CLASSES))
def test_every_expression_changes_pixels_only_near_the_landmarks_its_aus_move(label: int) -> None:
    texture_anchors = [27, 28, 29, 31, 35]  # nose wrinkles and nasolabial folds start at unmoved nose points
    for index in range(3):
        neu, expr = make_sample(6, index, 0, "test", CFG), make_sample(6, index, label, "test", CFG)
        iod = _iod(neu.landmarks)
        moved = np.flatnonzero(np.abs(expr.landmarks - neu.landmarks).max(1) > 1e-3)
        assert len(moved) > 0
        anchors = np.r_[neu.landmarks[moved], expr.landmarks[moved], neu.landmarks[texture_anchors]]
        ys, xs = np.nonzero(np.abs(neu.image.astype(int) - expr.image.astype(int)).max(-1) > 0)
        dist = np.hypot(xs[:, None] - anchors[:, 0], ys[:, None] - anchors[:, 1]).min(1)
        assert dist.max() < 0.5 * iod + 2, (LABELS[label], index)


def test_raised_brows_move_only_the_brows_not_the_hairline() -> None:
    p = mean_face(112)
    q = apply_aus(p, [1, 2], 1.0)
    iod = _iod(p)
    for seed in range(6):
        a = render_face(p, [], 1.0, np.random.default_rng(seed), 112, -1)
        b = render_face(q, [1, 2], 1.0, np.random.default_rng(seed), 112, -1)
        ys, xs = np.nonzero(np.abs(a.astype(int) - b.astype(int)).max(-1) > 0)
        brows = np.r_[p[17:27], q[17:27]]
        dist = np.hypot(xs[:, None] - brows[:, 0], ys[:, None] - brows[:, 1]).min(1)
        assert len(dist) > 20 and dist.max() < 0.15 * iod + 2, seed


def test_render_draws_the_same_identity_for_any_aus() -> None:
    p = mean_face(112)
    a = render_face(p, [], 1.0, np.random.default_rng(3), 112, -1)
    b = render_face(p, [4, 9], 1.0, np.random.default_rng(3), 112, -1)  # furrow + nose wrinkles, no geometry change
    diff = np.abs(a.astype(int) - b.astype(int)).max(-1)
    upper_face = np.zeros_like(diff, bool)
    y0, y1 = int(p[17:27, 1].min()) - 3, int(p[33, 1]) + 3
    x0, x1 = int(p[21, 0]) - 8, int(p[22, 0]) + 8
    upper_face[y0:y1, x0:x1] = True
    assert diff[~upper_face].max() == 0
    assert (diff[upper_face] > 10).sum() > 10


# ---- shortcut cue ----
def test_cue_is_absent_without_shortcut() -> None:
    for split in ("train", "val", "test"):
        assert {make_sample(0, i, i % NUM_CLASSES, split, CFG).cue for i in range(20)} == {-1}


def test_cue_rates_follow_the_config() -> None:
    cfg = SyntheticConfig(shortcut=True, shortcut_p_train=0.9, shortcut_p_test=0.5)
    rng = np.random.default_rng(0)
    n = 4000
    labels = rng.integers(NUM_CLASSES, size=n)
    train = np.array([cue_for("train", int(y), rng, cfg) for y in labels])
    assert set(train[train != labels]) == {-1}
    assert abs((train == labels).mean() - 0.9) < 0.02
    test = np.array([cue_for("test", int(y), rng, cfg) for y in labels])
    present = test >= 0
    assert abs(present.mean() - 0.5) < 0.03
    assert abs((test[present] == labels[present]).mean() - 1 / NUM_CLASSES) < 0.03  # usually conflicts
    assert set(test[present]) == set(range(NUM_CLASSES))
    with pytest.raises(ValueError, match="split"):
        cue_for("dev", 0, rng, cfg)


def test_cue_mark_is_drawn_on_the_border_and_nowhere_else() -> None:
    on = SyntheticConfig(shortcut=True, shortcut_p_train=1.0)
    positions = set()
    for label in range(NUM_CLASSES):
        a, b = make_sample(4, label, label, "train", CFG), make_sample(4, label, label, "train", on)
        assert b.cue == label and np.array_equal(a.landmarks, b.landmarks)
        ys, xs = np.nonzero(np.abs(a.image.astype(int) - b.image.astype(int)).max(-1) > 0)
        assert len(ys) > 0
        assert ys.max() - ys.min() < 0.15 * CFG.size and xs.max() - xs.min() < 0.15 * CFG.size  # one small mark
        centre = (ys.mean() / CFG.size, xs.mean() / CFG.size)
        assert min(*centre, 1 - centre[0], 1 - centre[1]) < 0.1  # on the border
        positions.add((round(centre[0], 1), round(centre[1], 1)))
    assert len(positions) == NUM_CLASSES  # class-specific location


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        SyntheticConfig(intensity=(1.0, 0.5))
    with pytest.raises(ValueError):
        SyntheticConfig(shortcut_p_test=1.5)
    with pytest.raises(ValueError):
        SyntheticConfig(codebook="nope")
    with pytest.raises(ValueError):
        make_sample(0, 0, NUM_CLASSES, "train", CFG)


def test_prepare_writes_the_same_bytes_in_parallel(tmp_path) -> None:
    from fer_pipeline.core.paths import GT_LANDMARKS
    from fer_pipeline.data.datasets import prepare_synthetic

    data = {"seed": 0, "val_fraction": 0.15, "test_fraction": 0.2}
    synth = {"n": 300, "seed": 3, "size": 32}  # 300 rows: two 256-row chunks in the parallel run
    one, two = tmp_path / "one", tmp_path / "two"
    a = prepare_synthetic(data, synth, one)
    b = prepare_synthetic(data, synth, two, n_jobs=2)
    assert a.equals(b)
    assert (one / GT_LANDMARKS).read_bytes() == (two / GT_LANDMARKS).read_bytes()
    for rel in a["path"]:
        assert (one / rel).read_bytes() == (two / rel).read_bytes(), rel
