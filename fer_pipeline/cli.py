"""The `fer` command: each subcommand module exposes `add_parser(subparsers)` and `run(args)`; heavy imports stay in `run`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fer_pipeline import explain
from fer_pipeline.data.images import ImageError


def build_parser() -> argparse.ArgumentParser:
    """`fer` with its subcommands."""
    parser = argparse.ArgumentParser(prog="fer", description="Guided interpretable facial expression recognition (fer_pipeline).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    explain.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` and run the subcommand; a known failure prints one line naming the problem and returns 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError, OSError, ImageError) as e:
        print(f"fer {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
