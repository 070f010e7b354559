"""The `fer` console script: `fer <area> <command>`, one module per area registers its subcommands."""

from __future__ import annotations

import argparse
import importlib
import logging
from collections.abc import Sequence

#: Area name → module with `register(subparsers)`; each parser sets `func(args) -> int`. Add an area with one line.
AREAS = {
    "landmarks": "fer_pipeline.cli_landmarks",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` and run the chosen subcommand; its return value is the exit status."""
    parser = argparse.ArgumentParser(prog="fer", description="fer_pipeline tools (the pipeline itself runs with `dvc repro`)")
    areas = parser.add_subparsers(dest="area", required=True, metavar="AREA")
    for module in AREAS.values():
        importlib.import_module(module).register(areas)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
