"""AU maps: anchors sit on the right face parts, rendering is bounded and aligned, builds and stores are deterministic."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from fer_pipeline.aumaps import (
    ANCHOR_OF,
    au_regions,
    build_aumaps,
    from_uint8,
    inter_ocular,
    open_maps,
    read_aumap_store,
    render_maps,
    summarize,
    to_uint8,
    write_aumap_store,
)
from fer_pipeline.aumaps.build import aumap_attrs
from fer_pipeline.core.codebook import ALL_AUS
from fer_pipeline.core.labels import AU_CLASSES, LABELS, NEUTRAL
from fer_pipeline.landmarks.store import LandmarkTable, Status

HAPPY, SURPRISE, FEAR, ANGER, SADNESS = (LABELS.index(c) for c in ("happiness", "surprise", "fear", "anger", "sadness"))


def make_face(cx: float = 50.0, cy: float = 50.0, scale: float = 1.0, roll_deg: float = 0.0) -> np.ndarray:
    """A crude frontal iBUG-68 face (68,2) x/y, about 80×90 px at scale 1, centred on (cx, cy)."""
    p = np.zeros((68, 2))
    t = np.linspace(np.pi, 0, 17)  # jaw 0-16: image-left ear, chin (8), image-right ear
    p[0:17] = np.c_[40 * np.cos(t), -12 + 52 * np.sin(t)]
    p[17:22] = np.c_[np.linspace(-32, -8, 5), -24 - 3 * np.sin(np.linspace(0, np.pi, 5))]  # brow, 21 inner
    p[22:27] = p[17:22][::-1] * [-1, 1]  # mirrored brow, 22 inner, 26 outer
    p[27:31] = np.c_[np.zeros(4), np.linspace(-14, 4, 4)]  # nose bridge, 30 tip
    p[31:36] = np.c_[np.linspace(-8, 8, 5), [8, 9, 10, 9, 8]]  # nostrils, 31 and 35 the wings

    def ring(x0: float, y0: float, a: float, b: float, k: int, phase: float) -> np.ndarray:
        phi = phase - np.arange(k) * 2 * np.pi / k
        return np.c_[x0 + a * np.cos(phi), y0 - b * np.sin(phi)]

    p[36:42] = ring(-18, -12, 8, 3, 6, np.pi)  # 36 outer corner, 37-38 top, 39 inner, 40-41 bottom
    p[42:48] = ring(18, -12, 8, 3, 6, np.pi)  # 42 inner corner, 45 outer
    p[48:60] = ring(0, 22, 15, 6, 12, np.pi)  # 48 left corner, 51 top, 54 right corner, 57 bottom
    p[60:68] = ring(0, 22, 11, 2, 8, np.pi)
    a = np.deg2rad(roll_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return (p @ rot.T) * scale + [cx, cy]


def sample(maps: np.ndarray, point: np.ndarray, hw: tuple[int, int]) -> float:
    """Map value at image point (x, y) of an H×W image (the map covers the whole image)."""
    h, w = hw
    s = maps.shape[-1]
    i = min(int(point[1] * s / h), s - 1)
    j = min(int(point[0] * s / w), s - 1)
    return float(maps[i, j])


def one(label: int, face: np.ndarray | None = None, hw: tuple[int, int] = (100, 100), **kw: object) -> tuple[np.ndarray, bool]:
    """Render a single face; returns (map, has_map)."""
    face = make_face() if face is None else face
    maps, has = render_maps(face[None].astype(np.float32), np.array([hw]), np.array([label]), **kw)
    return maps[0], bool(has[0])


def faces(n: int, seed: int = 0, hw: int = 112) -> np.ndarray:
    """n jittered faces (N,68,2) float32 inside an hw×hw image."""
    rng = np.random.default_rng(seed)
    out = [
        make_face(hw / 2 + rng.normal(0, 3), hw / 2 + rng.normal(0, 3), hw / 110 * rng.uniform(0.85, 1.1), rng.normal(0, 6))
        + rng.normal(0, 0.7, (68, 2))
        for _ in range(n)
    ]
    return np.asarray(out, dtype=np.float32)


def table_of(n: int, seed: int = 0) -> tuple[list[str], np.ndarray, LandmarkTable]:
    """sample ids, labels and a landmark table for n synthetic faces (some failed)."""
    rng = np.random.default_rng(seed)
    ids = [f"s{i:05d}" for i in range(n)]
    lm = faces(n, seed)
    status = np.full(n, int(Status.OK), np.uint8)
    status[::17] = Status.NO_FACE
    lm[status == Status.NO_FACE] = np.nan
    status[5::23] = Status.INVALID_IMPORT  # finite landmarks, but not usable
    labels = rng.integers(0, len(LABELS), n)
    return ids, labels, LandmarkTable(ids, lm, np.full((n, 2), 112), status)


def test_every_au_has_an_anchor_and_anchors_sit_on_the_face() -> None:
    assert set(ALL_AUS) <= set(ANCHOR_OF)
    face = make_face()
    reg = au_regions(face[None])
    assert set(reg) == set(ALL_AUS)
    assert inter_ocular(face[None])[0] == pytest.approx(36.0, abs=0.01)
    eye_y, nose_y, mouth_y, chin_y = face[36:48, 1].mean(), face[33, 1], face[48:68, 1].mean(), face[8, 1]
    assert (reg[1][0, :, 1] < eye_y).all() and (reg[2][0, :, 1] < eye_y).all() and reg[4][0, 0, 1] < eye_y
    assert reg[6][0, :, 1] == pytest.approx([eye_y + 3 + 0.45 * 36] * 2, abs=0.5)  # cheeks below the lower lid
    assert (reg[6][0, :, 1] < nose_y).all()
    assert reg[9][0, :, 1] == pytest.approx([face[29, 1]] * 2) and reg[9][0, 0, 0] == pytest.approx(face[31, 0])
    assert (mouth_y < reg[17][0, :, 1]).all() and (reg[17][0, :, 1] < chin_y).all()
    assert reg[12][0].tolist() == face[[48, 54]].astype(np.float32).tolist()
    for au, pts in reg.items():  # each two-centre region is left/right symmetric on a symmetric face
        assert pts[0, :, 0].mean() == pytest.approx(50.0, abs=1e-3), au


def test_nose_wings_follow_head_roll() -> None:
    face = make_face(roll_deg=20)
    wing = au_regions(face[None], (9,))[9][0, 0]
    level = face[29] + ((face[31] - face[29]) @ (face[42:48].mean(0) - face[36:42].mean(0))) / 36**2 * (
        face[42:48].mean(0) - face[36:42].mean(0)
    )
    assert wing == pytest.approx(level, abs=1e-3)


@pytest.mark.parametrize("label", AU_CLASSES)
def test_maps_are_bounded_with_max_one(label: int) -> None:
    m, has = one(label)
    assert has and m.dtype == np.float32 and m.shape == (56, 56)
    assert m.min() >= 0.0 and m.max() == 1.0
    assert 0.02 < (m > 0.5).mean() < 0.5  # regions, not the whole image


def test_neutral_and_failed_landmarks_give_empty_maps() -> None:
    lm = np.stack([make_face()] * 4).astype(np.float32)
    lm[2, 30] = np.nan  # one bad point is enough
    lm[3] = np.nan
    maps, has = render_maps(lm, np.full((4, 2), 100), np.array([NEUTRAL, HAPPY, HAPPY, SADNESS]))
    assert has.tolist() == [False, True, False, False]
    assert not maps[[0, 2, 3]].any() and maps[1].max() == 1.0


def test_happiness_lights_mouth_corners_and_cheeks_not_brows() -> None:
    face = make_face()
    m, _ = one(HAPPY, face)
    reg = au_regions(face[None])
    for p in [face[48], face[54], *reg[6][0]]:
        assert sample(m, p, (100, 100)) > 0.95
    for p in [face[19], face[24], face[17], face[26]]:
        assert sample(m, p, (100, 100)) < 0.05


def test_surprise_lights_brows_eyes_and_mouth_centre_not_chin() -> None:
    face = make_face()
    m, _ = one(SURPRISE, face)
    centre = face[48:68].mean(0)
    for p in [face[17], face[21], face[22], face[26], face[36:42].mean(0), centre]:
        assert sample(m, p, (100, 100)) > 0.95
    assert sample(m, face[8], (100, 100)) < 0.2  # chin: only the far tail of the mouth-centre region
    assert sample(m, face[48], (100, 100)) < sample(m, centre, (100, 100))  # corners: only the mouth-centre tail


def test_sadness_has_inner_not_outer_brows() -> None:
    face = make_face()
    m, _ = one(SADNESS, face)
    assert sample(m, face[21], (100, 100)) > 0.95 and sample(m, face[48], (100, 100)) > 0.95
    assert sample(m, face[17] - [4, 0], (100, 100)) < 0.05


@pytest.mark.parametrize(("hw", "centre"), [((200, 100), (50, 150)), ((100, 200), (150, 50))])
def test_map_covers_whole_non_square_image(hw: tuple[int, int], centre: tuple[int, int]) -> None:
    face = make_face(*centre)  # H ≠ W: the grid is stretched per axis, and the face sits off-centre
    m, _ = one(HAPPY, face, hw)
    reg = au_regions(face[None])
    for p in [face[48], face[54], *reg[6][0]]:
        assert sample(m, p, hw) > 0.95
    for p in [face[19], face[24], np.array([hw[1] - centre[0], hw[0] - centre[1]])]:  # brows, the empty half
        assert sample(m, p, hw) < 0.05


def test_region_centroid_lands_on_its_anchor() -> None:
    face = make_face()
    s = 200  # fine grid, small regions: the mouth-centre disc (AU26/27) of surprise stands alone below y = 55
    m, _ = one(SURPRISE, face, size=s, radius=0.15, smoothing=0.3)
    i, j = np.indices(m.shape)
    lower = np.where((i + 0.5) * 100 / s > 55, m, 0.0)
    y = ((i + 0.5) * 100 / s * lower).sum() / lower.sum()  # map pixel (i, j) <-> image ((j+.5)W/S, (i+.5)H/S)
    x = ((j + 0.5) * 100 / s * lower).sum() / lower.sum()
    assert [x, y] == pytest.approx(face[48:68].mean(0).tolist(), abs=0.08)


def test_maps_are_scale_invariant() -> None:
    small, _ = one(FEAR, make_face(), (100, 100))
    large, _ = one(FEAR, make_face(100, 100, 2.0), (200, 200))
    np.testing.assert_allclose(small, large, atol=1e-4)


def test_face_outside_the_image_has_no_map() -> None:
    m, has = one(HAPPY, make_face(cx=900, cy=900))
    assert not has and not m.any()


def test_a_face_whose_regions_miss_the_frame_has_no_map() -> None:
    """Regions whose Gaussian tail alone touches the frame draw nothing (no border band stretched to [0, 1]); a face
    with no region that reaches the frame has no map, and the summary counts it as off the image."""
    hw = (112, 112)
    face = make_face(56, 56)
    low = face[:, 1].max() - face[:, 1].min()
    above = face - [0, face[:, 1].max() + 18]  # the whole face 18 px above the frame: only tails reach it
    m, has = one(HAPPY, above, hw)
    assert not has and not m.any()
    from fer_pipeline.aumaps.render import profile  # the tail the old rule stretched into a map
    tails = profile(np.asarray(above, np.float32)[None, 48:49], np.float32([hw]), np.float32([8.6]), 56, 0.5)
    assert 0 < tails.max() < 0.5
    # Half out: the regions on the frame still make a map.
    m2, has2 = one(SURPRISE, face - [0, low * 0.55], hw)
    assert has2 and m2.max() == 1.0
    s = summarize(np.array([HAPPY, SURPRISE, NEUTRAL]), np.array([has, has2, False]), usable=np.ones(3, bool))
    assert s["au_rows_off_image"] == 1 and s["au_rows_unusable_landmarks"] == 0


def test_paper_and_reference_codebooks_differ_only_for_disgust() -> None:
    lm = faces(len(LABELS))
    labels = np.arange(len(LABELS))
    ref, _ = render_maps(lm, np.full((len(LABELS), 2), 112), labels, codebook="reference")
    pap, _ = render_maps(lm, np.full((len(LABELS), 2), 112), labels, codebook="paper")
    differs = [LABELS[i] for i in labels if not np.array_equal(ref[i], pap[i])]
    assert differs == ["disgust"]


def test_uint8_round_trip() -> None:
    m, _ = one(ANGER)
    u8 = to_uint8(m)
    assert u8.dtype == np.uint8 and u8.max() == 255
    assert np.abs(from_uint8(u8) - m).max() <= 0.5 / 255 + 1e-7
    assert from_uint8(u8).max() == 1.0


def test_build_is_identical_for_any_n_jobs_and_marks_unusable_rows() -> None:
    ids, labels, table = table_of(120)
    a, ha = build_aumaps(ids, labels, table, n_jobs=1, chunk_size=16, progress=False)
    b, hb = build_aumaps(ids, labels, table, n_jobs=2, chunk_size=16, progress=False)
    assert a.dtype == np.uint8 and a.shape == (120, 56, 56)
    assert np.array_equal(a, b) and np.array_equal(ha, hb)
    expected = table.usable & (labels != NEUTRAL)
    assert ha.tolist() == expected.tolist()
    assert not a[~ha].any() and (a[ha].max(axis=(1, 2)) == 255).all()
    direct, _ = render_maps(table.landmarks[:3], table.image_size[:3], labels[:3])
    assert np.array_equal(a[:3], to_uint8(direct))  # the same as rendering the rows directly
    s = summarize(labels, ha, table)
    assert s["with_map"] == int(expected.sum()) and s["neutral"] == int((labels == NEUTRAL).sum())


def test_build_rejects_a_misaligned_landmark_store() -> None:
    ids, labels, table = table_of(10)
    bad = ids.copy()
    bad[3], bad[4] = ids[4], ids[3]
    with pytest.raises(ValueError, match=r"row 3.*s00004.*s00003.*landmarks"):
        build_aumaps(bad, labels, table, progress=False)
    with pytest.raises(ValueError, match=r"row 9.*end of manifest"):
        build_aumaps(ids[:9], labels[:9], table, progress=False)


def test_store_round_trip_bytes_and_size(tmp_path) -> None:
    ids, _, table = table_of(400)
    labels = np.arange(400) % 6 + 1  # every row an AU class: the worst case for size
    maps, has = build_aumaps(ids, labels, table, chunk_size=128, progress=False)
    attrs = aumap_attrs("reference", 56, 0.25, 0.5)
    p1, p2 = tmp_path / "a.h5", tmp_path / "sub" / "b.h5"
    write_aumap_store(p1, ids, maps, has, attrs)
    write_aumap_store(p2, ids, maps, has, attrs)
    assert p1.read_bytes() == p2.read_bytes()
    assert p1.stat().st_size / 400 <= 4096
    got = read_aumap_store(p1)
    assert got.sample_id == ids and np.array_equal(got.maps, maps) and np.array_equal(got.has_map, has)
    assert got.attrs["codebook"] == "reference" and got.attrs["size"] == 56 and got.attrs["radius"] == 0.25
    assert "fer_pipeline" in got.attrs
    assert not list(tmp_path.glob("**/*.tmp"))  # atomic: no temp file left behind

    reader = open_maps(p1)
    assert len(reader) == 400 and reader.has_map.tolist() == has.tolist()
    first = reader[7]
    clone = pickle.loads(pickle.dumps(reader))  # DataLoader workers get a pickled copy with no open handle
    assert first.dtype == np.float32 and np.array_equal(clone[7], from_uint8(maps[7]))
    assert np.array_equal(reader.read_u8([9, 2, 9]), maps[[9, 2, 9]])
    assert reader.sample_ids() == ids
    reader.close()
    clone.close()


def test_store_rejects_inconsistent_inputs(tmp_path) -> None:
    with pytest.raises(ValueError, match="uint8"):
        write_aumap_store(tmp_path / "x.h5", ["a"], np.zeros((1, 8, 8), np.float32), np.ones(1, bool), {})
    with pytest.raises(FileNotFoundError, match="dvc repro aumaps"):
        read_aumap_store(tmp_path / "missing.h5")


def _files(tmp_path, ids: list[str], labels: np.ndarray, table: LandmarkTable):
    """A manifest CSV and a landmark store on disk, as the aumaps stage reads them."""
    import pandas as pd

    from fer_pipeline.data.manifest import write_manifest
    from fer_pipeline.landmarks.store import write_landmark_store

    manifest = tmp_path / "manifest.csv"
    write_manifest(manifest, pd.DataFrame({"sample_id": ids, "path": [f"{s}.png" for s in ids], "label": labels,
                                           "split": "train"}))
    store = tmp_path / "landmarks.h5"
    write_landmark_store(store, table)
    return manifest, store


def test_stage_streams_from_files_the_maps_built_in_memory(tmp_path) -> None:
    from fer_pipeline.aumaps.build import build_aumap_store_from_files

    ids, labels, table = table_of(100)
    manifest, store = _files(tmp_path, ids, labels, table)
    maps, has = build_aumaps(ids, labels, table, chunk_size=16, progress=False)
    out = []
    for n_jobs in (1, 2):
        out.append(tmp_path / f"s{n_jobs}.h5")
        got = build_aumap_store_from_files(out[-1], manifest, store, {"size": 56}, chunk_size=16, n_jobs=n_jobs,
                                           progress=False)
        assert np.array_equal(got, has)
    stored = read_aumap_store(out[0])
    assert stored.sample_id == ids and np.array_equal(stored.maps, maps) and np.array_equal(stored.has_map, has)
    assert out[0].read_bytes() == out[1].read_bytes()


def test_stage_from_files_names_the_first_misaligned_row(tmp_path) -> None:
    from fer_pipeline.aumaps.build import build_aumap_store_from_files

    ids, labels, table = table_of(40)
    swapped = ids.copy()
    swapped[21], swapped[22] = ids[22], ids[21]
    manifest, store = _files(tmp_path, swapped, labels, table)
    with pytest.raises(ValueError, match=r"row 21: manifest has 's00022', landmark store has 's00021'"):
        build_aumap_store_from_files(tmp_path / "x.h5", manifest, store, {}, chunk_size=16, progress=False)
    manifest, store = _files(tmp_path, ids[:30], labels[:30], table)
    with pytest.raises(ValueError, match=r"30 rows but landmark store .* has 40"):
        build_aumap_store_from_files(tmp_path / "y.h5", manifest, store, {}, chunk_size=16, progress=False)
    assert not (tmp_path / "x.h5").exists() and not (tmp_path / "y.h5").exists()  # atomic: nothing half-written


def test_the_report_counts_the_stores_maps_and_why_rows_have_none(tmp_path: Path) -> None:
    """The report's AU-map counts come from the built stores: rows, maps, neutral rows, and AU-class rows without a
    map for unusable landmarks or for a face whose regions all fall off the frame."""
    import pandas as pd

    from fer_pipeline.aumaps.store import write_aumap_store
    from fer_pipeline.data.manifest import write_manifest
    from fer_pipeline.landmarks.store import write_landmark_store
    from fer_pipeline.report.aumaps import summarize_stores, summary_text

    ids, labels, table = table_of(60)
    labels[labels == NEUTRAL] = HAPPY
    labels[:3] = NEUTRAL
    table.landmarks[10] -= [0, table.landmarks[10][:, 1].max() + 18]  # the whole face 18 px above the frame
    maps, has = build_aumaps(ids, labels, table, n_jobs=1, chunk_size=16, progress=False)
    manifest = pd.DataFrame({"sample_id": ids, "path": [f"{i}.png" for i in ids], "label": labels, "split": "train"})
    write_manifest(tmp_path / "manifest.csv", manifest)
    write_landmark_store(tmp_path / "lm.h5", table)
    write_aumap_store(tmp_path / "au.h5", ids, maps, has, {})
    s = summarize_stores(tmp_path / "manifest.csv", tmp_path / "au.h5", tmp_path / "lm.h5")
    unusable = int((~table.usable[3:]).sum())
    assert s["rows"] == 60 and s["neutral"] == 3 and s["with_map"] == 60 - 3 - unusable - 1
    assert s["au_rows_unusable_landmarks"] == unusable > 0 and s["au_rows_off_image"] == 1
    assert f"{unusable} without usable landmarks, 1 off the image" in summary_text(s)
    write_aumap_store(tmp_path / "au.h5", ids[:59], maps[:59], has[:59], {})  # a store of another manifest
    with pytest.raises(ValueError, match=r"au\.h5: 59 rows, but .*manifest\.csv has 60"):
        summarize_stores(tmp_path / "manifest.csv", tmp_path / "au.h5", tmp_path / "lm.h5")
