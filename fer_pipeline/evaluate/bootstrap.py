"""Noise bands: bootstrap over the test images of a run's headline metrics, and of a difference between two runs.

The resamples are drawn from a fixed seed and the number of test images only, so two runs evaluated on the same test
images get the same resamples: the band of a with-vs-without (or before-vs-after) difference is paired, image by image.
Pure numpy on per-image scores (`plots/<run>/scores.csv`), no model needed.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fer_pipeline.core.labels import AU_CLASSES, NUM_CLASSES

#: Resamples per band, their seed and the band's coverage: fixed, so a band is reproducible and runs pair up.
RESAMPLES = 1000
SEED = 0
LEVEL = 0.95
#: Details keys that get a band (the headline metrics computed from per-image scores); `headline.HEADLINE` names them.
BANDED = ("cl", "macro_f1", "cam_cos", "att_cos")
#: Columns of `plots/<run>/scores.csv`: one row per test image, in the evaluation's (manifest) order.
SCORE_COLUMNS = ("sample_id", "label", "pred", "cam_cos", "att_cos")


@dataclass(frozen=True)
class Scores:
    """Per test image: true class, predicted class, CAM-COS and ATT-COS (NaN where the image has no AU map)."""

    sample_id: tuple[str, ...]
    label: np.ndarray
    pred: np.ndarray
    cam_cos: np.ndarray
    att_cos: np.ndarray

    def __len__(self) -> int:
        return len(self.sample_id)


def scores_csv(scores: Scores) -> str:
    """`plots/<run>/scores.csv` text (empty cosine where the image has no AU map)."""
    frame = pd.DataFrame({"sample_id": list(scores.sample_id), "label": scores.label, "pred": scores.pred,
                          "cam_cos": scores.cam_cos, "att_cos": scores.att_cos})
    return frame.to_csv(index=False, lineterminator="\n", float_format="%.6f")


def read_scores(source: Any, name: str = "scores.csv") -> Scores:
    """Scores from a path or file object of `scores.csv`; `name` says which file in errors."""
    frame = pd.read_csv(source, dtype={"sample_id": str})
    missing = [c for c in SCORE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks the columns {missing}; rerun its evaluate stage (`dvc repro`)")
    return Scores(tuple(frame["sample_id"]), frame["label"].to_numpy(np.int64), frame["pred"].to_numpy(np.int64),
                  frame["cam_cos"].to_numpy(np.float64), frame["att_cos"].to_numpy(np.float64))


def resample_counts(n: int, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """(resamples, n) int counts: how often each of `n` images is drawn in each bootstrap resample (seeded by seed, n)."""
    if n <= 0:
        return np.zeros((resamples, 0), np.int64)
    idx = np.random.default_rng([seed, n]).integers(0, n, size=(resamples, n))
    flat = (idx + np.arange(resamples)[:, None] * n).ravel()
    return np.bincount(flat, minlength=resamples * n).reshape(resamples, n)


def _weighted_class_means(values: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(R,) macro over AU_CLASSES of the per-class weighted means of `values` (NaN rows skipped), as `au_macro` does."""
    finite = np.isfinite(values)
    v = np.where(finite, values, 0.0)
    out = np.full((weights.shape[0], len(AU_CLASSES)), math.nan)
    for j, k in enumerate(AU_CLASSES):
        sel = finite & (labels == k)
        total = weights[:, sel].sum(axis=1).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, j] = np.where(total > 0, weights[:, sel] @ v[sel] / total, math.nan)
    with _quiet():
        return np.nanmean(out, axis=1)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence numpy's "mean of empty slice" (an all-NaN row is NaN, as intended)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def statistics(scores: Scores, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Each BANDED metric for every row of `weights` (R, n) image weights; all-ones weights give the point metrics."""
    w = np.asarray(weights)
    y, pred = scores.label, scores.pred
    total = w.sum(axis=1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        cl = 100.0 * (w @ (y == pred).astype(np.float64)) / total
        f1 = np.full((w.shape[0], NUM_CLASSES), math.nan)
        for k in range(NUM_CLASSES):
            tp = w @ ((y == k) & (pred == k)).astype(np.float64)
            support = w @ (y == k).astype(np.float64) + w @ (pred == k).astype(np.float64)
            f1[:, k] = np.where(support > 0, 2.0 * tp / support, math.nan)
    with _quiet():
        macro = np.nanmean(f1, axis=1)
    return {"cl": cl, "macro_f1": macro, "cam_cos": _weighted_class_means(scores.cam_cos, y, w),
            "att_cos": _weighted_class_means(scores.att_cos, y, w)}


def _interval(values: np.ndarray, level: float = LEVEL) -> list[float] | None:
    """The central `level` percentile interval of the finite values, None when there are none."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None
    tail = 50.0 * (1.0 - level)
    lo, hi = np.percentile(finite, [tail, 100.0 - tail])
    return [float(lo), float(hi)]


def band(scores: Scores, resamples: int = RESAMPLES, seed: int = SEED) -> dict[str, Any]:
    """`{"level", "resamples", "seed", <metric>: [lo, hi]}`: the bootstrap band of each BANDED metric of one run."""
    stats = statistics(scores, resample_counts(len(scores), resamples, seed))
    out: dict[str, Any] = {"level": LEVEL, "resamples": resamples, "seed": seed}
    for key in BANDED:
        out[key] = _interval(stats[key])
    return out


def _paired(a: Scores, b: Scores, what: str) -> None:
    """Raise unless `a` and `b` score the same test images in the same order (a paired difference needs it)."""
    if a.sample_id != b.sample_id:
        n_diff = sum(x != y for x, y in zip(a.sample_id, b.sample_id, strict=False)) + abs(len(a) - len(b))
        raise ValueError(f"{what}: the two runs scored different test images ({len(a)} vs {len(b)} rows, {n_diff} "
                         f"differ); evaluate both on one manifest (`dvc repro`)")


def difference_band(after: Scores, before: Scores, what: str = "difference",
                    resamples: int = RESAMPLES, seed: int = SEED) -> dict[str, Any]:
    """Paired band of `after - before` for each BANDED metric: `{<metric>: {"change", "band": [lo, hi]}}` plus
    level/resamples/seed. Both runs must score the same test images (same resamples, image by image)."""
    _paired(after, before, what)
    counts = resample_counts(len(after), resamples, seed)
    ones = np.ones((1, len(after)), np.int64)
    point_a, point_b = statistics(after, ones), statistics(before, ones)
    res_a, res_b = statistics(after, counts), statistics(before, counts)
    out: dict[str, Any] = {"level": LEVEL, "resamples": resamples, "seed": seed}
    for key in BANDED:
        change = float(point_a[key][0] - point_b[key][0])
        out[key] = {"change": change if math.isfinite(change) else None, "band": _interval(res_a[key] - res_b[key])}
    return out


def seed_spread(values: Mapping[int, Mapping[str, Any]], keys: Sequence[str] = BANDED) -> dict[str, Any]:
    """Over seeds (seed -> metrics): `{"seeds": [...], <key>: {"values", "mean", "sd", "min", "max"}}` (sd: n - 1)."""
    seeds = sorted(values)
    out: dict[str, Any] = {"seeds": seeds}
    for key in keys:
        vals = np.array([float(values[s].get(key, math.nan)) for s in seeds], np.float64)
        ok = vals[np.isfinite(vals)]
        out[key] = {
            "values": [None if not math.isfinite(v) else float(v) for v in vals],
            "mean": float(ok.mean()) if ok.size else None,
            "sd": float(ok.std(ddof=1)) if ok.size > 1 else None,
            "min": float(ok.min()) if ok.size else None,
            "max": float(ok.max()) if ok.size else None,
        }
    return out


#: Two-sided 95 % Student-t quantiles t(0.975, df) for df = 1..30 (the normal's 1.96 beyond).
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
Z975 = 1.959964


def t975(df: int) -> float:
    """t(0.975, df): the multiplier of a 95 % interval built from a standard deviation with `df` degrees of freedom."""
    if df < 1:
        raise ValueError(f"a t quantile needs at least 1 degree of freedom (2 values), got df={df}")
    return T975[df - 1] if df <= len(T975) else Z975


def t_half(sd: float | None, n: int) -> float | None:
    """Half-width of the 95 % Student-t interval of a mean of `n` values with standard deviation `sd` (None: n < 2).
    One helper for every report that averages over training seeds or folds (`fer review`, the report, the folds)."""
    if sd is None or n < 2:
        return None
    return t975(n - 1) * float(sd) / math.sqrt(n)


#: Verdicts of a change against its band (every banded metric is higher-is-better).
BETTER, WORSE, NOISE, NO_BAND = "better", "worse", "within noise", "no band"


def verdict(change: float | None, interval: Sequence[float] | None) -> str:
    """`better` / `worse` when the band of a change lies wholly above / below 0, `within noise` when it holds 0 (or
    the value did not move at all), `no band` when there is no band (or no change) to judge by."""
    if change == 0:
        return NOISE
    if change is None or interval is None or not math.isfinite(change):
        return NO_BAND
    lo, hi = float(interval[0]), float(interval[1])
    if lo > 0:
        return BETTER
    if hi < 0:
        return WORSE
    return NOISE


def with_seed_mean(per_seed: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """The first seed's metrics with each headline scalar replaced by its mean over seeds, and their spread under
    `seeds` (what metrics/<run>.json and details.json hold when a run is trained over several seeds)."""
    from fer_pipeline.evaluate.headline import HEADLINE

    keys = [key for _, key, _ in HEADLINE if key not in ("n", "n_skipped_unusable_images")]
    first = next(iter(per_seed.values()))  # train.seed: the model every reader loads
    spread = seed_spread(per_seed, [k for k in keys if k in first])
    means = {k: spread[k]["mean"] for k in keys if k in first and spread[k]["mean"] is not None}
    return {**first, **means, "seeds": spread}
