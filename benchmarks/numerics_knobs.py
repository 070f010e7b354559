"""Which CPU-kernel knobs make training bytes independent of the machine's vector units: 3 AdamW steps of the demo model.

Each variant runs in a fresh child process (the kernel libraries read their environment once, when torch loads) that
trains the demo model (train.* of params.yaml, the guided loss on layer 5) for 3 steps on one fixed batch and prints the
sha256 of the weights. Variants: native (nothing set), portable (every knob), and portable minus one knob each.

    python benchmarks/numerics_knobs.py [--steps 3] [--json]
    qemu-x86_64 -cpu EPYC-Rome "$(which python)" benchmarks/numerics_knobs.py   # an AVX2-only machine, emulated
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fer_pipeline.core.numerics import KNOBS, PORTABLE_ISA, cpu_report  # noqa: E402

#: Knobs a variant leaves out; "threads" is the intra-op thread count (portable: a fixed count; native: the cores).
LEAVE_OUT = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "threads")


def variants(threads: int) -> dict[str, dict[str, str]]:
    """Name -> environment additions (every variant but `native` fixes the thread count unless it leaves it out)."""
    full = {**PORTABLE_ISA, "OMP_NUM_THREADS": str(threads)}
    out = {"native": {}, "portable": full}
    for knob in LEAVE_OUT:
        name = "OMP_NUM_THREADS" if knob == "threads" else knob
        out[f"portable - {knob}"] = {k: v for k, v in full.items() if k != name}
    out["portable - both MKL knobs"] = {k: v for k, v in full.items() if not k.startswith("MKL_")}
    out["portable, ATen unvectorised (default)"] = {**full, "ATEN_CPU_CAPABILITY": "default"}
    out["portable, 1 thread"] = {**full, "OMP_NUM_THREADS": "1"}
    out["portable, MKL_CBWR=AVX2"] = {**full, "MKL_CBWR": "AVX2"}  # MKL's Intel-tuned path: AMD and Intel part here
    return out


def demo_setup() -> tuple[Any, Any, Any, tuple[Any, ...]]:
    """The demo's (TrainConfig, model in channels_last, AdamW, fixed batch (x, y, au, has)) from params.yaml, seeded."""
    import torch

    from fer_pipeline.core.io import load_params
    from fer_pipeline.core.labels import NUM_CLASSES
    from fer_pipeline.core.train_config import TrainConfig, method_params
    from fer_pipeline.models import create_model
    from fer_pipeline.train.epoch import make_optimizer, seed_everything

    params = load_params(ROOT / "params.yaml")
    method = str(params["report"]["methods"][0])  # the demo trains one method
    train, options = method_params(params["train"], params.get("methods"), method)
    cfg = TrainConfig.from_params({**train, "method": method, "device": "cpu"})
    if os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    seed_everything(cfg.seed)
    model = create_model(cfg.method, backbone=cfg.backbone, num_classes=NUM_CLASSES, output_stride=cfg.output_stride,
                         input_size=cfg.input_size, **options).to(memory_format=torch.channels_last)
    g = torch.Generator().manual_seed(0)
    n, s = cfg.batch_size, cfg.input_size
    x = torch.randn(n, 3, s, s, generator=g).contiguous(memory_format=torch.channels_last)
    batch = (x, torch.arange(n) % NUM_CLASSES, torch.rand(n, s, s, generator=g), torch.ones(n, dtype=torch.bool))
    return cfg, model, make_optimizer(cfg, model), batch


def train_step(cfg: Any, model: Any, opt: Any, batch: tuple[Any, ...]) -> None:
    """One guided AdamW step (CE + lambda * alignment on train.layers) on `batch`."""
    from fer_pipeline.models.loss import guided_loss

    x, y, au, has = batch
    model.train()
    total, _, _ = guided_loss(model(x, layers=tuple(cfg.layers)), y, au, has, cfg.lam, tuple(cfg.layers), cfg.align_loss)
    opt.zero_grad(set_to_none=True)
    total.backward()
    opt.step()


def child(steps: int) -> dict[str, object]:
    """In a fresh process: `steps` AdamW steps of the demo model on one fixed batch; sha256 of the weights."""
    import hashlib

    import torch

    cfg, model, opt, batch = demo_setup()
    for _ in range(steps):
        train_step(cfg, model, opt, batch)
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().contiguous().numpy().tobytes())
    return {"sha256": h.hexdigest(), "capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="the fixed intra-op thread count of the portable variants")
    ap.add_argument("--only", default="", help="run only the variants whose name contains this")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.steps)))
        return
    print(cpu_report())
    results: dict[str, dict[str, object]] = {}
    runner = [a for a in os.environ.get("FER_KNOBS_RUNNER", "").split() if a]  # e.g. "qemu-x86_64 -cpu EPYC-Rome"
    for name, env in variants(args.threads).items():
        if args.only not in name:
            continue
        clean = {k: v for k, v in os.environ.items() if k not in KNOBS and k != "OMP_NUM_THREADS"}
        cmd = [*runner, sys.executable, __file__, "--child", "--steps", str(args.steps)]
        res = subprocess.run(cmd, env={**clean, **env}, capture_output=True, text=True, check=False)
        if res.returncode:
            raise SystemExit(f"{name}: child failed ({res.returncode}):\n{res.stderr[-3000:]}")
        results[name] = json.loads(res.stdout.strip().splitlines()[-1])
        r = results[name]
        print(f"{name:36s} {r['sha256'][:16]}  capability {r['capability']:7s} threads {r['threads']}", flush=True)
    if args.json:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
