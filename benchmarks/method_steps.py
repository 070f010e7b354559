"""Training-step cost of each trained method relative to CAM, and the projected time of a preset's trainings.

    python benchmarks/method_steps.py [--preset params-table1-cpu.yaml] [--repeats 5] [--cam-step 0.33]

Each method is built as its train stage builds it (params.yaml overlaid by the preset, `methods.<m>` over `train.*`)
and one training step (mix_batch, forward, CE + λ·alignment, extra_loss, backward, optimizer step) on a random batch
of the preset's batch size and input size is timed, methods interleaved so load drifts hit all alike. A method's
projected training time = its step ratio to CAM × `--cam-step` (seconds a CAM step takes in the real loop, data and
validation included; 0.33 s is BENCHMARKS.md "Demo budget", measured idle) × its steps (epochs × train rows / batch).
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path

import torch
import yaml
from common import ROOT, interleaved, machine

from fer_pipeline.core.presets import flatten
from fer_pipeline.core.train_config import TrainConfig, method_params
from fer_pipeline.models import create_model
from fer_pipeline.models.loss import guided_loss
from fer_pipeline.train.epoch import make_optimizer, set_cpu_threads


def merged(params: Path, preset: Path | None) -> dict:
    """params.yaml with the preset's keys set over it (the same result `dvc exp run -S` flags give)."""
    tree = yaml.safe_load(params.read_text())
    if preset is None:
        return tree
    for key, value in flatten(yaml.safe_load(preset.read_text())).items():
        node = tree
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return tree


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="", help="overlay of params.yaml (e.g. params-table1-cpu.yaml); none: params.yaml")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cam-step", type=float, default=0.33, help="seconds a CAM step takes in the real loop (idle)")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    tree = merged(ROOT / "params.yaml", ROOT / args.preset if args.preset else None)
    methods = list(tree["report"]["methods"])
    n = int(tree["synthetic"]["n"])
    train_rows = round(n * (1 - tree["data"]["test_fraction"]) * (1 - tree["data"]["val_fraction"]))
    print(f"machine: {machine()}")
    set_cpu_threads(args.threads)
    steps, info = {}, {}
    for method in dict.fromkeys(["cam", *methods]):
        train, options = method_params(tree["train"], tree.get("methods"), method)
        cfg = TrainConfig.from_params({**train, "method": method})
        torch.manual_seed(0)
        model = create_model(
            method, backbone=cfg.backbone, output_stride=cfg.output_stride, input_size=cfg.input_size, **options
        ).train()
        opt = make_optimizer(cfg, model)
        x = torch.randn(cfg.batch_size, 3, cfg.input_size, cfg.input_size)
        y = torch.arange(cfg.batch_size) % 7
        au, has = torch.rand(cfg.batch_size, 56, 56), y != 0

        def step(model=model, opt=opt, x=x, y=y, au=au, has=has, cfg=cfg) -> None:
            xm, aum, hm, ym = model.mix_batch(x, au, has, y)
            out = model(xm, layers=cfg.layers)
            loss = guided_loss(out, ym, aum, hm, cfg.lam, cfg.layers)[0]
            extra = model.extra_loss(out, ym)
            (loss if extra is None else loss + extra).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        step()  # warm-up (allocations, oneDNN primitives)
        steps[method] = step
        info[method] = (cfg.epochs, math.ceil(train_rows / cfg.batch_size), cfg.batch_size)
    times = interleaved(steps, args.repeats)
    cam = statistics.median(times["cam"])
    total = 0.0
    print(f"{'method':<10} {'median ms':>10} {'÷ cam':>7} {'epochs':>7} {'steps':>6} {'projected s (2 runs)':>21}")
    for method in methods:
        ratio = statistics.median(times[method]) / cam
        epochs, per_epoch, _ = info[method]
        projected = 2 * ratio * args.cam_step * epochs * per_epoch  # without and with AUs
        total += projected
        ms = statistics.median(times[method]) * 1e3
        print(f"{method:<10} {ms:10.1f} {ratio:7.2f} {epochs:7d} {epochs * per_epoch:6d} {projected:21.0f}")
    posthoc = tree["report"].get("posthoc", [])
    print(f"trainings of {len(methods)} methods x 2: projected {total / 60:.1f} min at {args.cam_step} s a CAM step; "
          f"post hoc (no training): {', '.join(posthoc) or 'none'}")


if __name__ == "__main__":
    main()
