"""Stage `prepare`: build the manifest (and the synthetic faces) for `data.dataset`."""

from fer_pipeline.core import paths
from fer_pipeline.core.io import load_params
from fer_pipeline.data.datasets import prepare
from fer_pipeline.validate import check_stage, run_stage


def main() -> None:
    params = load_params()
    check_stage("prepare", params)
    df = prepare(params)
    counts = df.groupby("split").size().to_dict()
    print(f"prepare: {len(df)} rows {counts} -> {paths.manifest_path(params['data']['dataset'])}")


if __name__ == "__main__":
    run_stage("prepare", main)
