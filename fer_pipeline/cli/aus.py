"""`fer aus import FILE`: check an AU detector's CSV against the manifest and stage it for `aus.source: import`."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from fer_pipeline.cli.common import add_command
from fer_pipeline.core import paths
from fer_pipeline.core.io import atomic_path, load_params

EXAMPLES = """
  fer aus import openface.csv                   # OpenFace 2.x output, staged as data/aus_import/<dataset>.csv
  fer aus import pyfeat.csv --out my_aus.csv    # stage it elsewhere (then set aus.file)
"""


def add_parser(subparsers: Any) -> None:
    """Add `aus import` to the `fer` parser."""
    parser = add_command(subparsers, "aus", help="per-image AU activations (AU detector CSVs)",
                         description="Import the per-image AU activations of an AU detector (OpenFace, py-feat or a "
                         "plain CSV) for `aus.source: import`.", examples=EXAMPLES)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    imp = add_command(
        commands, "import", examples=EXAMPLES,
        help="validate an AU detector's CSV against the manifest and stage it for `aus.source: import`",
        description="Reads FILE (OpenFace 2.x: AU01_r.. 0-5 / AU01_c..; py-feat: AU01..AU43 in [0, 1]; plain: AU1, AU2, .. "
        "in [0, 1]; each with a sample_id column of manifest ids), checks every manifest row (numbers in range, a row per "
        "sample), prints the status counts and the first bad rows, and copies FILE to data/aus_import/<dataset>.csv, where "
        "the aus stage reads it. Bad rows are kept as a status with a reason, never dropped.",
    )
    imp.add_argument("file", type=Path, help="CSV of per-image AU activations")
    imp.add_argument("--out", type=Path, default=None, help="where to copy it (default data/aus_import/<dataset>.csv)")
    imp.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default params.yaml)")
    imp.set_defaults(func=import_command)


def import_command(args: argparse.Namespace) -> int:
    """Validate FILE against the current manifest, report, and copy it where the stage reads it; 1 if no row is usable."""
    from fer_pipeline.aus.formats import read_au_csv
    from fer_pipeline.aus.store import align_aus
    from fer_pipeline.data.manifest import read_manifest

    params = load_params(args.params)
    dataset = str(params["data"]["dataset"])
    ids = read_manifest(paths.manifest_path(dataset))["sample_id"].astype(str).tolist()
    parsed = read_au_csv(args.file)
    table = align_aus(ids, parsed, str(args.file), {"source": "import"})
    counts = table.status_counts()
    print(f"{args.file} ({parsed.format}): {len(ids)} manifest rows: {counts['ok']} ok, {counts['missing']} without a row, "
          f"{counts['invalid']} invalid")
    for sid, why in [(s, r) for s, r in zip(table.sample_id, table.reason, strict=True) if r][:5]:
        print(f"  {sid}: {why}")
    if counts["ok"] == 0:
        print("no usable row: check that sample_id matches the manifest's and the AU columns hold numbers")
        return 1
    out = args.out or paths.au_import(dataset)
    if Path(out).resolve() != Path(args.file).resolve():
        with atomic_path(out) as tmp:
            shutil.copyfile(args.file, tmp)
    file_line = "" if out == paths.au_import(dataset) else f"\n  aus.file: {out}"
    print(f"wrote {out}. To use it, set in params.yaml:\n  aus.source: import{file_line}\n  aumaps.mode: active\n"
          "then run `dvc repro`.")
    return 0
