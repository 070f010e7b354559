"""Stages `prepare` / `prepare-x@<name>`: build the manifest (and the synthetic faces) of `data.dataset` or of the extra
test dataset `crossdata.<name>`."""

import sys

from fer_pipeline.core import paths
from fer_pipeline.core.crossdata import stage_params
from fer_pipeline.core.io import load_params
from fer_pipeline.data.datasets import prepare
from fer_pipeline.validate import check_stage, run_stage, stage_args


def main(*cross: str) -> None:
    params, key, _ = stage_params(load_params(), cross)
    check_stage("prepare", params)
    df = prepare(params, key)
    counts = df.groupby("split").size().to_dict()
    print(f"prepare: {len(df)} rows {counts} -> {paths.manifest_path(key)}")


if __name__ == "__main__":
    run_stage("prepare", main, *stage_args("prepare", "[CROSSDATA_NAME]", sys.argv[1:], 0, 1))
