"""The `fer` console script: `fer <command> ...`, one module per command in this package.

Each module in `COMMANDS` has `add_parser(subparsers)` (argparse only: light imports, so that `fer --help` and every
`fer <command> --help` answer at once) and a `run(args) -> int` that imports what the command needs (torch, timm,
cv2, h5py, pandas, matplotlib) when it runs. To add a command: write `fer_pipeline/cli/<name>.py` with both functions
and add its module name to `COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from fer_pipeline import __version__  # the code's version (pyproject.toml reads it; an editable install's metadata may lag)

#: Command modules, in the order `fer --help` lists them.
COMMANDS = ("landmarks", "align", "aus", "explain", "predict", "review", "noise", "classes")


def build_parser() -> argparse.ArgumentParser:
    """`fer` with every command's parser."""
    parser = argparse.ArgumentParser(
        prog="fer",
        description="fer_pipeline tools: check and import landmarks and AUs, explain or predict the expression of photos "
        "with a trained model (the pipeline itself runs with `dvc repro`).",
        epilog="`fer <command> --help` shows each command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="area", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"fer_pipeline.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` and run the command; a known failure prints one line naming the problem and returns 2."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from fer_pipeline.data.images import ImageError

    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError, OSError, ImageError) as e:
        print(f"fer {args.area}: error: {e}", file=sys.stderr)
        return 2
