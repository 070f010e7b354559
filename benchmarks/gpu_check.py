"""GPU check in one command (≤ 8 minutes on one H200): the paper's setting, ResNet50 @ 224, CAM, layer 5, end to end.

Builds synthetic faces at 224 px on the machine's CPUs (prepare → landmarks → aumaps through the stages' own
functions and params.yaml settings), then measures, one guarded section after another:
  throughput        batch 32 and 128, λ = 0 and 4: images/s of the training loop on tensors already on the GPU vs
                    through the real loader (target ≥ 0.9), peak GPU memory, alignment overhead λ>0 ÷ λ=0;
  loader            images/s the loader alone delivers with 1..cores-1 workers at batch 128: how many feed the GPU;
  train, evaluate   a short real training through `train_model` (train.device: cuda, a few hundred steps) and
                    `evaluate_extended` on its model: the stage path proven end to end;
  precision_layout  bf16 / fp16 AMP / fp32 and channels_last on / off, images/s and peak memory;
  compile           torch.compile on / off, compile seconds.
A section that fails or runs past the time left is recorded with its error and the next one runs; a global
budget (--budget) keeps the whole run bounded. <out>/gpu_check.json and <out>/gpu_check.txt are rewritten after
every section, so a run cut short still leaves what it measured.

    python benchmarks/gpu_check.py --out DIR            # on a GPU: BENCHMARKS.md, "GPU", has the commands
    python benchmarks/gpu_check.py --out DIR --device cpu --size 64 ...   # the dry run of tests/test_gpu_check.py
"""

from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")  # before tqdm loads: no progress bars in the log
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the stage scripts (BENCHMARKS.md, "Training step")

import argparse
import gc
import math
import platform
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from common import machine
from gpu_measure import (
    DTYPES,
    Faces,
    build_faces,
    loader_rate,
    median_of,
    project_params,
    step_rate,
    synthetic_batches,
    train_loader,
)
from gpu_report import table, write

from fer_pipeline.core.train_config import TrainConfig
from fer_pipeline.evaluate.extended import evaluate_extended, write_extended
from fer_pipeline.models import FERModel, create_model
from fer_pipeline.train.epoch import amp_dtype
from fer_pipeline.train.loop import train_model

#: Share of the budget that must be left to start a section (the compile section compiles ResNet50 fwd + bwd).
NEED = {"dataset": 0.08, "throughput": 0.12, "loader": 0.05, "train": 0.08, "evaluate": 0.04, "precision_layout": 0.05,
        "compile": 0.25}
SECTIONS = ("environment", *NEED)


class SectionTimeout(Exception):
    """A section ran past the time left in the budget."""


def _alarm(signum: int, frame: Any) -> None:
    raise SectionTimeout("ran past the time left in the budget")


def guarded(fn: Callable[[], dict[str, Any]], limit: float) -> dict[str, Any]:
    """Run one section under a `limit`-second alarm: its results with ok and seconds, or its error and where; never raises."""
    t = time.perf_counter()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, max(limit, 0.001))
    try:
        out = {"ok": True, **fn()}
    except Exception as e:  # a failure is a record, and the next section runs
        out = {"ok": False, "error": f"{type(e).__name__}: {e}"[:2000], "where": traceback.format_exc()[-3000:]}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    out["seconds"] = time.perf_counter() - t
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return out


def ints(text: str) -> list[int]:
    """"32,128" → [32, 128]."""
    return [int(v) for v in str(text).split(",") if v.strip()]


class Check:
    """One run: the arguments, the device, the face set and what later sections reuse from earlier ones."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args, self.tmp = args, tmp
        self.device = torch.device(args.device)
        self.cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        self.workers = max(1, self.cores - 1) if args.workers == "auto" else int(args.workers)
        self.jobs = self.cores if args.jobs == "auto" else int(args.jobs)
        self.batches, self.lambdas = ints(args.batches), [float(v) for v in args.lambdas.split(",")]
        self.params = project_params()
        self.faces: Faces | None = None
        self.gpu_rate: float | None = None  # images/s of the step alone at the largest batch and λ (the loader's target)
        self.model_path: Path | None = None

    def cfg(self, **over: Any) -> TrainConfig:
        """params.yaml `train` with this run's model, size, device and loader settings."""
        a = self.args
        base = {"method": "cam", "backbone": a.backbone, "pretrained": "none", "output_stride": a.output_stride,
                "input_size": a.size, "layers": [a.layer], "device": a.device, "num_workers": self.workers, "amp": "auto",
                "compile": False, "resume": False, "cache_images": "auto", "threads": 0, "batch_size": self.batches[-1]}
        return TrainConfig.from_params({**self.params["train"], **base, **over})

    def model(self) -> FERModel:
        """A fresh CAM model on the device, channels_last (as `train_model` makes it)."""
        a = self.args
        m = create_model("cam", backbone=a.backbone, output_stride=a.output_stride, input_size=a.size)
        return m.to(self.device).to(memory_format=torch.channels_last)

    def need_faces(self) -> Faces:
        if self.faces is None:
            raise RuntimeError("no face set: the dataset section failed (see its error)")
        return self.faces

    # --- sections ---------------------------------------------------------------------------------------------
    def environment(self) -> dict[str, Any]:
        import timm

        d = self.device
        out: dict[str, Any] = {
            "machine": machine(), "cores": self.cores, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "timm": timm.__version__, "opencv": cv2.__version__, "device": str(d),
            "amp_auto": str(amp_dtype(d, "auto")), "loader_workers": self.workers, "data_processes": self.jobs,
        }
        if Path("/dev/shm").is_dir():  # loader workers hand batches over through it (~77 MB a batch of 128 at 224 px)
            st = os.statvfs("/dev/shm")
            out["shm_free_gib"] = st.f_bavail * st.f_frsize / 2**30
        if d.type == "cuda":
            props = torch.cuda.get_device_properties(d)
            out.update(gpu=props.name, capability=f"{props.major}.{props.minor}", gpu_memory_gib=props.total_memory / 2**30,
                       cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(), bf16=torch.cuda.is_bf16_supported())
            torch.backends.cudnn.benchmark = True  # as train_model sets it on CUDA
        return out

    def dataset(self) -> dict[str, Any]:
        self.faces, info = build_faces(self.tmp / "faces", self.args.n, self.args.size, self.jobs)
        return info

    def throughput(self) -> dict[str, Any]:
        a, d, faces = self.args, self.device, self.need_faces()
        model, dtype, rows = self.model(), amp_dtype(d, "auto"), []
        for b in self.batches:
            cfg = self.cfg(batch_size=b)
            dl, sampler = train_loader(faces, cfg, d, model.mean, model.std)
            fake = synthetic_batches(cfg, a.warmup + a.steps, d, torch.channels_last)
            sampler.set_epoch(0)
            next(iter(dl))  # starts the persistent workers
            runs: dict[tuple[float, str], list[dict[str, Any]]] = {}
            for r in range(a.rounds):
                for lam in self.lambdas:
                    runs.setdefault((lam, "synthetic"), []).append(
                        step_rate(model, fake, cfg, lam=lam, device=d, dtype=dtype, skip=a.warmup))
                    sampler.set_epoch(1 + r)
                    runs.setdefault((lam, "loader"), []).append(
                        step_rate(model, dl, cfg, lam=lam, device=d, dtype=dtype, skip=min(len(dl) // 2, cfg.num_workers)))
            del dl, sampler
            for lam in self.lambdas:
                syn, e2e = runs[(lam, "synthetic")], runs[(lam, "loader")]
                s, e = median_of(syn, "steady_images_per_s"), median_of(e2e, "images_per_s")
                peaks = [r["peak_memory_mib"] for r in syn + e2e if r["peak_memory_mib"] is not None]
                rows.append({
                    "batch": b, "lambda": lam, "synthetic_images_per_s": s, "end_to_end_images_per_s": e,
                    "end_to_end_steady_images_per_s": median_of(e2e, "steady_images_per_s"), "ratio": e / s,
                    "ratio_steady": median_of(e2e, "steady_images_per_s") / s, "target_met": e / s >= 0.9,
                    "peak_memory_mib": max(peaks) if peaks else None, "loss": median_of(syn + e2e, "loss"),
                    "end_to_end_steps": e2e[0]["steps"],
                })
            if b == self.batches[-1]:
                self.gpu_rate = rows[-1]["synthetic_images_per_s"]
        overhead = []
        lo, hi = self.lambdas[0], self.lambdas[-1]
        for b in self.batches:
            at = {r["lambda"]: r for r in rows if r["batch"] == b}
            syn, e2e = "synthetic_images_per_s", "end_to_end_images_per_s"
            overhead.append({"batch": b, "lambda": hi, "synthetic": at[lo][syn] / at[hi][syn],
                             "end_to_end": at[lo][e2e] / at[hi][e2e]})
        return {"workers": self.workers, "amp": str(dtype), "channels_last": True, "rows": rows, "align_overhead": overhead}

    def loader(self) -> dict[str, Any]:
        a, d, faces = self.args, self.device, self.need_faces()
        cfg = self.cfg(batch_size=self.batches[-1])
        model = self.model()
        if self.gpu_rate is None:  # the throughput section failed: measure the step alone here
            fake = synthetic_batches(cfg, a.warmup + a.steps, d, torch.channels_last)
            self.gpu_rate = step_rate(model, fake, cfg, lam=self.lambdas[-1], device=d, dtype=amp_dtype(d, "auto"),
                                      skip=a.warmup)["steady_images_per_s"]
        grid = ints(a.worker_grid) if a.worker_grid != "auto" else sorted(
            {w for w in (1, 2, 4, 6, 8, 12, 16, self.cores - 1) if 1 <= w <= max(1, self.cores - 1)})
        rows = [loader_rate(faces, cfg, w, d, model.mean, model.std) for w in grid]
        for r in rows:
            r["fed_ratio"] = r["steady_images_per_s"] / self.gpu_rate
        enough = [r["workers"] for r in rows if r["fed_ratio"] >= 1.0]
        return {"batch": cfg.batch_size, "gpu_images_per_s": self.gpu_rate, "rows": rows,
                "workers_to_feed_gpu": min(enough) if enough else None}

    def train(self) -> dict[str, Any]:
        a, faces = self.args, self.need_faces()
        cfg = self.cfg(batch_size=a.train_batch, epochs=a.train_epochs, **{"lambda": self.lambdas[-1]})
        self.model_path = self.tmp / "model" / "model.pt"
        summary = train_model(cfg, lam=cfg.lam, manifest=faces.manifest, image_root=faces.root, aumap_path=faces.aumaps,
                              model_out=self.model_path, live_dir=None, checkpoint_dir=self.tmp / "checkpoint",
                              model_kwargs=self.params["methods"].get("cam") or {})
        if not self.model_path.is_file():
            raise RuntimeError(f"train_model returned {summary} but wrote no model at {self.model_path}")
        steps = round(summary["steps_per_s"] * summary["train_seconds"])
        return {"device": cfg.device, "batch": cfg.batch_size, "epochs": cfg.epochs, "lambda": cfg.lam,
                "workers": cfg.num_workers, "steps": steps, "images_per_s": summary["steps_per_s"] * cfg.batch_size,
                **{k: summary[k] for k in ("best_epoch", "best_val_acc", "seconds", "train_seconds", "steps_per_s", "finished")}}

    def evaluate(self) -> dict[str, Any]:
        faces, e = self.need_faces(), self.params["evaluate"]
        if self.model_path is None or not self.model_path.is_file():
            raise RuntimeError("no model: the train section failed (see its error)")
        ext = evaluate_extended(self.model_path, manifest=faces.manifest, image_root=faces.root, aumap_path=faces.aumaps,
                                landmark_path=faces.landmarks, batch_size=int(e["batch_size"]), device=self.args.device,
                                faithfulness_n=self.args.faithfulness_n, deletion_steps=int(e["deletion_steps"]),
                                figure_samples=int(e["figure_samples"]))
        out = self.tmp / "evaluate"
        write_extended(ext, "gpu-check", metrics_path=out / "metrics.json", plots_dir=out / "plots", figures_dir=out / "figures")
        m = ext.result.metrics
        scalars = {k: v for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        undefined = sorted(k for k, v in scalars.items() if not math.isfinite(v))  # e.g. a cue share with no cue image
        return {"images": len(ext.result.y), **{k: v for k, v in scalars.items() if k not in undefined}, "undefined": undefined}

    def precision_layout(self) -> dict[str, Any]:
        a, d = self.args, self.device
        cfg, lam, model = self.cfg(batch_size=self.batches[-1]), self.lambdas[-1], self.model()
        variants = [("bf16", True), ("bf16", False), ("off", True), ("off", False), ("fp16", True)]
        runs: dict[tuple[str, bool], list[dict[str, Any]]] = {v: [] for v in variants}
        for _ in range(a.rounds):
            for amp, cl in variants:
                fmt = torch.channels_last if cl else torch.contiguous_format
                model.to(memory_format=fmt)
                fake = synthetic_batches(cfg, a.warmup + a.steps, d, fmt)
                runs[(amp, cl)].append(step_rate(model, fake, cfg, lam=lam, device=d, dtype=DTYPES[amp], fmt=fmt, skip=a.warmup))
        ref = median_of(runs[variants[0]], "steady_images_per_s")
        rows = []
        for (amp, cl), rs in runs.items():
            peaks = [r["peak_memory_mib"] for r in rs if r["peak_memory_mib"] is not None]
            rate = median_of(rs, "steady_images_per_s")
            rows.append({"amp": amp, "channels_last": cl, "images_per_s": rate, "vs_bf16_channels_last": rate / ref,
                         "peak_memory_mib": max(peaks) if peaks else None, "loss": median_of(rs, "loss")})
        default = f"{amp_dtype(d, 'auto')}, channels_last"
        return {"batch": cfg.batch_size, "lambda": lam, "training_default": default, "rows": rows}

    def compile(self) -> dict[str, Any]:
        a, d = self.args, self.device
        cfg, lam, model, dtype = self.cfg(batch_size=self.batches[-1]), self.lambdas[-1], self.model(), amp_dtype(d, "auto")
        fake = synthetic_batches(cfg, a.warmup + a.steps, d, torch.channels_last)
        compiled = torch.compile(model, backend=a.compile_backend)  # the same module: train_model's `train.compile`
        t = time.perf_counter()
        step_rate(compiled, fake[: a.warmup + 1], cfg, lam=lam, device=d, dtype=dtype)  # compiles forward and backward
        first = time.perf_counter() - t
        runs: dict[str, list[dict[str, Any]]] = {"eager": [], "compiled": []}
        for _ in range(a.rounds):
            for name, m in (("eager", model), ("compiled", compiled)):
                runs[name].append(step_rate(m, fake, cfg, lam=lam, device=d, dtype=dtype, skip=a.warmup))
        eager, comp = median_of(runs["eager"], "steady_images_per_s"), median_of(runs["compiled"], "steady_images_per_s")
        peaks = {k: [r["peak_memory_mib"] for r in v if r["peak_memory_mib"] is not None] for k, v in runs.items()}
        return {"backend": a.compile_backend, "batch": cfg.batch_size, "lambda": lam, "amp": str(dtype),
                "first_steps_s": first, "eager_images_per_s": eager, "compiled_images_per_s": comp, "speedup": comp / eager,
                "eager_loss": median_of(runs["eager"], "loss"), "compiled_loss": median_of(runs["compiled"], "loss"),
                "eager_peak_memory_mib": max(peaks["eager"]) if peaks["eager"] else None,
                "compiled_peak_memory_mib": max(peaks["compiled"]) if peaks["compiled"] else None}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for gpu_check.json and gpu_check.txt")
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--budget", type=float, default=450.0, help="seconds for all sections together")
    ap.add_argument("--backbone", default="resnet50")
    ap.add_argument("--output-stride", type=int, default=32, help="32: 7x7 layer-5 maps at 224 px (the paper's code: 8, 28x28)")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--n", type=int, default=12288, help="faces generated (about RAF-DB's 12,271 training images)")
    ap.add_argument("--batches", default="32,128")
    ap.add_argument("--lambdas", default="0,4")
    ap.add_argument("--layer", type=int, default=5)
    ap.add_argument("--steps", type=int, default=30, help="timed steps per synthetic-tensor measurement")
    ap.add_argument("--warmup", type=int, default=5, help="steps left out of each synthetic-tensor measurement")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved repeats of every variant (medians reported)")
    ap.add_argument("--workers", default="auto", help="loader workers (auto: cores - 1)")
    ap.add_argument("--worker-grid", default="auto", help="loader section, e.g. 1,2,4 (auto: 1..16 up to cores - 1)")
    ap.add_argument("--jobs", default="auto", help="processes building the faces (auto: every core)")
    ap.add_argument("--train-batch", type=int, default=64)
    ap.add_argument("--train-epochs", type=int, default=3)
    ap.add_argument("--faithfulness-n", type=int, default=128, help="test images scored by deletion in evaluate")
    ap.add_argument("--compile-backend", default="inductor", help="aot_eager in the CPU dry run (inductor on CPU takes minutes)")
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda but no CUDA GPU is visible (use --device cpu for the dry run)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    deadline = start + args.budget
    report: dict[str, Any] = {"command": sys.argv, "args": {k: str(v) for k, v in vars(args).items()},
                              "budget_s": args.budget, "elapsed_s": 0.0, "sections": {}}
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        check = Check(args, Path(tmp))
        for name in SECTIONS:
            left = deadline - time.perf_counter()
            need = NEED.get(name, 0.0) * args.budget
            if name in NEED and left < need:
                result = {"ok": False, "error": f"skipped: {left:.0f} s left of the budget, the section needs ~{need:.0f} s",
                          "seconds": 0.0}
            else:
                result = guarded(getattr(check, name), left if name in NEED else max(left, 10.0))
            report["sections"][name] = result
            report["elapsed_s"] = time.perf_counter() - start
            write(args.out, report)
            status = "ok" if result["ok"] else f"FAILED: {result['error']}"
            print(f"[{report['elapsed_s']:6.1f} s] {name}: {status}", flush=True)
    print(table(report), end="")
    return 0 if all(r["ok"] for r in report["sections"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
