"""Reliability and security: bad input becomes a status or a one-line error, atomic writes, SIGKILL + rerun,
two `dvc repro` runs give the same hashes, safe loading, params validated at stage start.
"""

from __future__ import annotations

import json
import logging
import os
import runpy
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml

from fer_pipeline.core import paths
from fer_pipeline.core.io import atomic_dir, atomic_path, load_params, write_text
from fer_pipeline.data.manifest import write_manifest
from fer_pipeline.data.probe import probe_images
from fer_pipeline.landmarks.extract import extract_landmarks
from fer_pipeline.landmarks.importer import align_with_reasons, read_points_csv
from fer_pipeline.landmarks.store import Status, read_landmark_store
from fer_pipeline.landmarks.summary import log_bad_rows, skip_unusable_images, summarize_table
from fer_pipeline.models import create_model, load_model, save_model
from fer_pipeline.train.checkpoint import load_checkpoint
from fer_pipeline.validate import ParamsError, check_stage
from tests.badinput import face, import_csv_rows, manifest_only, write_corpus
from tests.conftest import ROOT, run, set_params

torch.set_num_threads(2)
HOOK = Path(__file__).parent / "killpoint"


def repo_params(**updates: object) -> dict:
    """The repository's params.yaml with dotted-key updates."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for key, value in updates.items():
        *parents, leaf = key.split(".")
        node = params
        for p in parents:
            node = node[p]
        node[leaf] = value
    return params


# --- bad images and manifest rows -------------------------------------------------------------------------------


def test_bad_images_become_statuses_never_dropped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    corpus = write_corpus(tmp_path, n_good=7)
    table = extract_landmarks(manifest_only(corpus), tmp_path, {"backend": "synthetic", "noise": 0.0, "seed": 0})
    assert table.sample_id == corpus["sample_id"].tolist()  # every row, manifest order
    assert table.status.tolist() == corpus["expect_status"].tolist()
    assert table.reason == corpus["expect_reason"].tolist()
    ok = table.status == int(Status.OK)
    assert np.isfinite(table.landmarks[ok]).all() and np.isnan(table.landmarks[~ok]).all()
    assert (table.image_size[ok] == 64).all()
    tiny = corpus["sample_id"].tolist().index("bad_tiny_png")
    assert table.image_size[tiny].tolist() == [8, 8]  # size known, still unusable

    summary = summarize_table(table)
    assert summary["rows"] == len(corpus)
    assert summary["status"]["ok"] == int(ok.sum()) and summary["status"]["unreadable"] == int((~ok).sum())
    expected = corpus.loc[corpus["expect_reason"] != "", "expect_reason"].value_counts().to_dict()
    assert summary["reasons"] == dict(sorted(expected.items()))

    with caplog.at_level(logging.WARNING):
        log_bad_rows(table, corpus["path"].tolist(), "m.csv")
    row = corpus.index[corpus["sample_id"] == "bad_empty_jpg"][0] + 2
    assert f"m.csv row {row} (bad_empty_jpg, images/empty.jpg): status unreadable: empty" in caplog.text
    assert "re-copy it" in caplog.text and "../../etc/passwd): status unreadable: outside_root" in caplog.text

    # the probe is the same for any number of workers and chunking
    again = probe_images(corpus["path"].tolist(), tmp_path, n_jobs=2, chunk_size=5)
    assert again.reasons == table.reason and np.array_equal(again.sizes, table.image_size)


@pytest.mark.slow
def test_bad_input_through_the_stages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, request: pytest.FixtureRequest
) -> None:
    """landmarks -> aumaps -> train -> evaluate on the corpus: statuses, a summary, skipped-and-counted rows, no crash."""
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    request.addfinalizer(lambda: torch.set_num_threads(threads))  # the train stage sets it process-wide
    params = repo_params(
        **{
            "train.backbone": "resnet10t",
            "train.input_size": 32,
            "train.epochs": 1,
            "train.batch_size": 8,
            "train.device": "cpu",
            "train.threads": 1,
            "train.pretrained": "none",  # the stages run one by one here, without stage pretrain
            "evaluate.faithfulness_n": 4,
            "evaluate.deletion_steps": 4,
            "landmarks.n_jobs": 1,
        }
    )
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    root = paths.prepared_dir("synthetic")
    corpus = write_corpus(root, n_good=42)
    write_manifest(paths.manifest_path("synthetic"), manifest_only(corpus))

    def stage(name: str, *args: str) -> str:
        monkeypatch.setattr(sys, "argv", [f"pipeline/{name}.py", *args])
        runpy.run_path(str(ROOT / "pipeline" / f"{name}.py"), run_name="__main__")
        return capsys.readouterr().out

    out = stage("landmarks")
    n_bad = int((corpus["expect_status"] == int(Status.UNREADABLE)).sum())
    assert f"unreadable {n_bad}" in out and "missing 1" in out and "outside_root 1" in out and "too_large 1" in out
    store = read_landmark_store(paths.landmark_store("synthetic"))
    assert store.status.tolist() == corpus["expect_status"].tolist() and store.reason == corpus["expect_reason"].tolist()

    stage("aumaps")
    with h5py.File(paths.aumap_store("synthetic")) as f:
        has_map = f["has_map"][()]
    assert not has_map[corpus["expect_status"].to_numpy() == int(Status.UNREADABLE)].any()

    bad = corpus[corpus["expect_status"] == int(Status.UNREADABLE)]
    out = stage("train", "cam", "aus")
    n_skip = int(bad["split"].isin(["train", "val"]).sum())
    assert f"train cam-aus: skipping {n_skip} rows whose image is unusable" in out
    out = stage("evaluate", "cam", "aus")
    assert f"evaluate cam-aus: skipping {int((bad['split'] == 'test').sum())} rows whose image is unusable" in out
    metrics = json.loads(paths.details_path("cam-aus").read_text())
    assert json.loads(paths.metrics_path("cam-aus").read_text())["skip"] == metrics["n_skipped_unusable_images"]
    test = corpus[corpus["split"] == "test"]
    assert metrics["n_skipped_unusable_images"] == int((bad["split"] == "test").sum()) > 0
    assert metrics["n"] == len(test) - metrics["n_skipped_unusable_images"]  # grayscale/RGBA/16-bit/CMYK rows are kept

    # the checkpoint and the model hold tensors and plain types only
    def plain(obj: object) -> bool:
        if isinstance(obj, dict):
            return all(isinstance(k, (str, int)) and plain(v) for k, v in obj.items())
        if isinstance(obj, (list, tuple)):
            return all(plain(v) for v in obj)
        return obj is None or isinstance(obj, (torch.Tensor, str, int, float, bool))

    for file in (paths.checkpoint_dir("cam-aus") / "last.pt", paths.model_path("cam-aus")):
        assert plain(torch.load(file, map_location="cpu", weights_only=True)), file
    # HDF5 stores hold numbers, bools and utf-8 strings only; attributes are plain scalars
    for file in (paths.landmark_store("synthetic"), paths.aumap_store("synthetic")):
        with h5py.File(file) as f:
            for name, ds in f.items():
                assert ds.dtype.kind in "uifb" or h5py.check_string_dtype(ds.dtype), (file, name, ds.dtype)
            assert all(isinstance(v, (str, np.integer, np.floating, np.bool_, int, float)) for v in f.attrs.values())


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        ("duplicate", "row 9: duplicate sample_id 'good_000' (first at row 2); sample ids must be unique: rename or remove"),
        ("label", "row 4: label '9' is not a canonical index 0..6; fix the row"),
        ("codebook", "aumaps.codebook='facs' unknown; valid: reference, paper"),
    ],
)
def test_stage_errors_are_one_line(tmp_path: Path, edit: str, needle: str) -> None:
    """A bad manifest row or param stops the stage with `<stage>: error: <file/key>: ...`, exit 2, no traceback."""
    root = paths.prepared_dir("synthetic")
    corpus = manifest_only(write_corpus(tmp_path / root, n_good=7)).copy()
    params = repo_params(**({"aumaps.codebook": "facs"} if edit == "codebook" else {}))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    if edit == "duplicate":
        corpus.loc[7, "sample_id"] = "good_000"
    elif edit == "label":
        corpus.loc[2, "label"] = 9
    corpus.to_csv(tmp_path / paths.manifest_path("synthetic"), index=False)
    script = "aumaps" if edit == "codebook" else "landmarks"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run(
        [sys.executable, str(ROOT / "pipeline" / f"{script}.py")], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and needle in res.stderr, res.stderr
    first = res.stderr.splitlines()[0]
    assert first.startswith(f"{script}: error: ") and needle in first
    if edit != "codebook":
        assert str(paths.manifest_path("synthetic")) in first  # names the file


def test_import_csv_bad_rows(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """NaN, out-of-image, 67-point and absent rows: status 5 with the reason; an id twice: the first row, with a warning;
    a file with 67 point columns: a clear error."""
    _, pts = face(0, 1, 64)
    frame, expect = import_csv_rows(pts, 64)
    frame.to_csv(tmp_path / "imp.csv", index=False)
    with caplog.at_level(logging.WARNING):
        ids, points = read_points_csv(tmp_path / "imp.csv")
    assert "imp.csv: 1 repeated sample ids (e.g. imp_dup): the first row of each is used" in caplog.text
    wanted = list(expect)
    sizes = np.full((len(wanted), 2), 64)
    out, status, reasons = align_with_reasons(wanted, ids, points, sizes, "imp.csv", Status.IMPORTED)
    assert dict(zip(wanted, reasons, strict=True)) == expect
    imported = np.array([not expect[w] for w in wanted])
    assert status.tolist() == [int(Status.IMPORTED) if ok else int(Status.INVALID_IMPORT) for ok in imported]
    assert np.isfinite(out[imported]).all() and np.isnan(out[~imported]).all()

    frame.drop(columns=["x67", "y67"]).to_csv(tmp_path / "imp67.csv", index=False)
    with pytest.raises(ValueError, match=r"imp67.csv: needs a sample_id column and 68 x/y columns \(x0..x67, y0..y67 or"):
        read_points_csv(tmp_path / "imp67.csv")


def test_training_skips_rows_from_a_stale_store(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path, n_good=7)
    table = extract_landmarks(manifest_only(corpus), tmp_path, {"backend": "synthetic", "noise": 0.0, "seed": 0})
    from fer_pipeline.landmarks.store import write_landmark_store

    write_landmark_store(tmp_path / "lm.h5", table)
    kept, skipped = skip_unusable_images(manifest_only(corpus), tmp_path / "lm.h5")
    assert len(kept) + len(skipped) == len(corpus)
    assert sorted(skipped["reason"]) == sorted(r for r in corpus["expect_reason"] if r)
    with pytest.raises(ValueError, match="not in the landmark store .*rerun `dvc repro landmarks`"):
        skip_unusable_images(manifest_only(corpus).assign(sample_id=lambda d: d["sample_id"] + "x"), tmp_path / "lm.h5")


# --- params validated at stage start ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "updates", "needle"),
    [
        ("prepare", {"data.dataset": "imagenet"}, "data.dataset='imagenet' unknown; valid: synthetic, rafdb, affectnet, folder"),
        ("landmarks", {"landmarks.backend": "dlib"}, "backend='dlib' unknown; valid: synthetic, dlib68, import, dataset"),
        ("landmarks", {"landmarks.backend": "dlib68", "landmarks.detector": "mtcnn"}, "valid: hog, haar, none"),
        ("landmarks", {"landmarks.backend": "dlib68", "landmarks.fallback": ["haar", "cnn"]}, "landmarks.fallback has ['cnn']"),
        ("landmarks", {"landmarks.noise": -0.1}, "landmarks.noise=-0.1 out of range; valid: >= 0"),
        ("landmarks", {"landmarks.n_jobs": 0}, "landmarks.n_jobs=0 is not a worker count"),
        ("aumaps", {"aumaps.smoothing": "nan"}, "aumaps.smoothing='nan' is not a finite number"),
        ("aumaps", {"aumaps.codebook": "facs"}, "valid: reference, paper"),
        ("aumaps", {"aumaps.radius": 0}, "aumaps.radius=0 out of range; valid: > 0"),
        ("aumaps", {"aumaps.mode": "weighted"}, "aumaps.mode='weighted' unknown; valid: codebook, active"),
        ("aumaps", {"aumaps.restrict_to_codebook": "maybe"}, "aumaps.restrict_to_codebook='maybe' is not a boolean"),
        ("aus", {"aus.source": "openface"}, "aus.source='openface' unknown; valid: none, synthetic, import"),
        ("aus", {"aus.source": "synthetic", "data.dataset": "rafdb"}, "aus.source=synthetic needs data.dataset=synthetic"),
        ("train", {"train.lambda": -1}, "train.lambda=-1.0 must be >= 0"),
        ("train", {"train.layers": [6]}, "train.layers: [6] not valid; valid: 1, 2, 3, 4, 5"),
        ("train", {"method": "gradcam++"}, "method 'gradcam++' unknown; valid: acol, adl, apvit, cam, cutmix,"),
        ("train", {"methods.wildcat.lambda": -2, "method": "wildcat"}, "train.lambda=-2.0 must be >= 0"),
        ("train", {"train.method": "wildcat"}, "train.method is not a parameter: the methods that train are the list"),
        ("train", {"train.align_loss": "dice"}, "valid: cos, l1, l2, kl"),
        ("train", {"train.backbone": "resnet1000"}, "train.backbone='resnet1000' is not a timm model"),
        ("evaluate", {"evaluate.batch_size": 0}, "evaluate.batch_size=0 out of range; valid: >= 1"),
        ("report", {"report.methods": []}, "report.methods=[] must be a non-empty list"),
        ("aumaps", {"aumaps": {"codebook": "reference"}}, "params.yaml: missing aumaps.size"),
    ],
)
def test_params_are_checked_at_stage_start(stage: str, updates: dict, needle: str) -> None:
    method = updates.pop("method", "cam")  # train stages take the method as their argument (DVC's matrix)
    params = repo_params(**updates)
    with pytest.raises(ParamsError) as info:
        check_stage(stage, params, **({"method": method} if stage == "train" else {}))
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_missing_dataset_root(tmp_path: Path) -> None:
    """A real dataset whose data.root is absent fails before any work."""
    params = repo_params(**{"data.dataset": "rafdb", "data.root": str(tmp_path / "nope")})
    for stage in ("prepare", "landmarks", "train", "evaluate"):
        with pytest.raises(ParamsError, match="data.root=.*nope' does not exist or is not a folder .*point data.root at it"):
            check_stage(stage, params, method="cam")
    check_stage("aumaps", params)  # reads no images
    cfg, options = check_stage("train", repo_params(), method="wildcat")  # the default params pass and cast
    assert cfg.lam == 4.0 and cfg.method == "wildcat" and options["kmax"] == 0.2  # methods.wildcat's own options


# --- atomic writes and safe loading ----------------------------------------------------------------------------


def test_atomic_dir_and_stale_temps(tmp_path: Path) -> None:
    target = tmp_path / "prepared"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("half")
        raise RuntimeError("killed")
    assert (target / "a.txt").read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["prepared"]
    with atomic_dir(target) as tmp:
        (tmp / "b.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]  # replaced as a whole, no mix of old and new
    # what a SIGKILL leaves behind (a temp file, a temp folder) is removed by the next write of the same artifact
    (tmp_path / ".m.json.abc123.tmp").write_text("{")
    (tmp_path / ".prepared.xyz.tmp").mkdir()
    write_text(tmp_path / "m.json", "{}\n")
    with atomic_dir(target) as tmp:
        (tmp / "c.txt").write_text("c")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "prepared"]
    with atomic_path(tmp_path / "other.bin") as tmp:
        tmp.write_bytes(b"x")
    assert (tmp_path / "m.json").read_text() == "{}\n"


class Payload:
    """A pickle that would run code on load (it creates a file)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def test_foreign_pickles_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "last.pt"
    torch.save({"fingerprint": "x", "model": Payload(marker)}, evil)
    with pytest.raises(ValueError, match=r"checkpoint .*last.pt cannot be read safely \(it holds pickled .*train.resume: false"):
        load_checkpoint(evil, "x")
    with pytest.raises(ValueError, match=r"cannot read model file .*last.pt: it holds pickled objects .*refused"):
        load_model(evil)
    assert not marker.exists(), "weights_only loading must never run a pickle's code"
    # our own files load with weights_only
    model = create_model("cam", backbone="resnet18", output_stride=16)
    save_model(tmp_path / "m.pt", model, {"input_size": 32})
    assert load_model(tmp_path / "m.pt")[1]["input_size"] == 32


def test_params_yaml_is_loaded_safely(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    (tmp_path / "params.yaml").write_text(f"data: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ValueError, match="params.yaml: not plain YAML"):
        load_params(tmp_path / "params.yaml")
    assert not marker.exists()


# --- SIGKILL mid-write, rerun, and two `dvc repro` runs ------------------------------------------------------------

def outs(repo: Path) -> dict[str, str]:
    """Every out's md5 in dvc.lock (stage/path -> md5), metrics and plots included."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return {f"{name}:{o['path']}": o["md5"] for name, stage in lock["stages"].items() for o in stage.get("outs", [])}


def stage_script(repo: Path, script: str, *args: str) -> str:
    """Run `python pipeline/<script>.py ARGS` in the clone (the stage's dvc.yaml cmd); its stdout."""
    return run([sys.executable, f"pipeline/{script}.py", *args], repo).stdout


#: Seconds a stage may take to reach its kill point (each takes a few on 2 cores): past it the test fails, never hangs.
KILL_POINT_DEADLINE_S = 600.0


def kill_during(repo: Path, target: str, n: int, script: str, *args: str) -> None:
    """Start a stage, SIGKILL it right after its n-th call of `target` (module:function)."""
    marker = repo.parent / f"paused-{script}"
    marker.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": f"{repo}{os.pathsep}{HOOK}", "FER_PAUSE": f"pipeline/{script}.py|{target}|{n}|{marker}"}
    cmd = [sys.executable, f"pipeline/{script}.py", *args]
    proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + KILL_POINT_DEADLINE_S
    try:
        while not marker.exists():
            if proc.poll() is not None:
                raise AssertionError(f"{script} ended before the kill point:\n{proc.stdout.read()[-3000:]}")
            if time.monotonic() > deadline:
                proc.kill()
                out = proc.communicate(timeout=60)[0]
                raise AssertionError(f"{script} did not reach its kill point (call {n} of {target}) within "
                                     f"{KILL_POINT_DEADLINE_S:.0f} s; killed. Is tests/killpoint on its path?\n{out[-3000:]}")
            time.sleep(0.05)
        time.sleep(0.05)  # the pid is written just before the sleep starts
        os.kill(int(marker.read_text()), signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL


def temps(folder: Path) -> list[str]:
    """Temp files/folders an atomic write left in `folder`."""
    return sorted(p.name for p in folder.glob(".*.tmp")) if folder.exists() else []


def tree(folder: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every file under `folder`."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_sigkill_then_rerun_gives_run_ones_hashes(repro_clone: Path) -> None:
    """Run 1: `dvc repro` (the shared one, tests/conftest.py: 2 epochs, one thread). Run 2: every stage's command again,
    prepare/landmarks/aumaps/train first SIGKILLed mid-write.

    A killed stage leaves no half-written output under a real name (only temps, removed by the rerun); train resumes
    from its epoch-1 checkpoint and ends with the uninterrupted run's weights, logs and checkpoint, byte for byte.
    At the end `dvc status` finds every output's hash equal to run 1's dvc.lock: two runs, identical hashes.
    """
    repo = repro_clone
    assert json.loads(run(["dvc", "status", "--json"], repo).stdout or "{}") == {}  # run 1 is complete and up to date
    first = outs(repo)
    assert len(first) >= 15  # prepare, landmarks, aumaps, 2 x train (model, checkpoints, dvclive), 2 x evaluate, report
    prepared, lm, am = repo / "data/prepared/synthetic", repo / "data/landmarks/synthetic.h5", repo / "data/aumaps/synthetic.h5"
    run1 = {"prepared": tree(prepared), "lm": lm.read_bytes(), "am": am.read_bytes(), "live": tree(repo / "dvclive/cam-aus")}
    run1["model"] = (repo / "models/cam-aus/model.pt").read_bytes()
    run1["ckpt"] = (repo / "checkpoints/cam-aus/last.pt").read_bytes()

    # prepare, killed after its 5th image: the dataset folder under the real name is run 1's, untouched
    kill_during(repo, "cv2:imencode", 5, "prepare")
    assert tree(prepared) == run1["prepared"] and temps(prepared.parent)
    stage_script(repo, "prepare")
    assert tree(prepared) == run1["prepared"] and not temps(prepared.parent)

    # landmarks, killed with its HDF5 store written but not closed (rows streamed, attributes being set); as under DVC,
    # the old store was deleted first: nothing appears under the real name
    lm.unlink()
    kill_during(repo, "fer_pipeline.core.h5:set_attrs", 1, "landmarks")
    assert not lm.exists() and [t.startswith(".synthetic.h5.") for t in temps(lm.parent)] == [True]
    stage_script(repo, "landmarks")
    assert lm.read_bytes() == run1["lm"] and not temps(lm.parent)

    # aumaps, killed the same way with the old store in place: it stays intact
    kill_during(repo, "fer_pipeline.core.h5:set_attrs", 1, "aumaps")
    assert am.read_bytes() == run1["am"] and temps(am.parent)
    stage_script(repo, "aumaps")
    assert am.read_bytes() == run1["am"] and not temps(am.parent)

    # train: a fresh run (outputs deleted as DVC does; checkpoints persist) killed while writing its epoch-2 checkpoint
    stage_script(repo, "train", "cam", "noaus")
    shutil.rmtree(repo / "models/cam-aus")
    shutil.rmtree(repo / "dvclive/cam-aus")
    kill_during(repo, "torch:save", 2, "train", "cam", "aus")
    ckpt = repo / "checkpoints/cam-aus"
    assert not (repo / "models/cam-aus/model.pt").exists() and not (repo / "dvclive/cam-aus").exists()
    assert torch.load(ckpt / "last.pt", weights_only=True)["epoch"] == 1 and temps(ckpt) and temps(repo / "dvclive")
    set_params(repo, {"train.resume": True})
    assert "resume: continuing after epoch 1 of 2" in stage_script(repo, "train", "cam", "aus")
    set_params(repo, {"train.resume": False})
    assert (repo / "models/cam-aus/model.pt").read_bytes() == run1["model"]
    assert (ckpt / "last.pt").read_bytes() == run1["ckpt"]
    assert tree(repo / "dvclive/cam-aus") == run1["live"]
    assert not temps(ckpt) and not temps(repo / "dvclive")

    for args in (("evaluate", "cam", "noaus"), ("evaluate", "cam", "aus"), ("report",)):
        stage_script(repo, *args)
    # every dep, param and out hash equals run 1's dvc.lock (`dvc status` rehashes metrics, plots, checkpoints, logs too)
    assert json.loads(run(["dvc", "status", "--json"], repo).stdout or "{}") == {}
    assert outs(repo) == first
