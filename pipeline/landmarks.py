"""Stage `landmarks`: 68 landmarks for every manifest row into the shareable HDF5 store (a bad image is a status)."""

from fer_pipeline.core import paths
from fer_pipeline.core.io import load_params
from fer_pipeline.data.datasets import image_root
from fer_pipeline.data.manifest import read_manifest
from fer_pipeline.landmarks.extract import extract_landmarks
from fer_pipeline.landmarks.store import write_landmark_store
from fer_pipeline.landmarks.summary import format_summary, log_bad_rows, summarize_table
from fer_pipeline.validate import check_stage, run_stage


def main() -> None:
    params = load_params()
    check_stage("landmarks", params)
    dataset = params["data"]["dataset"]
    manifest = read_manifest(paths.manifest_path(dataset))
    table = extract_landmarks(manifest, image_root(params["data"]), params["landmarks"], dataset=dataset)
    out = paths.landmark_store(dataset)
    write_landmark_store(out, table)
    log_bad_rows(table, manifest["path"].tolist(), str(paths.manifest_path(dataset)))
    print(f"landmarks: {len(table.sample_id)} rows -> {out}\n{format_summary(summarize_table(table))}")


if __name__ == "__main__":
    run_stage("landmarks", main)
