"""Stage `aumaps`: render each image's class AU heatmap from its landmarks into HDF5."""

from fer_pipeline.aumaps.build import build_aumap_store_from_files
from fer_pipeline.core import paths
from fer_pipeline.core.io import load_params
from fer_pipeline.validate import check_stage, run_stage


def main() -> None:
    params = load_params()
    check_stage("aumaps", params)
    dataset, p = params["data"]["dataset"], params["aumaps"]
    settings = {k: p[k] for k in ("codebook", "size", "radius", "smoothing")}
    out = paths.aumap_store(dataset)
    has_map = build_aumap_store_from_files(  # read, rendered and written chunk by chunk: memory does not grow with N
        out,
        paths.manifest_path(dataset),
        paths.landmark_store(dataset),
        settings,
        codebook=str(p["codebook"]),
        size=int(p["size"]),
        radius=float(p["radius"]),
        smoothing=float(p["smoothing"]),
        n_jobs=int(p["n_jobs"]),
        chunk_size=int(p["chunk_size"]),
        backend=str(p["backend_joblib"]),
    )
    print(f"aumaps: {len(has_map)} maps, {int(has_map.sum())} with AUs -> {out}")


if __name__ == "__main__":
    run_stage("aumaps", main)
