"""`dvc repro` after a λ change, in a temporary clone with tiny params: no upstream stage may rerun, and the repro's
wall time must stay ≤ the train + evaluate time it ran + 5 s (DVC's own hashing, status and lock files, and `report`).

Each stage's span is taken from the repro's own output, stamped line by line as it streams ("Running stage 'x'" to
the next stage or the end).

    python benchmarks/repro_lambda.py [--epochs 1] [--n 140]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from common import ROOT, machine

UPSTREAM = ("prepare", "landmarks", "aumaps")
OUTPUTS = ("data/prepared", "data/landmarks", "data/aumaps", "models/")


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


def clone(dest: Path) -> Path:
    """Tracked and untracked-not-ignored files of this checkout (no outputs) as a fresh git repo."""
    files = sh(["git", "ls-files", "-co", "--exclude-standard", "-z"], ROOT).split("\0")
    for rel in filter(None, files):
        if (ROOT / rel).is_file() and not rel.startswith(OUTPUTS):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    sh(["git", "init", "-q"], dest)
    sh(["git", "add", "-A"], dest)
    sh(["git", "commit", "-q", "-m", "clone"], dest)
    return dest


def set_params(repo: Path, updates: dict[str, object]) -> None:
    """Dotted keys into the clone's params.yaml."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for key, value in updates.items():
        *parents, leaf = key.split(".")
        node = params
        for p in parents:
            node = node[p]
        node[leaf] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--n", type=int, default=140)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    tiny = {"synthetic.n": args.n, "synthetic.size": 64, "train.input_size": 64, "train.epochs": args.epochs,
            "train.batch_size": 16, "aumaps.n_jobs": 1, "landmarks.n_jobs": 1}
    with tempfile.TemporaryDirectory() as tmp:
        repo = clone(Path(tmp) / "repo")
        set_params(repo, tiny)
        first, spans = timed_repro(repo)
        print(f"first repro: {first:.1f} s, stages {', '.join(f'{k} {v:.1f}s' for k, v in spans.items())}")
        sh(["git", "add", "-A"], repo)
        sh(["git", "commit", "-q", "-m", "baseline"], repo)
        set_params(repo, {"train.lambda": 2.0})
        wall, spans = timed_repro(repo)
    upstream = sorted(set(spans) & set(UPSTREAM))
    work = sum(v for k, v in spans.items() if k.split("@")[0] in ("train", "evaluate"))
    print(f"after train.lambda 4 -> 2: stages run: {', '.join(f'{k} {v:.1f}s' for k, v in spans.items())}")
    print(f"  upstream stages rerun: {upstream or 'none'}  (target none: {'met' if not upstream else 'NOT met'})")
    over = wall - work
    print(f"  dvc repro wall {wall:.1f} s = train + evaluate {work:.1f} s + {over:.1f} s "
          f"(DVC itself, report)  (target <= +5 s: {'met' if over <= 5 else 'NOT met'})")
    print(f"machine after: {machine()}")


if __name__ == "__main__":
    main()
