"""`fer --help` start-up: wall time of `fer --help`, `fer predict --help` and `fer explain --help` (each a fresh Python
process) against `python -c pass`, and with `--before CHECKOUT` the same helps from another checkout of the project.

    PYTHONPATH=. python benchmarks/cli_startup.py [--repeats 15] [--before /path/to/older/checkout]

Every command runs as `python -m fer_pipeline.cli ...` in the checkout under test with PYTHONPATH set to it (so the installed
`fer` script's own start-up, the same for all, is left out), interleaved A, B, C, ... so machine load hits all alike.
Prints the median and minimum of each and the ratios to `python -c pass`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import ROOT, interleaved, machine

HELPS = {"fer --help": ["--help"], "fer predict --help": ["predict", "--help"], "fer explain --help": ["explain", "--help"]}


def runner(checkout: Path | None, argv: list[str]) -> Callable[[], object]:
    """A call that runs `python -c pass`, or the CLI of `checkout` (run in it, its package first on the path), to the
    end, its output discarded (a failing command stops the benchmark)."""
    env = dict(os.environ)
    cmd = [sys.executable, "-c", "pass"]
    if checkout is not None:
        env["PYTHONPATH"] = str(checkout)
        cmd = [sys.executable, "-m", "fer_pipeline.cli", *argv]
    cwd = checkout or ROOT
    return lambda: subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--before", type=Path, default=None, help="another checkout whose helps are timed side by side")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    variants = {"python -c pass": runner(None, [])}
    for name, argv in HELPS.items():
        variants[name] = runner(ROOT, argv)
        if args.before is not None:
            variants[f"{name} (before)"] = runner(args.before.resolve(), argv)
    times = interleaved(variants, args.repeats)
    base = statistics.median(times["python -c pass"])
    print("| command | median s | min s | x `python -c pass` |\n|---|---|---|---|")
    for name, t in times.items():
        print(f"| `{name}` | {statistics.median(t):.3f} | {min(t):.3f} | {statistics.median(t) / base:.1f} |")


if __name__ == "__main__":
    main()
