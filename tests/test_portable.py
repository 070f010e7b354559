"""Portable CPU numerics: the stage environment that `train.cpu_kernels` sets, and the cross-machine fixture.

`test_portable_training_gives_the_committed_bytes` retrains the fixture of tests/portable_fixture.py (280 synthetic
faces, the demo model, 2 epochs, portable kernels) and compares the sha256 of `model.pt` and of the metrics with the
committed ones: every machine that runs the suite is a cross-machine check. After a change to the training, the
evaluation or params.yaml's `train` section, regenerate the fixture and commit it:

    python -m tests.portable_fixture --write
"""

from __future__ import annotations

import json
import os
import runpy
import sys
from pathlib import Path

import pytest
import torch
import yaml

from fer_pipeline.core import numerics
from fer_pipeline.core.numerics import PORTABLE_ISA, PORTABLE_THREADS, cpu_environment, intra_op_threads, stage_environment
from fer_pipeline.core.train_config import TrainConfig
from tests import portable_fixture
from tests.conftest import ROOT, run

X86 = numerics.is_x86_64()


def write_params(folder: Path, **train: object) -> Path:
    """params.yaml with the repository's sections and these `train` keys changed."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"].update(train)
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_portable_caps_every_kernel_library_and_fixes_the_threads(tmp_path: Path) -> None:
    env = stage_environment(write_params(tmp_path, cpu_kernels="portable", threads=0), environ={})
    assert env["OMP_NUM_THREADS"] == str(PORTABLE_THREADS) and env["OMP_WAIT_POLICY"] == "PASSIVE"
    assert {k: env.get(k) for k in PORTABLE_ISA} == (PORTABLE_ISA if X86 else dict.fromkeys(PORTABLE_ISA))
    assert stage_environment(write_params(tmp_path, threads=3), environ={"OMP_WAIT_POLICY": "ACTIVE"})["OMP_NUM_THREADS"] == "3"
    defaults = {"OMP_WAIT_POLICY": "PASSIVE", **cpu_environment("portable")}
    assert stage_environment(tmp_path / "absent.yaml", environ={}) == defaults


def test_native_sets_no_cap_and_leaves_the_threads_to_the_machine(tmp_path: Path) -> None:
    env = stage_environment(write_params(tmp_path, cpu_kernels="native", threads=0), environ={"OMP_WAIT_POLICY": "ACTIVE"})
    assert env == {"OMP_WAIT_POLICY": "ACTIVE"}  # the user's wait policy kept, nothing capped, no thread count
    assert cpu_environment("native", 4) == {"OMP_NUM_THREADS": "4"}
    assert intra_op_threads("native", 0) == 0 and intra_op_threads("portable", 0) == PORTABLE_THREADS


def test_a_bad_mode_is_refused_with_the_choices(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"cpu_kernels='fast' unknown; valid: portable, native"):
        stage_environment(write_params(tmp_path, cpu_kernels="fast"))
    with pytest.raises(ValueError, match="valid: portable, native"):
        TrainConfig.from_params({"cpu_kernels": "avx512"})
    assert TrainConfig.from_params({"cpu_kernels": "Native"}).cpu_kernels == "native"
    assert TrainConfig().cpu_kernels == "portable"


@pytest.mark.parametrize("script", ["train.py", "evaluate.py"])
def test_torch_stages_set_the_params_choice_before_torch_loads(
    script: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stage script's top level (not main()) sets what params.yaml's train.cpu_kernels / train.threads ask for."""
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path, cpu_kernels="portable", threads=1)
    for key in (*PORTABLE_ISA, "OMP_NUM_THREADS"):
        monkeypatch.delenv(key, raising=False)
    runpy.run_path(str(ROOT / "pipeline" / script), run_name="stage_under_test")
    assert os.environ["OMP_NUM_THREADS"] == "1"
    assert all(os.environ.get(k) == v for k, v in PORTABLE_ISA.items()) == X86


@pytest.mark.skipif(not X86, reason="the instruction-set caps apply on x86-64 only")
def test_the_suite_runs_portable_and_an_uncapped_process_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    assert torch.backends.cpu.get_cpu_capability() in ("AVX2", "DEFAULT")  # conftest capped ATen before torch loaded
    numerics.check_cpu_kernels("portable")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    with pytest.raises(RuntimeError, match=r"uncapped kernels \(\{'ONEDNN_MAX_CPU_ISA': None\}\).*\nCPU: "):
        numerics.check_cpu_kernels("portable")
    numerics.check_cpu_kernels("native")  # native promises nothing: never refused


def test_the_fixture_file_round_trips(tmp_path: Path) -> None:
    """What `python -m tests.portable_fixture --write` writes is what the comparison reads; the committed file has
    a hash for every output and names the machine that made it."""
    hashes, report = {name: f"{i:064x}" for i, name in enumerate(portable_fixture.OUTPUTS)}, ["CPU: x", "knobs: y"]
    portable_fixture.write(hashes, report, tmp_path / "fixture.json")
    assert portable_fixture.committed(tmp_path / "fixture.json") == {"sha256": hashes, "made_on": report}
    kept = portable_fixture.committed()
    assert set(kept["sha256"]) == set(portable_fixture.OUTPUTS) and kept["made_on"][0].startswith("CPU: ")


@pytest.mark.slow
def test_portable_training_gives_the_committed_bytes() -> None:
    """The fixture's model.pt, metrics.json and details.json hashes equal the committed ones (any x86-64 AVX2 machine).
    In a fresh process, as a stage runs. Regenerate after a change to the training, evaluation or params.yaml `train`:
    python -m tests.portable_fixture --write"""
    res = run([sys.executable, "-m", "tests.portable_fixture"], ROOT, check=False)
    lines = [line for line in res.stdout.splitlines() if line.startswith(portable_fixture.RESULT)]
    assert lines, f"the fixture run failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    got = json.loads(lines[-1].split(" ", 1)[1])
    want = portable_fixture.committed()
    if got["sha256"] != want["sha256"]:
        differ = [name for name in portable_fixture.OUTPUTS if got["sha256"].get(name) != want["sha256"].get(name)]
        pytest.fail(
            f"portable training gave other bytes than {portable_fixture.FIXTURE.name} for {differ}.\n"
            "This machine:\n  " + "\n  ".join(got["machine"]) + "\nThe fixture was made on:\n  "
            + "\n  ".join(want.get("made_on", [])) + "\nIf the training, the evaluation or params.yaml's train section "
            "changed, regenerate it: python -m tests.portable_fixture --write (and commit it); else the kernels differ "
            "across these machines (docs/guides/reproducibility.md)."
        )
    assert res.returncode == 0, res.stdout[-3000:]
