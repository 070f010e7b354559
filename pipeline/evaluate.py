"""Stages `evaluate@<method>-<noaus|aus>` and `posthoc@<method>-<noaus|aus>`: CL, CAM-COS, ATT-COS, extra map metrics,
deletion, figures on the test split. A post-hoc method (GradCAM & co.) reads the model of the method it trains as.
`evaluate-x@<method>-<aus>-<name>` (a third argument) evaluates the same model on the extra test dataset `crossdata.<name>`."""

import os
import sys
from pathlib import Path

from fer_pipeline.core.numerics import stage_environment

# Before torch loads: train.cpu_kernels (portable: kernels capped at AVX2), train.threads, idle OpenMP threads asleep.
os.environ.update(stage_environment())

import pandas as pd

from fer_pipeline.align.store import stage_inputs
from fer_pipeline.core import paths
from fer_pipeline.core.crossdata import evaluated_rows, stage_params
from fer_pipeline.core.io import load_params, write_json
from fer_pipeline.core.numerics import check_cpu_kernels
from fer_pipeline.core.seeds import all_seeds
from fer_pipeline.data.datasets import image_root, synthetic_truth
from fer_pipeline.data.manifest import read_manifest
from fer_pipeline.evaluate.bootstrap import with_seed_mean
from fer_pipeline.evaluate.extended import evaluate_extended, write_extended
from fer_pipeline.evaluate.headline import headline
from fer_pipeline.evaluate.run import evaluate_model
from fer_pipeline.landmarks.summary import describe_skipped, skip_unusable_images
from fer_pipeline.models import trained_method
from fer_pipeline.report.tables import run_name
from fer_pipeline.validate import check_stage, run_stage, stage_args


def validation_metrics(model_path: Path, method: str, manifest: pd.DataFrame, params: dict, dataset: str,
                       faces: Path | None) -> dict:
    """Every metric of the model on the validation split (CL, F1, CAM-COS, ATT-COS; `n: 0` when it has none)."""
    if not (manifest["split"] == "val").any():
        print(f"evaluate: the manifest has no validation rows (data.val_fraction 0?); {model_path} gets n = 0 there")
        return {"n": 0}
    return evaluate_model(model_path, manifest=manifest, image_root=image_root(params["data"], dataset),
                          aumap_path=paths.aumap_store(dataset), split="val", batch_size=int(params["evaluate"]["batch_size"]),
                          device=str(params["train"].get("device", "auto")), method=method, faces_path=faces).metrics


def main(method: str, aus: str, *cross: str) -> None:
    params, dataset, name = stage_params(load_params(), cross)  # dataset: the storage key
    check_stage("evaluate", params)
    check_cpu_kernels(str(params["train"].get("cpu_kernels", "portable")))  # the training's kernels and threads
    p = params["evaluate"]
    model_path = paths.model_path(run_name(trained_method(method), aus))
    run = run_name(method, aus) if name is None else paths.cross_run(run_name(method, aus), name)
    manifest = read_manifest(paths.manifest_path(dataset))
    if name is not None:
        manifest = evaluated_rows(manifest, str(params["crossdata"][name].get("split", "test")))
    _, faces, points = stage_inputs(params["align"], dataset)  # align.mode none: faces None, the image files
    manifest, skipped = skip_unusable_images(manifest, points)
    print(describe_skipped(skipped, f"evaluate {run}", splits=("test",)))
    kwargs = dict(
        method=method,
        manifest=manifest,
        image_root=image_root(params["data"], dataset),
        aumap_path=paths.aumap_store(dataset),
        landmark_path=points,
        faces_path=faces,
        batch_size=int(p["batch_size"]),
        device=str(params["train"].get("device", "auto")),
        faithfulness_n=int(p.get("faithfulness_n", 128)),
        deletion_steps=int(p.get("deletion_steps", 8)),
        figure_samples=int(p.get("figure_samples", 1)),
        truth=synthetic_truth(str(params["data"]["dataset"]), dataset),
    )
    ext = evaluate_extended(model_path, **kwargs)
    ext.result.metrics["n_skipped_unusable_images"] = int((skipped["split"] == "test").sum())
    ext.result.metrics["model"] = str(model_path)
    # The main dataset: the validation split too (what ablations choose λ and layers on), and the extra seeds
    # (report.extra_seeds) of the model read (a post-hoc method's: the seeds of the method it trains as), each evaluated
    # like the first: the metrics files then hold the mean over seeds, and the bands count their spread.
    seeds = all_seeds(params) if name is None else []
    per_seed, val = {}, {}
    if name is None:
        val[seeds[0]] = validation_metrics(model_path, method, manifest, params, dataset, faces)
    for seed in seeds[1:]:
        seed_model = paths.seed_model_path(run_name(trained_method(method), aus), seed)
        per_seed[seed] = evaluate_extended(seed_model, **{**kwargs, "figure_samples": 0}).result.metrics
        val[seed] = validation_metrics(seed_model, method, manifest, params, dataset, faces)
    if per_seed:
        ext.result.metrics = with_seed_mean({seeds[0]: ext.result.metrics, **per_seed})
    write_extended(
        ext, run, metrics_path=paths.metrics_path(run), plots_dir=paths.plots_dir(run), figures_dir=paths.figures_dir(run)
    )
    if val:
        first = with_seed_mean(val) if len(val) > 1 else next(iter(val.values()))
        write_json(paths.val_metrics_path(run), headline(first), ndigits=4)
        print(f"evaluate {run} (validation, {len(val)} seed(s)): CL {first.get('cl', float('nan')):.2f} -> "
              f"{paths.val_metrics_path(run)}")
    m = ext.result.metrics
    scores = f"CL {m['cl']:.2f}  CAM-COS {m['cam_cos']:.3f}  ATT-COS {m['att_cos']:.3f}"
    extra = (
        f"pointing {m['cam_pointing']:.3f}  energy {m['cam_energy']:.3f}  deletion {m.get('deletion_score', float('nan')):.3f}"
    )
    if "active_cam_cos" in m:
        extra += f"  vs true active AUs: CAM-COS {m['active_cam_cos']:.3f} ATT-COS {m['active_att_cos']:.3f}"
        extra += f" att on absent AUs {m['att_absent_share']:.3f}"
    print(f"evaluate {run}: {scores}  {extra} -> {paths.metrics_path(run)}, {paths.figures_dir(run)}")


if __name__ == "__main__":
    run_stage("evaluate", main, *stage_args("evaluate", "METHOD noaus|aus [CROSSDATA_NAME]", sys.argv[1:], 2, 3))
