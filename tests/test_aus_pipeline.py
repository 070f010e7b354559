"""End-to-end: `dvc repro` with each `aus.source` (none, synthetic, import) and both `aumaps.mode`s in a copy of the
shared reproduced clone (tests/conftest.py: tiny params, AUs 60% present)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from tests.conftest import TINY, run, set_params

pytestmark = pytest.mark.slow

STORE, AUS = "data/aumaps/synthetic.h5", "data/aus/synthetic.h5"


def has_map(repo: Path) -> np.ndarray:
    with h5py.File(repo / STORE, "r") as f:
        return f["has_map"][()]


def test_repro_with_each_au_source(repro_clone: Path) -> None:
    clone = repro_clone  # reproduced with aus.source none (the default): an empty store, codebook maps
    with h5py.File(clone / AUS, "r") as f:
        assert f.attrs["source"] == "none" and f["status"].shape == (0,)
    codebook = (clone / STORE).read_bytes()

    set_params(clone, {"aus.source": "synthetic"})
    log = run(["dvc", "repro", "aumaps"], clone).stdout
    assert "Running stage 'aus'" in log and (clone / STORE).read_bytes() == codebook  # codebook mode ignores the AUs

    set_params(clone, {"aumaps.mode": "active"})
    run(["dvc", "repro"], clone)
    assert (clone / STORE).read_bytes() != codebook
    m = json.loads((clone / "plots/cam-aus/details.json").read_text())  # the true-AU scores are not headline metrics
    assert 0 <= m["att_absent_share"] <= 1 and -1 <= m["active_att_cos"] <= 1 and m["absent_n"] > 0

    # import: an OpenFace-style CSV made from the truth, with a bad row and a missing one; `fer aus import` stages it
    truth = pd.read_csv(clone / "data/prepared/synthetic/aus_gt.csv")
    of = pd.DataFrame({"sample_id": truth["sample_id"], " success": 1, " confidence": 0.9})
    for c in truth.columns[1:]:
        if int(c[2:]) not in (16, 24, 27):
            of[f" AU{int(c[2:]):02d}_r"] = truth[c] * 5
    of.loc[0, " AU12_r"] = 9.0
    of.drop(index=1).to_csv(clone / "openface.csv", index=False)
    out = run(["python", "-m", "fer_pipeline.cli", "aus", "import", "openface.csv"], clone).stdout
    assert f"{TINY['synthetic.n'] - 2} ok, 1 without a row, 1 invalid" in out
    set_params(clone, {"aus.source": "import"})
    run(["dvc", "repro", "aumaps"], clone)
    with h5py.File(clone / AUS, "r") as f:
        assert f.attrs["format"] == "openface" and f["status"][:2].tolist() == [2, 1]
        assert np.isnan(f["intensity"][2:, [10, 14, 17]]).all()  # AU16, AU24, AU27: unknown
    labels = pd.read_csv(clone / "data/prepared/synthetic/manifest.csv")["label"].to_numpy()
    assert has_map(clone)[:2].tolist() == [labels[0] != 0, labels[1] != 0]  # unknown rows fall back to the codebook
