"""Three-way guidance table from `dvc exp show --json`: shared λ = 0 run, codebook and active guidance, winners."""

from __future__ import annotations

import math

from fer_pipeline.report.guidance import KEYS, guidance_table, render_guidance, seed_means, winners


def state(rev: str, mode: str | None, aus: dict, noaus: dict, name: str | None = None, seed: int = 0) -> dict:
    """One ExpState as `dvc exp show --json` dumps it."""
    aumaps = {"codebook": "reference"} | ({"mode": mode} if mode else {})
    train = {"lambda": 4.0, "seed": seed}
    params = {"params.yaml": {"data": {"train": train, "aumaps": aumaps, "synthetic": {"au_presence": 0.6}}}}
    metrics = {"metrics/cam-aus.json": {"data": aus}, "metrics/cam-noaus.json": {"data": noaus}}
    return {"rev": rev, "name": name, "data": {"rev": rev, "params": params, "metrics": metrics}}


def scores(cl: float, cos: float, absent: float) -> dict[str, float]:
    return {k: 0.5 for k in KEYS} | {"cl": cl, "active_att_cos": cos, "att_absent_share": absent}


def test_three_way_table() -> None:
    noaus, book, active = scores(80, 0.3, 0.20), scores(85, 0.6, 0.15), scores(84, 0.7, 0.05)
    old = {"cl": 70.0}  # a state from before the true-AU scores: skipped
    show = [
        {"rev": "workspace", "name": None, "data": state("w", None, old, old)["data"], "experiments": None},
        {
            **state("a" * 40, "codebook", book, noaus, name="main"),
            "experiments": [
                {"revs": [state("b" * 40, "active", active, noaus)], "executor": {"state": "success"}, "name": "active"},
                {"revs": [state("c" * 40, "active", scores(0, 0, 1), noaus)], "executor": {"state": "failed"}, "name": "x"},
                {"revs": [state("d" * 40, "codebook", scores(87, 0.6, 0.15), scores(82, 0.3, 0.2), seed=1)],
                 "executor": {"state": "success"}, "name": "book1"},
                {"revs": [state("e" * 40, "active", scores(80, 0.7, 0.05), noaus, seed=1)],
                 "executor": {"state": "success"}, "name": "active1"},
                {"revs": [state("f" * 40, "active", scores(80, 0.7, 0.05), noaus, seed=2)],  # no seed-2 baseline
                 "executor": {"state": "success"}, "name": "active2"},
            ],
        },
    ]
    table = guidance_table(show)
    assert list(table["run"]) == ["λ = 0", "codebook guidance", "active guidance"] * 2 + ["active guidance"]
    assert list(table["experiment"][:3]) == ["main", "main", "active"] and list(table["lambda"][:3]) == [0.0, 4.0, 4.0]
    assert list(table["cl"][:6]) == [80, 85, 84, 82, 87, 80] and table["au_presence"].tolist() == [0.6] * 7
    means = seed_means(table)
    assert list(means["run"]) == ["λ = 0", "codebook guidance", "active guidance"] and list(means["seeds"]) == [2, 2, 2]
    assert list(means["cl"]) == [81, 86, 82]  # seed 2 (no baseline) left out
    win = winners(means)
    assert win["cl"] == "codebook guidance" and win["active_att_cos"] == "active guidance"
    assert win["att_absent_share"] == "active guidance"  # lower is better
    assert win["active_cam_cos"].startswith("tie")
    text = render_guidance(table)
    assert "| active guidance | 0 | active | 0.6 | 4 | 84.00 |" in text and "| active guidance | 2 | 82.00 |" in text
    assert "ATT on absent AUs (lower better): active guidance" in text
    assert guidance_table([]).empty and math.isfinite(table["cl"].sum())
