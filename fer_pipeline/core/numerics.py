"""Portable CPU numerics: every kernel library capped at AVX2 and a fixed intra-op thread count, set before torch loads.

With `train.cpu_kernels: portable` (the default) the same commit gives the same `model.pt` and metrics bytes on every
x86-64 machine with AVX2, whatever its cores or vector units (docs/guides/reproducibility.md). The kernel libraries
read these variables once, when torch first uses them, so a stage script calls `stage_environment` before anything
imports torch. This module never imports torch.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

CPU_KERNELS = ("portable", "native")
#: The instruction-set caps (benchmarks/numerics_knobs.py measures each): ATen's own kernels, oneDNN (convolutions),
#: MKL (matrix products and vector math: its conditional-numerical-reproducibility COMPATIBLE code path, the one MKL
#: documents as giving the same results on Intel and non-Intel processors; its AVX2 path gave other bytes on AMD than
#: on Intel), and MKL's dispatch cap. docs/guides/reproducibility.md tabulates which changed the bytes.
PORTABLE_ISA: dict[str, str] = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_CBWR": "COMPATIBLE",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
}
KNOBS = tuple(PORTABLE_ISA)
#: Intra-op threads under portable kernels when `train.threads` is 0: the thread count changes the bytes (reductions
#: split per thread), so portable fixes it; 2 is the count the demo's committed numbers are made with.
PORTABLE_THREADS = 2
#: CPU flags that pick kernel code paths (printed when bytes differ).
FLAGS = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "amx_tile")
X86_64 = ("x86_64", "amd64")


def is_x86_64() -> bool:
    """True on x86-64, where the caps apply (elsewhere portable fixes the thread count only)."""
    return platform.machine().lower() in X86_64


def parse_mode(value: Any) -> str:
    """`train.cpu_kernels` checked: portable | native."""
    mode = str(value).strip().lower()
    if mode not in CPU_KERNELS:
        raise ValueError(f"train.cpu_kernels={value!r} unknown; valid: {', '.join(CPU_KERNELS)}")
    return mode


def intra_op_threads(mode: str, threads: int) -> int:
    """The intra-op thread count: `threads` when set; else `PORTABLE_THREADS` under portable, 0 (the cores) under native."""
    if int(threads) < 0:
        raise ValueError(f"train.threads={threads} must be >= 0")
    return int(threads) or (PORTABLE_THREADS if parse_mode(mode) == "portable" else 0)


def cpu_environment(mode: str, threads: int = 0) -> dict[str, str]:
    """Variables that realise `mode`: the AVX2 caps (portable, x86-64) and OMP_NUM_THREADS when the count is fixed.
    Native sets no cap: the libraries dispatch on the CPU (caps exported by the caller's shell stay theirs)."""
    env = dict(PORTABLE_ISA) if parse_mode(mode) == "portable" and is_x86_64() else {}
    count = intra_op_threads(mode, threads)
    if count:
        env["OMP_NUM_THREADS"] = str(count)
    return env


def stage_environment(params_path: str | Path = "params.yaml", environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """What a torch stage sets before torch loads: `train.cpu_kernels` / `train.threads` of params.yaml as
    `cpu_environment`, and idle OpenMP threads sleeping (PASSIVE) unless the caller chose a policy (0.59x the step time
    with 4 other processes on 2 cores, BENCHMARKS.md "Training step"). No params file: the defaults (portable)."""
    environ = os.environ if environ is None else environ
    train: Mapping[str, Any] = {}
    path = Path(params_path)
    if path.is_file():
        train = (yaml.safe_load(path.read_text()) or {}).get("train") or {}
    try:
        env = cpu_environment(train.get("cpu_kernels", "portable"), int(float(train.get("threads", 0) or 0)))
    except ValueError as e:
        raise SystemExit(f"{path}: {e}") from None
    return {"OMP_WAIT_POLICY": environ.get("OMP_WAIT_POLICY", "PASSIVE"), **env}


def cpu_model_and_flags() -> tuple[str, list[str]]:
    """(CPU model name, the `FLAGS` this CPU has) from /proc/cpuinfo; the platform's name and [] elsewhere."""
    model, flags = platform.processor() or platform.machine(), []
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return model, flags
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            model = value.strip()
        elif key.strip() == "flags":
            have = set(value.split())
            flags = [f for f in FLAGS if f in have]
            break
    return model, flags


def cpu_report() -> str:
    """CPU model and vector-unit flags, the knobs of this process, and torch's kernel capability when torch is loaded."""
    model, flags = cpu_model_and_flags()
    knobs = ", ".join(f"{k}={os.environ.get(k, '(unset)')}" for k in (*KNOBS, "OMP_NUM_THREADS"))
    lines = [f"CPU: {model} ({platform.machine()}); flags: {' '.join(flags) or '(none read)'}", f"knobs: {knobs}"]
    torch = sys.modules.get("torch")
    if torch is not None:
        lines.append(f"torch {torch.__version__}: capability {torch.backends.cpu.get_cpu_capability()}, "
                     f"{torch.get_num_threads()} intra-op threads")
    return "\n".join(lines)


def check_cpu_kernels(mode: str) -> None:
    """Under portable kernels on x86-64, fail unless the caps were set before torch loaded (else the bytes would hang on
    this CPU's vector units while params.yaml says portable)."""
    if parse_mode(mode) != "portable" or not is_x86_64():
        return
    wrong = {k: os.environ.get(k) for k, v in PORTABLE_ISA.items() if os.environ.get(k) != v}
    torch = sys.modules.get("torch")
    capability = torch.backends.cpu.get_cpu_capability() if torch is not None else "AVX2"
    if wrong or capability not in ("AVX2", "DEFAULT"):
        raise RuntimeError(
            f"train.cpu_kernels=portable, but this process runs uncapped kernels ({wrong or capability}): set the "
            f"environment of fer_pipeline.core.numerics.cpu_environment before torch is imported (the stage scripts "
            f"do), or choose train.cpu_kernels: native\n{cpu_report()}"
        )
