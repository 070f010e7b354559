"""The `fer` console script: `fer <area> ...`; one module per area registers its subcommands (heavy imports in `run`)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from fer_pipeline.data.images import ImageError

#: Area name → module with `register(subparsers)`; each parser sets `func(args) -> int`. Add an area with one line.
AREAS = {
    "landmarks": "fer_pipeline.cli_landmarks",
    "align": "fer_pipeline.cli_align",
    "aus": "fer_pipeline.cli_aus",
    "explain": "fer_pipeline.explain",
    "predict": "fer_pipeline.predict.cli",
    "review": "fer_pipeline.review.cli",
}


def build_parser() -> argparse.ArgumentParser:
    """`fer` with every area's subcommands."""
    parser = argparse.ArgumentParser(prog="fer", description="fer_pipeline tools (the pipeline itself runs with `dvc repro`)")
    areas = parser.add_subparsers(dest="area", required=True, metavar="AREA")
    for module in AREAS.values():
        importlib.import_module(module).register(areas)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` and run the subcommand; a known failure prints one line naming the problem and returns 2."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError, OSError, ImageError) as e:
        print(f"fer {args.area}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
