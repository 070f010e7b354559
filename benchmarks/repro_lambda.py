"""`dvc repro` after a λ change, side by side: this checkout vs the earlier layout (where the λ = 0 run
listed every `train` key and so retrained on every λ change). Both run in temporary clones with the same tiny params.

No upstream stage may rerun; this checkout reruns only the guided train, its evaluation and the report. Each stage's
span is taken from the repro's own output, stamped line by line as it streams ("Running stage 'x'" to the next stage or
the end).

    python benchmarks/repro_lambda.py [--epochs 1] [--n 140] [--before c72b6c6]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from common import ROOT, machine

from tests.conftest import make_clone, set_params

#: The last commit of the earlier layout (train@<method>-noaus depended on the whole `train` section).
BEFORE = "c72b6c6"
UPSTREAM = ("prepare", "landmarks", "aumaps")


def sh(cmd: list[str], cwd: Path) -> str:
    """Run a command in the clone; raise with its output on failure."""
    env = {**os.environ, "PYTHONPATH": str(cwd), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for who in ("AUTHOR", "COMMITTER"):
        env.setdefault(f"GIT_{who}_NAME", "bench")
        env.setdefault(f"GIT_{who}_EMAIL", "bench@example.com")
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res.stdout


def export(rev: str, dest: Path) -> Path:
    """The files of commit `rev` (git archive) as a fresh git repo."""
    tar = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True).stdout
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        t.extractall(dest, filter="data")
    sh(["git", "init", "-q"], dest)
    sh(["git", "add", "-A"], dest)
    sh(["git", "commit", "-q", "-m", rev], dest)
    return dest


def timed_repro(repo: Path) -> tuple[float, dict[str, float]]:
    """Wall seconds of `dvc repro` and the span of each stage it ran, from its streamed output."""
    env = {**os.environ, "PYTHONPATH": str(repo), "PYTHONUNBUFFERED": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(["dvc", "repro"], cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    spans: dict[str, float] = {}
    current, started = None, 0.0
    assert proc.stdout is not None
    for line in proc.stdout:
        now = time.perf_counter()
        if line.startswith("Running stage '"):
            if current:
                spans[current] = now - started
            current, started = line.split("'")[1], now
    if proc.wait():
        raise RuntimeError("dvc repro failed")
    end = time.perf_counter()
    if current:
        spans[current] = end - started
    return end - t0, spans


def lambda_change(repo: Path, tiny: dict[str, object]) -> tuple[float, dict[str, float]]:
    """First repro at `tiny`, commit, then λ 4 -> 2: the second repro's wall time and stage spans."""
    set_params(repo, tiny)
    first, spans = timed_repro(repo)
    print(f"  first repro: {first:.1f} s, stages {', '.join(f'{k} {v:.1f}s' for k, v in spans.items())}")
    sh(["git", "add", "-A"], repo)
    sh(["git", "commit", "-q", "-m", "baseline"], repo)
    set_params(repo, {"train.lambda": 2.0})
    return timed_repro(repo)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--n", type=int, default=140)
    ap.add_argument("--before", default=BEFORE, help="commit of the old layout to compare with")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    tiny = {"synthetic.n": args.n, "synthetic.size": 64, "train.input_size": 64, "train.epochs": args.epochs,
            "train.batch_size": 16, "aumaps.n_jobs": 1, "landmarks.n_jobs": 1}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, make in (("before", lambda d: export(args.before, d)), ("now", make_clone)):
            print(f"{label}:")
            repo = make(Path(tmp) / label)
            wall, spans = lambda_change(repo, tiny)
            trains = sum(v for k, v in spans.items() if k.split("@")[0] in ("train", "train-baseline"))
            results[label] = wall
            results[f"{label} train"] = trains
            upstream = sorted(set(spans) & set(UPSTREAM))
            work = sum(v for k, v in spans.items() if k.split("@")[0] in ("train", "train-baseline", "evaluate"))
            staged = ", ".join(f"{k} {v:.1f}s" for k, v in spans.items())
            print(f"  after train.lambda 4 -> 2: {wall:.1f} s; stages run: {staged}")
            print(f"  upstream rerun: {upstream or 'none'}; train + evaluate {work:.1f} s, DVC and report {wall - work:.1f} s")
    print(f"λ-change repro, now / before: training {results['now train']:.1f} / {results['before train']:.1f} s = "
          f"{results['now train'] / results['before train']:.2f} (target 0.5: one model instead of two); wall "
          f"{results['now']:.1f} / {results['before']:.1f} s = {results['now'] / results['before']:.2f} (evaluation and report "
          "are the same work in both: their share sets how close the wall ratio comes to 0.5)")
    print(f"machine after: {machine()}")


if __name__ == "__main__":
    main()
