"""`fer align qa`: the alignment QA figure of the current dataset's aligned-face store."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fer_pipeline.cli.common import add_command
from fer_pipeline.core import paths
from fer_pipeline.core.io import load_params

EXAMPLES = """
  fer align qa                     # figures/align/<dataset>.png: random framed faces on the template
  fer align qa -n 32 --seed 1      # another, larger draw
  fer align qa --out align_qa.png  # write it elsewhere
"""


def add_parser(subparsers: Any) -> None:
    """Add `align qa` to the `fer` parser."""
    parser = add_command(subparsers, "align", help="face alignment QA",
                         description="Check the framed faces of the aligned-face store (run `dvc repro align` with "
                         "align.mode: auto, rigid or similarity first).", examples=EXAMPLES)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    qa = add_command(commands, "qa", help="draw random framed faces with their points on the template, and rows per fallback",
                     examples=EXAMPLES)
    qa.add_argument("--out", type=Path, default=None, help="PNG to write (default figures/align/<dataset>.png)")
    qa.add_argument("-n", type=int, default=16, help="samples drawn (default 16)")
    qa.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    qa.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default params.yaml)")
    qa.set_defaults(func=qa_command)


def qa_command(args: argparse.Namespace) -> int:
    """Draw the QA figure of `data/aligned/<dataset>.h5` (`dvc repro align` with align.mode: auto, rigid or similarity first)."""
    from fer_pipeline.align.qa import draw_align_qa

    params = load_params(args.params)
    dataset = str(params["data"]["dataset"])
    out = args.out or paths.align_qa_figure(dataset)
    requested = str((params.get("align") or {}).get("mode", "none"))
    counts, choice = draw_align_qa(paths.aligned_store(dataset), out, n=args.n, seed=args.seed, requested=requested)
    print(f"{choice}\nwrote {out}; rows per framing: {counts}")
    return 0
