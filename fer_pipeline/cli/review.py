"""`fer review [REV_A [REV_B]]`: each run's headline metrics before and after, the change, its band, a verdict."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fer_pipeline.cli.common import add_command

EXAMPLES = """
  fer review                          # HEAD against the workspace (after dvc repro)
  fer review HEAD~1 HEAD              # two commits
  fer review main lam8 --fail-on-worse   # a branch against a `dvc exp` experiment; exit 1 if anything got worse
"""


def add_parser(subparsers: Any) -> None:
    """Add `review` to the `fer` parser."""
    parser = add_command(
        subparsers, "review",
        help="compare the headline metrics of two revisions, each change with its noise band and a verdict",
        description="Prints, per run and headline metric, the value at REV_A (default HEAD) and at REV_B (default the "
        "workspace), the change, its 95%% band (paired bootstrap over the test images, widened by the seed spread when "
        "runs were trained over several seeds) and a verdict: better, worse or within noise. A revision is any git "
        "revision or a `dvc exp` name.",
        examples=EXAMPLES,
    )
    parser.add_argument("rev_a", nargs="?", default="HEAD", help="the revision before (default HEAD)")
    parser.add_argument("rev_b", nargs="?", default="workspace", help="the revision after (default: the workspace)")
    parser.add_argument("--fail-on-worse", action="store_true", help="exit 1 when a metric is worse beyond noise (CI)")
    parser.add_argument("--repo", type=Path, default=Path("."), help="repository root (default: here)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read both revisions, print the review; 1 with --fail-on-worse when a metric got worse beyond noise."""
    from fer_pipeline.review.compare import compare_runs, render, worse
    from fer_pipeline.review.revisions import read_runs

    rows = compare_runs(read_runs(args.repo, args.rev_a), read_runs(args.repo, args.rev_b))
    print(render(rows, args.rev_a, args.rev_b), end="")
    return 1 if args.fail_on_worse and worse(rows) else 0
