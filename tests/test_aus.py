"""Per-image AUs: OpenFace / py-feat / plain CSVs (missing AUs, NaN, bad rows), the store, `fer aus import`,
active-mode maps, AU-presence faces and the scores against the true active-AU map."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from fer_pipeline.aumaps.active import REGIONS, anchor_weights, au_weights, render_active
from fer_pipeline.aumaps.render import render_maps
from fer_pipeline.aus.formats import AUS, read_au_csv, write_au_csv
from fer_pipeline.aus.stage import build_au_table
from fer_pipeline.aus.store import AuStatus, align_aus, au_rows, open_au_store, read_au_store, write_au_store
from fer_pipeline.cli import main
from fer_pipeline.core import paths
from fer_pipeline.core.codebook import aus_for
from fer_pipeline.core.labels import LABELS
from fer_pipeline.data.manifest import write_manifest
from fer_pipeline.data.synthetic import SyntheticConfig, make_sample, mean_face
from fer_pipeline.evaluate.active_truth import absent_regions, active_scores

HAPPY, SURPRISE, FEAR = LABELS.index("happiness"), LABELS.index("surprise"), LABELS.index("fear")
IDS = ["a", "b", "c", "d", "e", "f"]


def col(au: int) -> int:
    """Column of `au` in the store's intensity array."""
    return AUS.index(au)


def openface_csv(path: Path) -> None:
    """OpenFace 2.x style: padded names, AU.._r (0-5) and AU.._c, success/confidence, two faces for one sample."""
    of_aus = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 45)  # OpenFace has no AU16, AU24, AU27
    rows = [
        # sample, confidence, success, AU01_r, AU12_r, AU06_r (others 1.0)
        ("a", 0.98, 1, "2.5", "5", "0"),
        ("b", 0.95, 1, "", "1", "1"),  # AU01 empty: unknown (NaN), the row is fine
        ("c", 0.90, 1, "7.2", "1", "1"),  # out of [0, 5]: invalid
        ("d", 0.90, 0, "1", "1", "1"),  # detector failure
        ("e", 0.40, 1, "abc", "1", "1"),  # a second, less confident face of e: not a number, but not the one used
        ("e", 0.97, 1, "5", "0", "0.5"),
        # f: no row at all
    ]
    records = []
    for sid, conf, ok, au1, au12, au6 in rows:
        rec = {"sample_id": sid, " face": 0, " confidence": conf, " success": ok}
        for au in of_aus:
            rec[f" AU{au:02d}_r"] = {1: au1, 12: au12, 6: au6}.get(au, "1.0")
        for au in (*of_aus, 28):
            rec[f" AU{au:02d}_c"] = 1
        records.append(rec)
    pd.DataFrame(records).to_csv(path, index=False)


def test_openface_csv(tmp_path: Path) -> None:
    openface_csv(tmp_path / "of.csv")
    parsed = read_au_csv(tmp_path / "of.csv")
    assert parsed.format == "openface"
    table = align_aus(IDS, parsed, "of.csv", {"source": "import"})
    st = dict(zip(IDS, table.status.tolist(), strict=True))
    assert st == {"a": 0, "b": 0, "c": AuStatus.INVALID, "d": AuStatus.INVALID, "e": 0, "f": AuStatus.MISSING}
    why = dict(zip(IDS, table.reason, strict=True))
    assert "AU01_r" in why["c"] and "7.2" in why["c"] and "success" in why["d"] and "no AU row" in why["f"]
    a, b, e = table.intensity[0], table.intensity[1], table.intensity[4]
    assert a[col(1)] == pytest.approx(0.5) and a[col(12)] == 1.0 and a[col(6)] == 0.0 and a[col(4)] == pytest.approx(0.2)
    for au in (16, 24, 27):  # not measured by OpenFace
        assert np.isnan(a[col(au)])
    assert np.isnan(b[col(1)]) and b[col(12)] == pytest.approx(0.2)
    assert e[col(1)] == 1.0 and e[col(6)] == pytest.approx(0.1)  # the confident face of e
    assert np.isnan(table.intensity[[2, 3, 5]]).all()  # bad rows keep no value


def test_pyfeat_and_plain_csv(tmp_path: Path) -> None:
    pyfeat_aus = (1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15, 17, 20, 23, 24, 25, 26, 28, 43)  # no AU16, AU27
    frame = pd.DataFrame({"sample_id": IDS[:4]} | {f"AU{a:02d}": [0.9, 0.1, 0.5, None] for a in pyfeat_aus})
    frame["FaceScore"] = 0.99
    frame.loc[1, "AU12"] = -0.2  # negative probability: invalid
    frame.to_csv(tmp_path / "feat.csv", index=False)
    parsed = read_au_csv(tmp_path / "feat.csv")
    assert parsed.format == "py-feat"
    table = align_aus(IDS, parsed, "feat.csv", {})
    assert table.status.tolist() == [0, 2, 0, 2, 1, 1]
    assert "no AU value" in table.reason[3] and "AU12" in table.reason[1]
    assert table.intensity[0, col(12)] == pytest.approx(0.9) and np.isnan(table.intensity[0, [col(16), col(27)]]).all()

    values = np.full((2, len(AUS)), np.nan, np.float32)
    values[0, col(6)], values[1, col(25)] = 0.25, 1.0
    write_au_csv(tmp_path / "plain.csv", ["x", "y"], values)
    plain = read_au_csv(tmp_path / "plain.csv")
    assert plain.format == "plain" and plain.reason == ["", ""]
    np.testing.assert_array_equal(plain.intensity, values)
    (tmp_path / "none.csv").write_text("sample_id,score\nx,1\n")
    with pytest.raises(ValueError, match="no AU column"):
        read_au_csv(tmp_path / "none.csv")


def test_store_roundtrip_and_block_checks(tmp_path: Path) -> None:
    openface_csv(tmp_path / "of.csv")
    table = align_aus(IDS, read_au_csv(tmp_path / "of.csv"), "of.csv", {"source": "import"})
    for name in ("one.h5", "two.h5"):
        write_au_store(tmp_path / name, table)
    assert (tmp_path / "one.h5").read_bytes() == (tmp_path / "two.h5").read_bytes()
    back = read_au_store(tmp_path / "one.h5")
    assert back.sample_id == IDS and back.reason == table.reason and back.attrs["format"] == "openface"
    np.testing.assert_array_equal(back.intensity, table.intensity)
    with open_au_store(tmp_path / "one.h5", n_rows=6) as f:
        assert np.isnan(au_rows(f, slice(2, 4), ["c", "d"])).all()
        with pytest.raises(ValueError, match="row 3.*stale"):
            au_rows(f, slice(2, 4), ["c", "x"], first_row=2)
    with pytest.raises(ValueError, match="7"):
        open_au_store(tmp_path / "one.h5", n_rows=7)
    none = build_au_table(IDS, {"source": "none"}, "synthetic")
    write_au_store(tmp_path / "none.h5", none)
    with pytest.raises(ValueError, match="aus.source is none"):
        open_au_store(tmp_path / "none.h5", n_rows=6)


def test_fer_aus_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(yaml.safe_dump({"data": {"dataset": "folder"}}))
    manifest = pd.DataFrame({"sample_id": IDS, "path": [f"{s}.png" for s in IDS], "label": [1] * 6, "split": ["test"] * 6})
    write_manifest(paths.manifest_path("folder"), manifest)
    openface_csv(tmp_path / "of.csv")
    assert main(["aus", "import", str(tmp_path / "of.csv")]) == 0
    out = capsys.readouterr().out
    assert "3 ok, 1 without a row, 2 invalid" in out and "aus.source: import" in out
    assert paths.au_import("folder").read_bytes() == (tmp_path / "of.csv").read_bytes()
    table = build_au_table(IDS, {"source": "import", "file": ""}, "folder")  # what the stage stores
    assert table.status_counts() == {"ok": 3, "missing": 1, "invalid": 2} and table.attrs["format"] == "openface"
    pd.DataFrame({"sample_id": ["zz"], "AU1": [0.5]}).to_csv(tmp_path / "other.csv", index=False)
    assert main(["aus", "import", str(tmp_path / "other.csv"), "--out", "x.csv"]) == 1
    assert not Path("x.csv").exists()


def test_active_maps() -> None:
    pts = np.repeat(mean_face(64)[None], 3, axis=0)
    hw = np.full((3, 2), 64)
    labels = np.array([HAPPY, HAPPY, HAPPY])
    inten = np.full((3, len(AUS)), np.nan, np.float32)  # row 0: unknown -> the codebook map
    inten[1] = 0.0
    inten[1, col(12)] = 0.8  # row 1: only AU12 shown (closed-mouth smile)
    inten[2] = 0.0  # row 2: nothing shown -> no map
    w = au_weights(inten, labels, codebook="reference", restrict_to_codebook=True)
    maps, has = render_active(pts, hw, w, size=28)
    book, _ = render_maps(pts[:1], hw[:1], labels[:1], size=28)
    assert has.tolist() == [True, True, False] and not maps[2].any()
    np.testing.assert_allclose(maps[0], book[0], atol=1e-5)
    only12, _ = render_maps(pts[:1], hw[:1], labels[:1], size=28, codebook="reference")
    assert (maps[1] <= maps[0] + 1e-6).all() and maps[1].sum() < 0.7 * only12.sum()  # AU6/AU25 regions gone

    inten[1, col(25)] = 0.4  # a weaker AU25 region: weighted below AU12's
    w = au_weights(inten, labels, restrict_to_codebook=True)
    aw = anchor_weights(w)
    assert aw[1, REGIONS.index("lips")] == pytest.approx(0.4) and aw[1, REGIONS.index("mouth_corners")] == pytest.approx(0.8)
    inten[1, col(9)] = 1.0  # not a happiness AU: counts only without the restriction
    assert au_weights(inten, labels, restrict_to_codebook=True)[1, col(9)] == 0
    assert au_weights(inten, labels, restrict_to_codebook=False)[1, col(9)] == 1
    assert not au_weights(inten, np.zeros(3, int), restrict_to_codebook=False).any()  # neutral: never a map


def test_au_presence_faces() -> None:
    full = make_sample(0, 5, FEAR, "train", SyntheticConfig(size=64))
    assert set(full.au_intensity) == set(aus_for(FEAR)) and len(set(full.au_intensity.values())) == 1
    cfg = SyntheticConfig(size=64, au_presence=0.5)
    shown = [make_sample(0, i, FEAR, "train", cfg).au_intensity for i in range(40)]
    assert all(1 <= len(s) <= 8 and set(s) <= set(aus_for(FEAR)) for s in shown)
    frac = np.mean([len(s) for s in shown]) / len(aus_for(FEAR))
    assert 0.35 < frac < 0.65
    assert any(len(set(s.values())) > 1 for s in shown)  # each AU at its own intensity
    assert all(0 < v <= 1 for s in shown for v in s.values())
    assert not make_sample(0, 1, 0, "train", cfg).au_intensity  # neutral shows nothing
    with pytest.raises(ValueError, match="au_presence"):
        SyntheticConfig(au_presence=1.5)


def test_scores_against_the_true_active_map() -> None:
    n, size = 2, 28
    pts = np.repeat(mean_face(64)[None], n, axis=0)
    hw = np.full((n, 2), 64)
    labels = np.array([SURPRISE, SURPRISE])
    inten = np.zeros((n, len(AUS)), np.float32)
    inten[:, col(1)] = inten[:, col(2)] = 0.7  # brows shown; AU5 (eyes) and the mouth AUs absent
    truth, _ = render_active(pts, hw, au_weights(inten, labels), size=size)
    absent = absent_regions(pts, hw, labels, inten, codebook="reference", size=size, radius=0.25, smoothing=0.5)
    assert absent.any(axis=(1, 2)).all() and not (absent & (truth >= 0.5)).any()
    on_absent = absent.astype(np.float32)
    m: dict = {}
    attrs = {"codebook": "reference", "radius": 0.25, "smoothing": 0.5}
    active_scores(m, cam=truth, att=on_absent, labels=labels, landmarks=pts, image_size=hw, intensity=inten, attrs=attrs)
    assert m["active_cam_cos"] == pytest.approx(1.0, abs=1e-5) and m["active_cam_pointing"] == 1.0
    assert m["cam_absent_share"] < 0.05 and m["att_absent_share"] == pytest.approx(1.0)  # the truth's tails only
    assert m["active_att_energy"] == 0.0 and m["active_n"] == 2 and m["absent_n"] == 2
    assert math.isnan(m["per_class"]["happiness"]["active_cam_cos"])
