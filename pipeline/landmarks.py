"""Stages `landmarks` / `landmarks-x@<name>` (an extra test dataset): 68 landmarks
for every manifest row into the shareable HDF5 store (a bad image is a status)."""

import sys

from fer_pipeline.core import paths
from fer_pipeline.core.crossdata import stage_params
from fer_pipeline.core.io import load_params
from fer_pipeline.data.datasets import image_root
from fer_pipeline.landmarks.stage import build_landmark_store
from fer_pipeline.landmarks.summary import format_summary
from fer_pipeline.validate import check_stage, run_stage, stage_args


def main(*cross: str) -> None:
    params, key, _ = stage_params(load_params(), cross)
    check_stage("landmarks", params)
    out = paths.landmark_store(key)
    summary = build_landmark_store(  # streamed block by block: memory does not grow with N
        out, paths.manifest_path(key), image_root(params["data"], key), params["landmarks"], dataset=key
    )
    print(f"landmarks: {summary['rows']} rows -> {out}\n{format_summary(summary)}")


if __name__ == "__main__":
    run_stage("landmarks", main, *stage_args("landmarks", "[CROSSDATA_NAME]", sys.argv[1:], 0, 1))
