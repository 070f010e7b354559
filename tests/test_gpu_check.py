"""benchmarks/gpu_check.py, the one-command GPU check, kept from rotting without a GPU: a CPU dry run at tiny sizes
(every section, the real train_model / evaluate path, bf16 and fp16 autocast on CPU, torch.compile with aot_eager)
without the packages a bare CUDA PyTorch environment lacks, and its guard: a failing, overrunning or unaffordable
section is recorded and the run goes on."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The dry run: every section at tiny sizes on the CPU (inductor on CPU would take minutes; aot_eager traces the same graph).
#: Its budget is an hour so that no section is skipped for time on a loaded machine: the test checks what the sections
#: measure, not how fast (the dry run's wall time against the GPU call's budget: benchmarks/timed_checks.py).
DRY_RUN = [
    "--device", "cpu", "--budget", "3600", "--backbone", "resnet10t", "--size", "32", "--output-stride", "16", "--n", "42",
    "--batches", "4,8", "--steps", "2", "--warmup", "1", "--rounds", "1", "--workers", "1", "--worker-grid", "0,1",
    "--jobs", "2", "--train-batch", "4", "--train-epochs", "1", "--faithfulness-n", "4", "--compile-backend", "aot_eager",
]


@pytest.fixture
def gpu_check(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The script as a module (its environment defaults set here, so that they are undone after the test)."""
    monkeypatch.setenv("TQDM_DISABLE", "1")
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import gpu_check

    return gpu_check


def numbers(node: Any, path: str = "") -> list[tuple[str, Any]]:
    """(dotted path, value) of every leaf that is a number or None."""
    if isinstance(node, dict):
        return [x for k, v in node.items() for x in numbers(v, f"{path}.{k}")]
    if isinstance(node, list):
        return [x for i, v in enumerate(node) for x in numbers(v, f"{path}[{i}]")]
    if node is None or (isinstance(node, (int, float)) and not isinstance(node, bool)):
        return [(path, node)]
    return []


def test_a_failing_or_overrunning_section_is_recorded_and_the_next_one_runs(gpu_check: ModuleType) -> None:
    ok = gpu_check.guarded(lambda: {"x": 1}, 10)
    assert ok["ok"] and ok["x"] == 1 and ok["seconds"] >= 0
    bad = gpu_check.guarded(lambda: {"x": 1 / 0}, 10)
    assert not bad["ok"] and bad["error"].startswith("ZeroDivisionError") and "1 / 0" in bad["where"]
    # the alarm cuts the section short: had the 5 s sleep run to its end, the section would have returned ok. (How soon
    # the record comes is timed in benchmarks/timed_checks.py, not here.)
    late = gpu_check.guarded(lambda: time.sleep(5) or {}, 0.2)
    assert not late["ok"] and late["error"].startswith("SectionTimeout") and "ran past" in late["error"]


def test_sections_the_budget_cannot_afford_are_skipped_and_recorded(gpu_check: ModuleType, tmp_path: Path) -> None:
    assert gpu_check.main(["--out", str(tmp_path), "--device", "cpu", "--budget", "0.001"]) == 1
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    s = report["sections"]
    assert list(s) == list(gpu_check.SECTIONS)
    assert s["environment"]["ok"] and s["environment"]["cores"] >= 1
    assert all(not v["ok"] and v["error"].startswith("skipped:") for k, v in s.items() if k != "environment")
    assert "skipped:" in (tmp_path / "gpu_check.txt").read_text()


#: Project dependencies a bare CUDA PyTorch environment lacks: the check must run without them.
ABSENT_THERE = ("dvc", "dvclive", "pytorch_grad_cam", "ttach", "dlib", "face_recognition_models")
#: Runs the script as `python benchmarks/gpu_check.py` does, with those packages made unimportable.
WITHOUT = f"""
import runpy, sys
class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {ABSENT_THERE!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (absent in a bare CUDA PyTorch environment)")
sys.meta_path.insert(0, Absent())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.mark.slow
def test_cpu_dry_run_measures_every_section(tmp_path: Path) -> None:
    script = str(ROOT / "benchmarks" / "gpu_check.py")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "benchmarks"), str(ROOT)])}
    res = subprocess.run([sys.executable, "-c", WITHOUT, script, "--out", str(tmp_path), *DRY_RUN],
                         cwd=ROOT, capture_output=True, text=True, env=env)
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    s = report["sections"]
    failed = {k: v.get("error") for k, v in s.items() if not v["ok"]}
    assert res.returncode == 0 and not failed, (failed, res.stdout[-3000:], res.stderr[-3000:])
    assert list(s) == ["environment", "dataset", "throughput", "loader", "train", "evaluate", "precision_layout", "compile"]
    for path, v in numbers(s):
        if path.endswith("peak_memory_mib"):  # a GPU figure: None on CPU
            assert v is None, path
            continue
        assert v is not None and math.isfinite(v), (path, v)
        if path.endswith(("per_s", "ratio", "speedup", "seconds", "overhead", "_s")) or "align_overhead" in path:
            assert v > 0, (path, v)
    t = s["throughput"]
    assert {(r["batch"], r["lambda"]) for r in t["rows"]} == {(4, 0.0), (4, 4.0), (8, 0.0), (8, 4.0)}
    assert [o["batch"] for o in t["align_overhead"]] == [4, 8]
    assert [r["workers"] for r in s["loader"]["rows"]] == [0, 1] and s["loader"]["workers_to_feed_gpu"] in (0, 1)
    assert s["train"]["finished"] and s["train"]["steps"] >= 1 and s["train"]["device"] == "cpu"
    assert {"cl", "cam_cos", "att_cos", "deletion_score"} <= set(s["evaluate"])
    assert {(r["amp"], r["channels_last"]) for r in s["precision_layout"]["rows"]} == {
        ("bf16", True), ("bf16", False), ("off", True), ("off", False), ("fp16", True)}
    assert s["compile"]["backend"] == "aot_eager"
    text = (tmp_path / "gpu_check.txt").read_text()
    for line in ("throughput", "loader at batch", "train_model (cpu)", "evaluate:", "precision", "torch.compile"):
        assert line in text, line


def test_the_documented_gpu_commands_are_the_same_and_the_script_accepts_them(gpu_check: ModuleType, tmp_path: Path) -> None:
    def block(doc: str) -> str:
        blocks = [b for b in re.findall(r"```bash\n(.*?)```", (ROOT / doc).read_text(), re.S) if "gpu_check.err" in b]
        assert len(blocks) == 1, doc
        return blocks[0]

    commands = block("docs/guides/gpu.md")
    assert commands == block("BENCHMARKS.md")
    line = next(ln for ln in commands.splitlines() if "benchmarks/gpu_check.py" in ln)
    script_args = line.split("benchmarks/gpu_check.py", 1)[1].split("2>")[0].split()
    assert script_args == ["--out", "gpu-check"] and "mkdir -p gpu-check" in commands
    args = gpu_check.parse_args([a.replace("gpu-check", str(tmp_path)) for a in script_args] + ["--device", "cpu"])
    assert args.backbone == "resnet50" and args.size == 224 and args.batches == "32,128" and args.lambdas == "0,4"
