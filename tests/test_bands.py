"""Noise bands: the bootstrap statistics agree with the point metrics, resamples pair two runs, verdicts read the band."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

from fer_pipeline.evaluate.bootstrap import (
    BETTER,
    NO_BAND,
    NOISE,
    WORSE,
    Scores,
    band,
    difference_band,
    read_scores,
    resample_counts,
    scores_csv,
    seed_spread,
    statistics,
    verdict,
)
from fer_pipeline.evaluate.metrics import accuracy, macro_f1
from fer_pipeline.evaluate.run import au_macro_cos
from fer_pipeline.report.bands import bands_json, bands_table, method_differences, render_bands
from fer_pipeline.report.tables import METRICS
from fer_pipeline.review.compare import UNKNOWN
from fer_pipeline.review.noise import SeedNoise


def fake_scores(n: int = 300, acc: float = 0.7, shift: float = 0.0, seed: int = 1) -> Scores:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 7, n)
    pred = np.where(rng.random(n) < acc, y, rng.integers(0, 7, n))
    cam = np.clip(rng.normal(0.5 + shift, 0.1, n), 0, 1)
    cam[y == 6] = np.nan  # neutral has no AU map
    att = np.clip(rng.normal(0.4 + shift, 0.1, n), 0, 1)
    att[y == 6] = np.nan
    return Scores(tuple(f"s{i}" for i in range(n)), y, pred, cam, att)


def test_unit_weights_give_the_point_metrics() -> None:
    s = fake_scores()
    got = statistics(s, np.ones((1, len(s)), np.int64))
    has = np.isfinite(s.cam_cos)
    assert got["cl"][0] == pytest.approx(accuracy(s.label, s.pred))
    assert got["macro_f1"][0] == pytest.approx(macro_f1(s.label, s.pred))
    assert got["cam_cos"][0] == pytest.approx(au_macro_cos(s.cam_cos, s.label, has))
    assert got["att_cos"][0] == pytest.approx(au_macro_cos(s.att_cos, s.label, has))


def test_resamples_depend_on_seed_and_n_only() -> None:
    a, b = resample_counts(50, 200), resample_counts(50, 200)
    assert np.array_equal(a, b) and (a.sum(axis=1) == 50).all()
    assert not np.array_equal(a, resample_counts(50, 200, seed=1))


def test_band_holds_the_point_value_and_narrows_with_more_images() -> None:
    small, large = band(fake_scores(100)), band(fake_scores(2000))
    point = statistics(fake_scores(100), np.ones((1, 100), np.int64))
    for key in ("cl", "macro_f1", "cam_cos", "att_cos"):
        lo, hi = small[key]
        assert lo <= point[key][0] <= hi
        assert large[key][1] - large[key][0] < hi - lo


def test_paired_difference_verdicts() -> None:
    base = fake_scores()
    same = difference_band(base, base)
    assert all(same[k]["change"] == 0 and same[k]["band"] == [0.0, 0.0] for k in ("cl", "cam_cos"))
    up = Scores(base.sample_id, base.label, base.label, base.cam_cos + 0.05, base.att_cos - 0.05)  # every image right
    diff = difference_band(up, base)
    assert verdict(diff["cl"]["change"], diff["cl"]["band"]) == BETTER
    assert verdict(diff["cam_cos"]["change"], diff["cam_cos"]["band"]) == BETTER
    assert verdict(diff["att_cos"]["change"], diff["att_cos"]["band"]) == WORSE
    assert verdict(0.01, [-0.02, 0.03]) == NOISE and verdict(None, [0, 1]) == NO_BAND and verdict(1.0, None) == NO_BAND
    other = Scores(tuple(reversed(base.sample_id)), base.label, base.pred, base.cam_cos, base.att_cos)
    with pytest.raises(ValueError, match="different test images"):
        difference_band(other, base)


def test_scores_csv_round_trip_and_report_section() -> None:
    s = fake_scores(40)
    back = read_scores(io.StringIO(scores_csv(s)))
    assert back.sample_id == s.sample_id and np.array_equal(back.pred, s.pred)
    assert np.allclose(back.cam_cos, s.cam_cos, atol=1e-6, equal_nan=True)
    with pytest.raises(ValueError, match="lacks the columns"):
        read_scores(io.StringIO("sample_id,label\na,1\n"), "plots/x/scores.csv")
    runs = {"cam-noaus": fake_scores(), "cam-aus": fake_scores(shift=0.1)}
    runs["cam-aus"] = Scores(runs["cam-noaus"].sample_id, *[getattr(runs["cam-aus"], f) for f in
                                                            ("label", "pred", "cam_cos", "att_cos")])
    details = {r: {"cl": 1.0, "macro_f1": 0.1, "cam_cos": 0.5, "att_cos": 0.4, "band": band(s)} for r, s in runs.items()}
    details["cam-aus"]["seeds"] = seed_spread({0: {"cl": 70.0}, 1: {"cl": 72.0}, 2: {"cl": math.nan}})
    details["cam-aus"]["cl"] = 71.0  # the evaluate stage's details hold the seed mean (bootstrap.with_seed_mean)
    unmeasured = bands_table(details, method_differences(runs, details, ["cam"]), ["cam"])
    assert unmeasured.loc[0, "verdict"] == UNKNOWN  # CL moved; the λ = 0 run has one seed and no seed-noise measurement
    sd = {k: 0.01 for k in ("cl", "macro_f1", "cam_cos", "att_cos")}
    diffs = method_differences(runs, details, ["cam"], SeedNoise("d" * 40, (0, 1, 2), {"cam-noaus": sd, "cam-aus": sd}))
    table = bands_table(details, diffs, ["cam"])
    assert list(table["metric"]) == [label for _, label in METRICS]
    assert table.loc[3, "metric"] == "ATT-COS (reference: raw, shifted if negative)"  # says how the headline is computed
    assert table.loc[0, "w/ AUs"] == "71.00 ± 1.41 (3 seeds)"
    assert table.loc[0, "change"] == "+70.00"  # the change of the seed means (71 - 1), not of the first seed's scores
    assert table.loc[2, "change"] == f"{diffs['cam']['cam_cos']['change']:+.4f}"  # no seed spread: the paired change
    assert set(table["verdict"]) <= {BETTER, WORSE, NOISE}
    assert "## Noise bands" in render_bands(table, seeds=3)
    assert bands_json(details, diffs, ["cam"])["with_vs_without"]["cam"]["cl"]["verdict"] == table.loc[0, "verdict"]


def test_seed_mean_and_extra_seed_params() -> None:
    from fer_pipeline.core.seeds import all_seeds, extra_seeds
    from fer_pipeline.evaluate.bootstrap import with_seed_mean

    merged = with_seed_mean({0: {"cl": 70.0, "cam_cos": 0.5, "n": 28, "per_class": {"happiness": {}}}, 1: {"cl": 74.0,
                                                                                                          "cam_cos": 0.7}})
    assert merged["cl"] == 72.0 and merged["cam_cos"] == pytest.approx(0.6) and merged["n"] == 28 and "per_class" in merged
    assert merged["seeds"]["seeds"] == [0, 1] and merged["seeds"]["cl"]["values"] == [70.0, 74.0]
    assert merged["seeds"]["cl"]["sd"] == pytest.approx(2 ** 1.5)
    assert extra_seeds({"report": {"extra_seeds": "[1,2]"}}) == [1, 2] == extra_seeds({"report": {"extra_seeds": [1, 2]}})
    assert all_seeds({"train": {"seed": 3}, "report": {}}) == [3]
    for bad in ([0], [1, 1], ["x"]):
        with pytest.raises(ValueError, match="report.extra_seeds"):
            extra_seeds({"train": {"seed": 0}, "report": {"extra_seeds": bad}})
