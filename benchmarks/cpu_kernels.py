"""What portable CPU kernels cost: train step and evaluation forward pass, portable ÷ native, at the demo's settings.

Each setting runs in its own child process (the kernel libraries read their caps once, when torch loads); the settings
alternate round after round and each round's ratio pairs two children that ran back to back. Both use the same
thread count (portable's fixed count), so the ratio is the instruction-set caps alone.

    python benchmarks/cpu_kernels.py [--rounds 3] [--steps 6]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from common import machine
from numerics_knobs import ROOT, demo_setup, train_step

from fer_pipeline.core.numerics import KNOBS, PORTABLE_THREADS, cpu_environment


def child(steps: int, eval_batch: int) -> dict[str, float]:
    """Median seconds of a demo train step and of an evaluation forward pass (every layer's maps, no gradient)."""
    import torch

    cfg, model, opt, batch = demo_setup()
    x = torch.randn(eval_batch, *batch[0].shape[1:]).contiguous(memory_format=torch.channels_last)

    def step() -> None:
        train_step(cfg, model, opt, batch)

    def forward() -> None:
        model.eval()
        with torch.no_grad():
            model(x, layers=(1, 2, 3, 4, 5))

    step(), forward()  # warm-up: oneDNN primitive creation, allocator
    out: dict[str, list[float]] = {"train step": [], "eval forward": [], "train step cpu": [], "eval forward cpu": []}
    for _ in range(steps):  # alternated; wall and CPU seconds (the CPU time of this process is less hit by other load)
        for name, fn in (("train step", step), ("eval forward", forward)):
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            out[name].append(time.perf_counter() - wall)
            out[f"{name} cpu"].append(time.process_time() - cpu)
    return {k: statistics.median(v) for k, v in out.items()} | {"capability": torch.backends.cpu.get_cpu_capability()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--eval-batch", type=int, default=64, help="evaluate.batch_size of params.yaml")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print("RESULT", json.dumps(child(args.steps, args.eval_batch)))
        return
    print(f"machine: {machine()}")
    clean = {k: v for k, v in os.environ.items() if k not in (*KNOBS, "OMP_NUM_THREADS")}
    variants = {"portable": cpu_environment("portable"), "native": cpu_environment("native", PORTABLE_THREADS)}
    rows: dict[str, list[dict[str, float]]] = {k: [] for k in variants}
    for _ in range(args.rounds):
        for name, env in variants.items():
            cmd = [sys.executable, __file__, "--child", "--steps", str(args.steps), "--eval-batch", str(args.eval_batch)]
            res = subprocess.run(cmd, env={**clean, **env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, check=True)
            rows[name].append(json.loads(next(x for x in res.stdout.splitlines() if x.startswith("RESULT")).split(" ", 1)[1]))
    print(f"demo model (params.yaml train), {PORTABLE_THREADS} threads, medians of {args.steps} per child, {args.rounds} rounds:")
    for name, rs in rows.items():
        med = {k: statistics.median(r[k] for r in rs) * 1e3 for k in rs[0] if k != "capability"}
        print(f"  {name:<9} ({rs[0]['capability']}): train step {med['train step']:7.1f} ms (CPU {med['train step cpu']:7.1f} ms)"
              f"   eval forward, batch {args.eval_batch}: {med['eval forward']:7.1f} ms (CPU {med['eval forward cpu']:7.1f} ms)")
    for key in ("train step", "eval forward", "train step cpu", "eval forward cpu"):
        pairs = [p[key] / n[key] for p, n in zip(rows["portable"], rows["native"], strict=True)]
        what = f"{key.removesuffix(' cpu')}, {'CPU' if key.endswith('cpu') else 'wall'} time"
        print(f"  {what}, portable / native: {statistics.median(pairs):.3f}  (rounds: {', '.join(f'{r:.3f}' for r in pairs)})")
    print(f"machine after: {machine()}")


if __name__ == "__main__":
    main()
