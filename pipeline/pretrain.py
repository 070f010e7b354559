"""Stage `pretrain`: train the runs' backbone once on other synthetic faces (`pretrain.task`), the offline stand-in for
the paper's ImageNet weights, into models/pretrain/backbone.pt (what `train.pretrained` names) and summary.json."""

import os

from fer_pipeline.core.numerics import stage_environment

# Before torch loads: train.cpu_kernels (portable: kernels capped at AVX2), train.threads, idle OpenMP threads asleep.
os.environ.update(stage_environment())

import json

import torch

from fer_pipeline.core import paths
from fer_pipeline.core.io import load_params
from fer_pipeline.core.numerics import check_cpu_kernels, intra_op_threads
from fer_pipeline.core.train_config import TrainConfig
from fer_pipeline.train.epoch import set_cpu_threads
from fer_pipeline.train.pretrain import PretrainConfig, check_disjoint, pretrain_backbone
from fer_pipeline.validate import run_stage


def main() -> None:
    params = load_params()
    cfg = PretrainConfig.from_params(params.get("pretrain") or {})
    tcfg = TrainConfig.from_params(params["train"])  # cast and checked as the train stages do (backbone, size, kernels)
    check_disjoint(cfg, int(params["synthetic"]["seed"]), str(params["data"]["dataset"]))
    paths.PRETRAIN_DIR.mkdir(parents=True, exist_ok=True)  # DVC deleted the folder before the stage ran
    if cfg.task == "none":
        torch.save({"pretrain": {"task": "none"}}, paths.PRETRAIN_WEIGHTS)
        paths.PRETRAIN_SUMMARY.write_text(json.dumps({"task": "none"}, indent=2) + "\n")
        print(f"pretrain: task none, no weights -> {paths.PRETRAIN_WEIGHTS} (runs must not read it)")
        return
    check_cpu_kernels(tcfg.cpu_kernels)
    set_cpu_threads(intra_op_threads(tcfg.cpu_kernels, tcfg.threads))
    state, summary = pretrain_backbone(cfg, tcfg)
    torch.save({"state_dict": state, "pretrain": {k: summary[k] for k in ("task", "backbone", "input_size", "seed")}},
               paths.PRETRAIN_WEIGHTS)
    paths.PRETRAIN_SUMMARY.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    print(f"pretrain: {cfg.task} on {cfg.n} faces (seed {cfg.seed}), held-out acc {summary['held_out_acc']:.2f} "
          f"(chance {summary['chance_acc']:.1f}) -> {paths.PRETRAIN_WEIGHTS}")


if __name__ == "__main__":
    run_stage("pretrain", main)
