"""Stages `prepare` / `prepare-x@<name>`: build the manifest (and the synthetic faces) of `data.dataset` or of the extra
test dataset `crossdata.<name>`."""

import sys

from fer_pipeline.core import paths
from fer_pipeline.core.crossdata import stage_params
from fer_pipeline.core.io import load_params
from fer_pipeline.data.datasets import prepare
from fer_pipeline.validate import check_stage, run_stage


def main() -> None:
    params, key, _ = stage_params(load_params(), sys.argv[1:2])
    check_stage("prepare", params)
    df = prepare(params, key)
    counts = df.groupby("split").size().to_dict()
    print(f"prepare: {len(df)} rows {counts} -> {paths.manifest_path(key)}")


if __name__ == "__main__":
    run_stage("prepare", main)
