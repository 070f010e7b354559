"""Alignment overhead: one training step with λ > 0 vs λ = 0 (same model, same batch, steps interleaved). Target ≤ 1.03.

    python benchmarks/align_overhead.py [--repeats 8] [--size 112] [--batch 32] [--layers 5]
"""

from __future__ import annotations

import argparse
import statistics

import torch
from common import fmt, interleaved, machine, paired, summary

from fer_pipeline.core.train_config import TrainConfig
from fer_pipeline.models import ModelOutput, create_model
from fer_pipeline.models.loss import guided_loss
from fer_pipeline.train.epoch import make_optimizer, set_cpu_threads


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=8)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--layers", default="5", help="comma-separated layers the loss aligns, e.g. 5 or 5,4")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    layers = tuple(int(v) for v in args.layers.split(","))
    print(f"machine: {machine()}")
    set_cpu_threads(args.threads)
    torch.manual_seed(0)
    model = create_model("cam", backbone="resnet18", output_stride=16).to(memory_format=torch.channels_last)
    opt = make_optimizer(TrainConfig(), model)
    x = torch.randn(args.batch, 3, args.size, args.size).contiguous(memory_format=torch.channels_last)
    y = torch.arange(args.batch) % 7
    au = torch.rand(args.batch, args.size, args.size)
    has_map = (y != 0).clone()  # neutral rows carry no map, as in real batches

    def step(lam: float) -> None:
        total, _, _ = guided_loss(model(x, layers=layers), y, au, has_map, lam, layers)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()

    model.train()
    step(4.0)
    step(0.0)  # warm-up both paths
    times = interleaved({"lambda=4": lambda: step(4.0), "lambda=0": lambda: step(0.0)}, args.repeats)
    med, low = summary(times, "lambda=4", "lambda=0")
    pair = paired(times, "lambda=4", "lambda=0")
    print(f"resnet18 os16, {args.size} px, batch {args.batch}, layers {layers}, {torch.get_num_threads()} threads")
    print(fmt(times))
    print(f"step time lambda>0 / lambda=0: medians {med:.3f}, minima {low:.3f}, paired median {pair:.3f}")

    # The term in isolation (noise-free in comparison): what lambda > 0 adds is this forward + backward on the features.
    with torch.no_grad():
        feats = {v: f.detach() for v, f in model(x, layers=layers).features.items()}
    logits = torch.zeros(args.batch, 7, requires_grad=True)

    def term(lam: float) -> None:
        out = ModelOutput(logits=logits, features={v: f.clone().requires_grad_(True) for v, f in feats.items()}, cams=logits)
        total, _, _ = guided_loss(out, y, au, has_map, lam, layers)
        total.backward()

    alone = interleaved({"loss, lambda=4": lambda: term(4.0), "loss, lambda=0": lambda: term(0.0)}, 50)
    extra = statistics.median(alone["loss, lambda=4"]) - statistics.median(alone["loss, lambda=0"])
    step0 = statistics.median(times["lambda=0"])
    print(fmt(alone))
    print(f"alignment term alone adds {extra * 1e3:.2f} ms fwd+bwd = {extra / step0:.4f} of a lambda=0 step "
          f"-> predicted ratio {1 + extra / step0:.4f}")
    verdict = "met" if med <= 1.03 and 1 + extra / step0 <= 1.03 else "NOT met"
    print(f"target <= 1.03 (ratio of medians and the isolated term): {verdict}")
    print(f"machine after: {machine()}")


if __name__ == "__main__":
    main()
