"""Stage `evaluate@<method>-<noaus|aus>`: CL, CAM-COS, ATT-COS on the test split."""

import os
import sys

# Before torch loads OpenMP: idle OpenMP threads sleep instead of spinning, which matters when the cores are shared
# (0.59x the step time with 4 other processes on 2 cores, BENCHMARKS.md "Training step").
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from fer_pipeline.core import paths
from fer_pipeline.core.io import load_params
from fer_pipeline.data.datasets import image_root
from fer_pipeline.data.manifest import read_manifest
from fer_pipeline.evaluate.run import evaluate_model, write_outputs
from fer_pipeline.report.tables import run_name


def main(method: str, aus: str) -> None:
    params = load_params()
    dataset = params["data"]["dataset"]
    run = run_name(method, aus)
    result = evaluate_model(
        paths.model_path(run),
        manifest=read_manifest(paths.manifest_path(dataset)),
        image_root=image_root(params["data"]),
        aumap_path=paths.aumap_store(dataset),
        batch_size=int(params["evaluate"]["batch_size"]),
        device=str(params["train"].get("device", "auto")),
    )
    write_outputs(result, paths.metrics_path(run), paths.plots_dir(run))
    m = result.metrics
    scores = f"CL {m['cl']:.2f}  CAM-COS {m['cam_cos']:.3f}  ATT-COS {m['att_cos']:.3f}"
    print(f"evaluate {run}: {scores} -> {paths.metrics_path(run)}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
