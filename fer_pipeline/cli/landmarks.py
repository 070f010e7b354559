"""`fer landmarks import FILE` (check and stage landmarks computed elsewhere) and `fer landmarks qa` (the QA figure)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fer_pipeline.cli.common import add_command
from fer_pipeline.core import paths
from fer_pipeline.core.io import load_params

QA_EXAMPLES = """
  fer landmarks qa                            # figures/landmarks/<dataset>.png and the quality summary
  fer landmarks qa --worst -n 24              # the 24 worst-shaped faces instead of random ones
"""
IMPORT_EXAMPLES = """
  fer landmarks import openface_landmarks.csv # check and stage points computed elsewhere
  fer landmarks import points.npz --out data/import/mine.csv   # stage them elsewhere (then set landmarks.file)
"""
EXAMPLES = QA_EXAMPLES + IMPORT_EXAMPLES.splitlines(keepends=True)[1]


def add_parser(subparsers: Any) -> None:
    """Add `landmarks import` and `landmarks qa` to the `fer` parser."""
    parser = add_command(subparsers, "landmarks", help="landmark import and QA",
                         description="Check the 68-point landmarks of the current dataset (params.yaml: data.dataset), "
                         "or import points computed elsewhere.", examples=EXAMPLES)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    imp = add_command(
        commands, "import", examples=IMPORT_EXAMPLES,
        help="validate landmarks computed elsewhere against the manifest and stage them for `landmarks.backend: import`",
        description="Reads FILE (CSV: sample_id, x0..x67, y0..y67 or OpenFace's x_0..x_67, y_0..y_67; NPZ: sample_id, "
        "landmarks (N,68,2|3)), checks every manifest row (68 finite points inside the image), prints the status counts "
        "and writes FILE in the import CSV format to data/import/<dataset>.csv, where the landmarks stage reads it.",
    )
    imp.add_argument("file", type=Path, help="CSV or NPZ of 68-point landmarks")
    imp.add_argument("--out", type=Path, default=None, help="where to write the import CSV (default data/import/<dataset>.csv)")
    imp.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default params.yaml)")
    imp.set_defaults(func=import_command)

    qa = add_command(
        commands, "qa", examples=QA_EXAMPLES,
        help="draw random samples (or the worst-shaped) with their 68 points, the count per status "
        "and the shape residual histogram; print the landmark quality summary",
    )
    qa.add_argument("--out", type=Path, default=None, help="PNG to write (default figures/landmarks/<dataset>.png)")
    qa.add_argument("-n", type=int, default=16, help="samples drawn (default 16)")
    qa.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    qa.add_argument("--worst", action="store_true", help="draw the worst-shaped rows (largest shape residual) instead")
    qa.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default params.yaml)")
    qa.set_defaults(func=qa_command)


def import_command(args: argparse.Namespace) -> int:
    """Validate FILE against the current manifest, report, and write it as `data/import/<dataset>.csv`; 1 if no row is usable."""
    from fer_pipeline.data.datasets import image_root, write_landmark_csv
    from fer_pipeline.data.manifest import read_manifest
    from fer_pipeline.landmarks.extract import imported_table
    from fer_pipeline.landmarks.importer import read_points_file

    params = load_params(args.params)
    dataset = str(params["data"]["dataset"])
    manifest = read_manifest(paths.manifest_path(dataset))
    table = imported_table(manifest, image_root(params["data"]), args.file, {"backend": "import"})
    counts = table.status_counts()
    print(f"{args.file}: {len(manifest)} manifest rows: {counts['imported']} imported, {counts['invalid_import']} invalid")
    if counts["imported"] == 0:
        print("no usable row: check that sample_id matches the manifest's and that the points are in pixels of the image")
        return 1
    out = args.out or paths.landmark_import(dataset)
    ids, points = read_points_file(args.file)
    rank = {sid: i for i, sid in enumerate(manifest["sample_id"])}  # manifest order, so the stage can stream the file
    order = sorted(range(len(ids)), key=lambda i: (rank.get(ids[i], len(rank)), i))
    write_landmark_csv(out, [ids[i] for i in order], points[order])
    file_line = "" if out == paths.landmark_import(dataset) else f"\n  landmarks.file: {out}"
    print(f"wrote {out}. To use it, set in params.yaml:\n  landmarks.backend: import{file_line}\nthen run `dvc repro`.")
    return 0


def qa_command(args: argparse.Namespace) -> int:
    """Draw the QA figure of the current dataset's landmark store."""
    from fer_pipeline.data.datasets import image_root
    from fer_pipeline.data.manifest import read_manifest
    from fer_pipeline.landmarks.qa import draw_qa, quality_summary
    from fer_pipeline.landmarks.store import read_landmark_store

    params = load_params(args.params)
    dataset = str(params["data"]["dataset"])
    manifest = read_manifest(paths.manifest_path(dataset))
    table = read_landmark_store(paths.landmark_store(dataset))
    if table.sample_id != manifest["sample_id"].tolist():
        print(f"{paths.landmark_store(dataset)} does not match {paths.manifest_path(dataset)}: run `dvc repro landmarks`")
        return 1
    out = args.out or paths.landmark_qa_figure(dataset)
    counts = draw_qa(table, manifest["path"].tolist(), image_root(params["data"]), out, n=args.n, seed=args.seed,
                     worst=args.worst)
    print(f"wrote {out}; rows per status: {counts}\n{quality_summary(table)}")
    return 0
