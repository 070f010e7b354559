"""Which pretraining stands in for ImageNet: the λ = 0 demo run trained from scratch and from each `pretrain.task`,
over several training seeds, side by side (test CL, CAM-COS, ATT-COS: mean ± sd over seeds), with each task's cost.

    python benchmarks/pretrain_tasks.py [--tasks none rotation expression] [--seeds 0 1 2] [--lam 0] [--epochs 6]

Runs in this checkout on the demo's data (`dvc repro aumaps` first): params.yaml's `train` and `pretrain` sections,
the manifest and the AU-map store. Trains in process, writes nothing tracked (models under --workdir).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

from fer_pipeline.core.numerics import stage_environment

os.environ.update(stage_environment())

import numpy as np  # noqa: E402
import torch  # noqa: E402

from fer_pipeline.align.store import stage_inputs  # noqa: E402
from fer_pipeline.align.warp import augment_border  # noqa: E402
from fer_pipeline.core import paths  # noqa: E402
from fer_pipeline.core.io import load_params  # noqa: E402
from fer_pipeline.data.datasets import image_root  # noqa: E402
from fer_pipeline.data.manifest import read_manifest  # noqa: E402
from fer_pipeline.evaluate.run import evaluate_model  # noqa: E402
from fer_pipeline.train.loop import train_model  # noqa: E402
from fer_pipeline.train.pretrain import PretrainConfig, pretrain_backbone  # noqa: E402
from fer_pipeline.validate import check_stage  # noqa: E402


def sd(a: np.ndarray) -> float:
    """Sample standard deviation (NaN for one value)."""
    return float(a.std(ddof=1)) if len(a) > 1 else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", nargs="+", default=["none", "rotation", "expression"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--lam", type=float, default=0.0)
    ap.add_argument("--epochs", type=int, default=0, help="train.epochs of the runs (0: params.yaml's)")
    ap.add_argument("--pretrain-epochs", type=int, default=0, help="pretrain.epochs (0: params.yaml's)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/pretrain-tasks"))
    args = ap.parse_args()
    params = load_params()
    dataset = params["data"]["dataset"]
    cfg, options = check_stage("train", {**params, "train": {**params["train"], "pretrained": "none"}}, method="cam")
    if args.epochs:
        cfg = dataclasses.replace(cfg, epochs=args.epochs)
    alignment, faces, _ = stage_inputs(params["align"], dataset)
    manifest = read_manifest(paths.manifest_path(dataset))
    rows, out = [], {}
    for task in args.tasks:
        weights, cost, acc = "none", 0.0, float("nan")
        if task != "none":
            pcfg = PretrainConfig.from_params({**(params.get("pretrain") or {}), "task": task})
            if args.pretrain_epochs:
                pcfg = dataclasses.replace(pcfg, epochs=args.pretrain_epochs)
            t0 = time.perf_counter()
            state, summary = pretrain_backbone(pcfg, cfg)
            cost, acc = time.perf_counter() - t0, summary["held_out_acc"]
            weights = str(args.workdir / f"pretrain-{task}.pt")
            args.workdir.mkdir(parents=True, exist_ok=True)
            torch.save({"state_dict": state}, weights)
        per_seed = []
        for seed in args.seeds:
            run_cfg = dataclasses.replace(cfg, pretrained=weights, seed=seed)
            model = args.workdir / f"{task}-s{seed}-lam{args.lam:g}.pt"
            t0 = time.perf_counter()
            train_model(run_cfg, lam=args.lam, manifest=manifest, image_root=image_root(params["data"]),
                        aumap_path=paths.aumap_store(dataset), model_out=model, live_dir=None, model_kwargs=options,
                        faces_path=faces, alignment=alignment.to_dict(), augment_border=augment_border(params["align"]))
            train_s = time.perf_counter() - t0
            m = evaluate_model(model, manifest=manifest, image_root=image_root(params["data"]),
                               aumap_path=paths.aumap_store(dataset), faces_path=faces).metrics
            per_seed.append({"seed": seed, "cl": m["cl"], "cam_cos": m["cam_cos"], "att_cos": m["att_cos"], "train_s": train_s})
            print(f"RESULT task={task} seed={seed} lam={args.lam:g}: CL {m['cl']:.2f} CAM-COS {m['cam_cos']:.4f} "
                  f"ATT-COS {m['att_cos']:.4f} ({train_s:.0f} s)", flush=True)
        out[task] = {"pretrain_s": cost, "pretrain_acc": acc, "runs": per_seed}
        cl = np.array([r["cl"] for r in per_seed])
        cam = np.array([r["cam_cos"] for r in per_seed])
        rows.append(f"| {task} | {cost:.0f} s | {acc:.1f} | {cl.mean():.2f} ± {sd(cl):.2f} | {cl.min():.2f}–{cl.max():.2f} | "
                    f"{cam.mean():.4f} ± {sd(cam):.4f} |")
    print(f"\nλ = {args.lam:g}, seeds {args.seeds}, {cfg.epochs} epochs\n")
    print("| pretraining | cost | task acc (held out) | CL mean ± sd | CL min–max | CAM-COS mean ± sd |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    (args.workdir / "results.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    sys.exit(main())
