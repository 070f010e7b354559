"""Stage `evaluate@<method>-<noaus|aus>`: CL, CAM-COS, ATT-COS on the test split."""

import sys

from fer_pipeline.core import paths
from fer_pipeline.core.io import load_params
from fer_pipeline.data.datasets import image_root
from fer_pipeline.data.manifest import read_manifest
from fer_pipeline.evaluate.run import evaluate_model, write_outputs
from fer_pipeline.landmarks.summary import describe_skipped, skip_unusable_images
from fer_pipeline.report.tables import run_name
from fer_pipeline.validate import check_stage, run_stage


def main(method: str, aus: str) -> None:
    params = load_params()
    check_stage("evaluate", params)
    dataset = params["data"]["dataset"]
    run = run_name(method, aus)
    manifest, skipped = skip_unusable_images(read_manifest(paths.manifest_path(dataset)), paths.landmark_store(dataset))
    print(describe_skipped(skipped, f"evaluate {run}", splits=("test",)))
    result = evaluate_model(
        paths.model_path(run),
        manifest=manifest,
        image_root=image_root(params["data"]),
        aumap_path=paths.aumap_store(dataset),
        batch_size=int(params["evaluate"]["batch_size"]),
        device=str(params["train"].get("device", "auto")),
    )
    result.metrics["n_skipped_unusable_images"] = int((skipped["split"] == "test").sum())
    write_outputs(result, paths.metrics_path(run), paths.plots_dir(run))
    m = result.metrics
    scores = f"CL {m['cl']:.2f}  CAM-COS {m['cam_cos']:.3f}  ATT-COS {m['att_cos']:.3f}"
    print(f"evaluate {run}: {scores} -> {paths.metrics_path(run)}")


if __name__ == "__main__":
    run_stage("evaluate", main, *sys.argv[1:3])
