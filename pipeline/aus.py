"""Stage `aus`: per-image AU activations (synthetic truth or an AU detector's CSV) matched to the manifest, into HDF5."""

import sys

from fer_pipeline.aus.stage import build_au_table
from fer_pipeline.aus.store import write_au_store
from fer_pipeline.core import paths
from fer_pipeline.core.io import load_params
from fer_pipeline.data.manifest import read_manifest
from fer_pipeline.validate import check_stage, run_stage, stage_args


def main() -> None:
    params = load_params()
    check_stage("aus", params)
    dataset = params["data"]["dataset"]
    ids = read_manifest(paths.manifest_path(dataset))["sample_id"].astype(str).tolist()
    table = build_au_table(ids, params["aus"], dataset)
    out = paths.au_store(dataset)
    write_au_store(out, table)
    print(f"aus: source {table.attrs['source']}, {len(table.sample_id)} rows {table.status_counts()} -> {out}")


if __name__ == "__main__":
    run_stage("aus", main, *stage_args("aus", "", sys.argv[1:]))
