"""Cross-dataset evaluation (`crossdata`): entry params, rows evaluated, the report's table and missing-class note, and
(slow) two synthetic sets of other seeds/framing plus an astronaut folder run through `dvc repro` in a clone."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from fer_pipeline.align.store import read_fallback
from fer_pipeline.align.warp import Fallback
from fer_pipeline.core import paths
from fer_pipeline.core.crossdata import cross_names, cross_params, evaluated_rows, stage_params
from fer_pipeline.core.labels import LABELS
from fer_pipeline.report.tables import METRICS, cross_table, missing_classes, render_cross, with_cross_columns
from tests.conftest import ROOT, TINY, run, set_params

BASE = {
    "data": {"dataset": "synthetic", "root": "data/raw/synthetic", "seed": 0},
    "synthetic": {"n": 100, "seed": 0, "face_scale": [0.78, 0.88]},
    "landmarks": {"backend": "synthetic", "detector": "hog"},
    "aumaps": {"mode": "codebook"},
    "crossdata": {
        "wide": {"dataset": "synthetic", "root": "data/raw/synthetic", "synthetic": {"seed": 3, "face_scale": [0.6, 0.7]}},
        "photos": {"dataset": "folder", "root": "data/raw/photos", "split": "all", "landmarks": {"backend": "dlib68"}},
    },
}


def test_cross_params_apply_the_entry_and_inherit_the_rest() -> None:
    assert cross_names(BASE) == ["wide", "photos"] and cross_names({"crossdata": {}}) == cross_names({}) == []
    wide = cross_params(BASE, "wide")
    assert wide["synthetic"] == {"n": 100, "seed": 3, "face_scale": [0.6, 0.7]} and wide["landmarks"] == BASE["landmarks"]
    photos = cross_params(BASE, "photos")
    assert photos["data"] == {"dataset": "folder", "root": "data/raw/photos", "seed": 0}
    assert photos["landmarks"] == {"backend": "dlib68", "detector": "hog"}
    assert BASE["data"]["dataset"] == "synthetic" and BASE["synthetic"]["seed"] == 0  # the main params are not touched
    params, key, name = stage_params(BASE, ["photos"])
    assert (key, name, params["data"]["dataset"]) == ("x/photos", "photos", "folder")
    assert paths.landmark_store(key) == Path("data/landmarks/x/photos.h5")
    assert paths.metrics_path(paths.cross_run("cam-aus", "photos")) == Path("metrics/x/photos/cam-aus.json")
    assert stage_params(BASE, [])[1:] == ("synthetic", None)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"dataset": "folder"}, "crossdata.bad.root is missing"),
        ({"dataset": "folder", "root": "r", "split": "val"}, "split='val' unknown"),
        ({"dataset": "folder", "root": "r", "seed": 1}, "unknown keys ['seed']"),
        ({"dataset": "folder", "root": "r", "landmarks": "dlib68"}, "crossdata.bad.landmarks must be a mapping"),
    ],
)
def test_bad_entries_name_the_key(entry: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        cross_params({**BASE, "crossdata": {"bad": entry}}, "bad")
    with pytest.raises(ValueError, match="crossdata.nope not found; extra test datasets: wide, photos"):
        cross_params(BASE, "nope")
    with pytest.raises(ValueError, match="codebook AU maps only"):
        cross_params({**BASE, "aumaps": {"mode": "active"}}, "wide")


def test_test_rows_uses_every_row_when_asked_or_when_there_is_no_test_split() -> None:
    m = pd.DataFrame({"sample_id": list("abcd"), "split": ["train", "val", "test", "test"]})
    assert evaluated_rows(m)["split"].tolist() == m["split"].tolist()  # its own test split, as is
    assert (evaluated_rows(m, "all")["split"] == "test").all() and len(evaluated_rows(m, "all")) == 4
    assert (evaluated_rows(m[m["split"] != "test"])["split"] == "test").all()  # no test split: all rows


def details(cl: float, counts: dict[str, int]) -> dict:
    """A run's details with CL and per-class test counts (classes not listed have none)."""
    return {"cl": cl, "macro_f1": cl / 100, "cam_cos": 0.5, "att_cos": 0.6, "n": sum(counts.values()),
            "per_class": {c: {"n": counts.get(c, 0)} for c in LABELS}}


def test_cross_table_has_a_column_per_run_and_test_dataset_and_notes_missing_classes() -> None:
    full = dict.fromkeys(LABELS, 5)
    own = {"cam-noaus": details(70.0, full), "cam-aus": details(80.0, full)}
    photos = {"cam-noaus": details(0.0, {"happiness": 1}), "cam-aus": details(100.0, {"happiness": 1})}
    table = cross_table({"synthetic (own test)": own, "photos": photos}, ["cam"])
    assert list(table.columns) == ["method", "metric", "synthetic (own test) w/o", "synthetic (own test) w/",
                                   "photos w/o", "photos w/"]
    cl = table[table["metric"] == "CL (%)"].iloc[0]
    assert (cl["synthetic (own test) w/o"], cl["photos w/"]) == (70.0, 100.0)
    assert table[table["metric"] == "n"].iloc[0]["photos w/o"] == "1"
    assert missing_classes(photos["cam-aus"]) == [c for c in LABELS if c != "happiness"]
    assert missing_classes(own["cam-aus"]) == []
    text = render_cross(table, {"photos": missing_classes(photos["cam-aus"])})
    assert "## Cross-dataset evaluation" in text and "| cam | CL (%) | 70.00 | 80.00 | 0.000 | 100.00 |" in text
    assert "`photos` has no test image of neutral, surprise, fear, anger, disgust, sadness" in text
    assert render_cross(pd.DataFrame(), {}) == ""
    main = pd.DataFrame({"method": ["cam", "cam"], "metric": ["CL (%)", dict(METRICS)["cam_cos"]], "ours_noaus": [70.0, 0.5]})
    merged = with_cross_columns(main, table, "synthetic (own test)")
    assert list(merged.columns) == ["method", "metric", "ours_noaus", "photos w/o", "photos w/"] and len(merged) == 2
    assert with_cross_columns(main, pd.DataFrame(), "x") is main


def test_the_demo_has_no_extra_dataset_stages() -> None:
    assert yaml.safe_load((ROOT / "params.yaml").read_text())["crossdata"] == {}
    stages = run(["dvc", "stage", "list", "--name-only"], ROOT).stdout.split()
    assert "report" in stages and not [s for s in stages if "-x@" in s]


@pytest.mark.slow
def test_two_synthetic_sets_and_the_astronaut_through_dvc_repro(repro_clone: Path) -> None:
    from tests.dataset_trees import astronaut, save

    clone = repro_clone  # the shared reproduced clone (tests/conftest.py): prepare, landmarks and aus stay cached
    save(clone / "data/raw/astro/test/happy/astronaut.png", astronaut())
    set_params(clone, {
        "align.mode": "similarity", "align.size": 64,  # every dataset's faces framed on the template (align-x@<name>)
        "crossdata": {
            "wide": {"dataset": "synthetic", "root": "data/raw/synthetic",
                     "synthetic": {"n": 28, "seed": 5, "face_scale": [0.55, 0.65], "shift": 1.0}},
            "tilted": {"dataset": "synthetic", "root": "data/raw/synthetic", "split": "all",
                       "synthetic": {"n": 28, "seed": 6, "roll": 15.0}},
            "astro": {"dataset": "folder", "root": "data/raw/astro", "split": "all",
                      "landmarks": {"backend": "dlib68", "detector": "hog"}},
        },
    })
    run(["dvc", "repro"], clone)
    wide = pd.read_csv(clone / "data/prepared/x/wide/manifest.csv")
    tilted = pd.read_csv(clone / "data/prepared/x/tilted/manifest.csv")
    own_n = len(pd.read_csv(clone / "data/prepared/synthetic/manifest.csv"))
    assert len(wide) == len(tilted) == 28 and own_n == TINY["synthetic.n"]
    own = (clone / "data/prepared/synthetic/images/syn_000000.png").read_bytes()
    assert (clone / "data/prepared/x/wide/images/syn_000000.png").read_bytes() != own  # another seed and framing
    n = {}
    for name in ("wide", "tilted", "astro"):
        for aus in ("noaus", "aus"):
            m = json.loads((clone / "metrics/x" / name / f"cam-{aus}.json").read_text())
            assert 0.0 <= m["cl"] <= 100.0 and -1.0 <= m["cam"]["cos"] <= 1.0
            assert m["cam"]["cos"] != m["att"]["cos"]  # computed on this dataset, not copied
            n[name] = m["n"]
    assert n == {"wide": int((wide["split"] == "test").sum()), "tilted": 28, "astro": 1}  # split: all -> every row
    for name in ("wide", "tilted", "astro"):  # framed by their landmarks, like the training faces
        fallback = read_fallback(clone / "data/aligned/x" / f"{name}.h5")[1]
        assert len(fallback) == {"wide": 28, "tilted": 28, "astro": 1}[name] and (fallback == Fallback.LANDMARKS).all()
    report = (clone / "reports/tables.md").read_text()
    assert "| method | metric | synthetic (own test) w/o | synthetic (own test) w/ | wide w/o | wide w/ | tilted w/o" in report
    assert "`astro` has no test image of neutral, surprise, fear, anger, disgust, sadness" in report
    assert "`wide` has no test image" not in report
    assert "Faces framed by the `align` stage: similarity transform" in report  # the report says how faces were framed
    assert "wide w/o" in (clone / "reports/tables.csv").read_text().splitlines()[0]
    assert json.loads(run(["dvc", "status", "--json"], clone).stdout or "{}") == {}

    # A change to one extra dataset reruns its chain, its evaluations and the report only.
    set_params(clone, {"crossdata.tilted.synthetic.seed": 7})
    stale = set(json.loads(run(["dvc", "status", "--json"], clone).stdout))
    assert stale == {"prepare-x@tilted", "landmarks-x@tilted", "align-x@tilted", "evaluate-x@cam-noaus-tilted",
                     "evaluate-x@cam-aus-tilted", "report"}
