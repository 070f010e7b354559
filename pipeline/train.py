"""Stages `train-baseline@<method>` (λ = 0, no AUs: `<method> noaus`) and `train@<method>` (`train.lambda`, with AUs:
`<method> aus`): train one model. Post-hoc methods (GradCAM & co.) have no training: their evaluation reads the
model of the method they train as. A third argument (`train-seeds`, `train-baseline-seeds`) trains the run with that
seed of `report.extra_seeds` into models/<run>/seed<s>/model.pt."""

import dataclasses
import os
import sys

from fer_pipeline.core.numerics import stage_environment

# Before torch loads: train.cpu_kernels (portable: kernels capped at AVX2), train.threads, idle OpenMP threads asleep.
os.environ.update(stage_environment())

from fer_pipeline.align.store import stage_inputs
from fer_pipeline.align.warp import augment_border
from fer_pipeline.core import paths
from fer_pipeline.core.io import load_params
from fer_pipeline.data.datasets import image_root
from fer_pipeline.data.manifest import read_manifest
from fer_pipeline.landmarks.summary import describe_skipped, skip_unusable_images
from fer_pipeline.models import is_posthoc, trained_method
from fer_pipeline.report.tables import AUS, run_name
from fer_pipeline.train.loop import train_model
from fer_pipeline.validate import check_stage, run_stage, stage_args, usage_error

USAGE = "METHOD noaus|aus [SEED]"


def main(method: str, aus: str, seed: str | None = None) -> None:
    if aus not in AUS:
        usage_error("train", USAGE, f"second argument must be one of {', '.join(AUS)}, got {aus!r}")
    if is_posthoc(method):
        raise ValueError(
            f"{method} is post hoc: it reads out the {trained_method(method)} model and trains nothing; "
            f"list it under report.posthoc (not report.methods) in params.yaml"
        )
    params = load_params()
    dataset = params["data"]["dataset"]
    cfg, options = check_stage("train", params, method=method)  # methods.<method> overrides train.*
    run = run_name(method, aus)
    model_out, live, ckpt = paths.model_path(run), paths.live_dir(run), paths.checkpoint_dir(run)
    if seed is not None:  # an extra seed: the run's settings, its own seed and folders
        if int(seed) == cfg.seed:  # reads train.seed only: the seed stages do not list report.extra_seeds
            raise ValueError(f"train: seed {seed} is train.seed, whose model is {model_out}; list other seeds in "
                             f"params.yaml report.extra_seeds")
        cfg = dataclasses.replace(cfg, seed=int(seed))
        model_out, live = paths.seed_model_path(run, int(seed)), paths.live_dir(paths.seed_run(run, int(seed)))
        ckpt = paths.checkpoint_dir(paths.seed_run(run, int(seed)))
    alignment, faces, points = stage_inputs(params["align"], dataset)  # align.mode none: faces None, the image files
    manifest, skipped = skip_unusable_images(read_manifest(paths.manifest_path(dataset)), points)
    print(describe_skipped(skipped, f"train {run}", splits=("train", "val")))
    summary = train_model(
        cfg,
        lam=cfg.lam if aus == "aus" else 0.0,
        manifest=manifest,
        image_root=image_root(params["data"]),
        aumap_path=paths.aumap_store(dataset) if aus == "aus" else None,  # the baseline reads no AU maps
        model_out=model_out,
        live_dir=live,
        checkpoint_dir=ckpt,
        model_kwargs=options,
        faces_path=faces,
        alignment=alignment.to_dict(),
        augment_border=augment_border(params["align"]),  # align.border, in every align.mode
    )
    if os.environ.get("RANK", "0") == "0":  # under torchrun every rank returns; rank 0 wrote the model
        print(f"train {run} (seed {cfg.seed}): {summary} -> {model_out}")


if __name__ == "__main__":
    run_stage("train", main, *stage_args("train", USAGE, sys.argv[1:], 2, 3))
