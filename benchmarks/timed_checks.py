"""Timings the tests leave out (a test checks behaviour, never speed), measured here against their targets:

- synthetic faces: CPU time of one `make_sample` at the default config (target under 20 ms a face);
- benchmarks/gpu_check.py's guard: seconds from a section's start until one that overruns its 0.2 s limit (a 5 s sleep)
  is recorded (target under 3 s: the alarm cuts it short);
- benchmarks/gpu_check.py's CPU dry run (tests/test_gpu_check.py's arguments, with the packages the GPU machine lacks made
  unimportable) under a 300 s budget: wall time, and every section done (none skipped or cut for time).

    PYTHONPATH=. python benchmarks/timed_checks.py [--faces 100] [--no-dry-run]

Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, machine
from fer_pipeline.core.labels import NUM_CLASSES
from fer_pipeline.data.synthetic import SyntheticConfig, make_sample

DRY_RUN_BUDGET_S = 300.0


def face_ms(n: int) -> float:
    """CPU milliseconds per synthetic face (the first, which warms caches, left out)."""
    cfg = SyntheticConfig()
    make_sample(0, 0, 0, "train", cfg)
    t = time.process_time()
    for i in range(n):
        make_sample(0, i, i % NUM_CLASSES, "train", cfg)
    return (time.process_time() - t) / n * 1e3


def guard_s() -> float:
    """Seconds until gpu_check's guard records a section that sleeps 5 s past its 0.2 s limit."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gpu_check

    t = time.perf_counter()
    late = gpu_check.guarded(lambda: time.sleep(5) or {}, 0.2)
    assert not late["ok"], "the guard let an overrunning section finish"
    return time.perf_counter() - t


def dry_run() -> tuple[float, list[str]]:
    """Wall seconds of the CPU dry run under a 300 s budget, and the sections that did not finish."""
    from tests.test_gpu_check import DRY_RUN, WITHOUT

    args = list(DRY_RUN)
    args[args.index("--budget") + 1] = str(DRY_RUN_BUDGET_S)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "benchmarks"), str(ROOT)])}
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", WITHOUT, str(ROOT / "benchmarks" / "gpu_check.py"), "--out", out, *args],
                       cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t
        sections = json.loads((Path(out) / "gpu_check.json").read_text())["sections"]
    return wall, [k for k, v in sections.items() if not v["ok"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=100)
    ap.add_argument("--no-dry-run", action="store_true", help="skip the gpu_check dry run (minutes)")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    rows = [("synthetic face (`make_sample`, CPU ms)", f"{face_ms(args.faces):.1f}", "< 20", None),
            ("gpu_check guard: overrun recorded after (s)", f"{guard_s():.2f}", "< 3", None)]
    rows = [(name, value, target, float(value) < float(target[2:])) for name, value, target, _ in rows]
    if not args.no_dry_run:
        wall, failed = dry_run()
        rows.append(("gpu_check CPU dry run (wall s)", f"{wall:.0f}", f"every section within {DRY_RUN_BUDGET_S:.0f}",
                     not failed))
        if failed:
            print(f"sections not done: {', '.join(failed)}")
    print("| check | measured | target | met |\n|---|---|---|---|")
    for name, value, target, met in rows:
        print(f"| {name} | {value} | {target} | {'yes' if met else 'NO'} |")


if __name__ == "__main__":
    main()
