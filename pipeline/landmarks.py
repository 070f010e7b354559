"""Stage `landmarks`: 68 landmarks for every manifest row into the shareable HDF5 store (a bad image is a status)."""

from fer_pipeline.core import paths
from fer_pipeline.core.io import load_params
from fer_pipeline.data.datasets import image_root
from fer_pipeline.landmarks.stage import build_landmark_store
from fer_pipeline.landmarks.summary import format_summary
from fer_pipeline.validate import check_stage, run_stage


def main() -> None:
    params = load_params()
    check_stage("landmarks", params)
    dataset = params["data"]["dataset"]
    out = paths.landmark_store(dataset)
    summary = build_landmark_store(  # streamed block by block: memory does not grow with N
        out, paths.manifest_path(dataset), image_root(params["data"]), params["landmarks"], dataset=dataset
    )
    print(f"landmarks: {summary['rows']} rows -> {out}\n{format_summary(summary)}")


if __name__ == "__main__":
    run_stage("landmarks", main)
