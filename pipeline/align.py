"""Stages `align` / `align-x@<name>` (an extra test dataset): frame every manifest row's face by its landmarks into
the aligned-face store (`align.mode: none`: a store of attributes only; later stages then read the images as they are;
`auto`: the mode the landmarks' framing picks, the main dataset's for an extra test dataset)."""

import sys

from fer_pipeline.align.framing import describe
from fer_pipeline.align.stage import build_aligned_store
from fer_pipeline.core import paths
from fer_pipeline.core.crossdata import stage_params
from fer_pipeline.core.io import load_params
from fer_pipeline.data.datasets import image_root
from fer_pipeline.validate import check_stage, run_stage, stage_args


def main(*cross: str) -> None:
    main_params = load_params()
    params, dataset, name = stage_params(main_params, cross)  # dataset: the storage key
    check_stage("align", params)
    out = paths.aligned_store(dataset)
    # align.mode auto on an extra test dataset: the main dataset's framing decides (the model's training faces)
    like = None if name is None else paths.landmark_store(str(main_params["data"]["dataset"]))
    summary = build_aligned_store(  # streamed block by block: memory does not grow with N
        out, paths.manifest_path(dataset), paths.landmark_store(dataset), image_root(params["data"], dataset), params["align"],
        framed_like=like,
    )
    framed = f"; framed by {summary['fallback']}" if summary["rows"] else ""
    print(describe(summary["requested"], summary["mode"], summary.get("framing")))  # auto: the pick and why
    print(f"align ({summary['mode']}): {summary['rows']} rows -> {out}{framed}")


if __name__ == "__main__":
    run_stage("align", main, *stage_args("align", "[CROSSDATA_NAME]", sys.argv[1:], 0, 1))
