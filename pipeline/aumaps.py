"""Stages `aumaps` / `aumaps-x@<name>` (an extra test dataset): render each
image's AU heatmap (class codebook, or the AUs it shows: `aumaps.mode`) into HDF5."""

import sys

import numpy as np

from fer_pipeline.align.store import stage_inputs
from fer_pipeline.aumaps.build import build_aumap_store_from_files, summarize
from fer_pipeline.core import paths
from fer_pipeline.core.crossdata import stage_params
from fer_pipeline.core.io import load_params, parse_bool
from fer_pipeline.data.manifest import read_manifest
from fer_pipeline.landmarks.store import USABLE, read_status
from fer_pipeline.validate import check_stage, run_stage, stage_args


def main(*cross: str) -> None:
    params, dataset, _ = stage_params(load_params(), cross)  # dataset: the storage key
    check_stage("aumaps", params)
    p = params["aumaps"]
    settings = {k: p[k] for k in ("codebook", "size", "radius", "smoothing")}
    active = str(p["mode"]) == "active"
    restrict = parse_bool("aumaps.restrict_to_codebook", p["restrict_to_codebook"])
    if active:  # codebook mode keeps the paper's store byte for byte (no new attributes, the AU store unread)
        settings.update(mode="active", restrict_to_codebook=restrict)
    out = paths.aumap_store(dataset)
    _, _, points = stage_inputs(params["align"], dataset)  # the framed faces' points (align.mode none: the landmark store)
    has_map = build_aumap_store_from_files(  # read, rendered and written chunk by chunk: memory does not grow with N
        out,
        paths.manifest_path(dataset),
        points,
        settings,
        paths.au_store(dataset) if active else None,
        codebook=str(p["codebook"]),
        size=int(p["size"]),
        radius=float(p["radius"]),
        smoothing=float(p["smoothing"]),
        n_jobs=int(p["n_jobs"]),
        chunk_size=int(p["chunk_size"]),
        backend=str(p["backend_joblib"]),
        restrict_to_codebook=restrict,
    )
    labels = read_manifest(paths.manifest_path(dataset))["label"].to_numpy()
    usable = np.isin(read_status(points)[1], [int(v) for v in USABLE])
    s = summarize(labels, has_map, usable=usable)
    print(
        f"aumaps ({p['mode']}): {s['rows']} rows, {s['with_map']} with a map; AU-class rows without one: "
        f"{s['au_rows_unusable_landmarks']} without usable landmarks, {s['au_rows_off_image']} off the image "
        f"(no AU region reaches the frame) -> {out}"
    )


if __name__ == "__main__":
    run_stage("aumaps", main, *stage_args("aumaps", "[CROSSDATA_NAME]", sys.argv[1:], 0, 1))
