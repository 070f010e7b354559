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
        "workspace), the change, its 95%% band and a verdict: better, worse or within noise. The band counts the test "
        "images (paired bootstrap) and the training: Student's t over the seeds of runs trained over several, else the "
        "committed seed-noise measurement (noise/seed-noise.json, written by `fer noise`); without one, a change of "
        "a one-seed run reads '1 seed, training noise unknown'. A revision is any git revision or a `dvc exp` name.",
        examples=EXAMPLES,
    )
    parser.add_argument("rev_a", nargs="?", default="HEAD", help="the revision before (default HEAD)")
    parser.add_argument("rev_b", nargs="?", default="workspace", help="the revision after (default: the workspace)")
    parser.add_argument("--fail-on-worse", action="store_true", help="exit 1 when a metric is worse beyond noise (CI)")
    parser.add_argument("--repo", type=Path, default=Path("."), help="repository root (default: here)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read both revisions and the training noise, print the review; 1 with --fail-on-worse when a metric got worse."""
    from fer_pipeline.review.compare import compare_runs, render, worse
    from fer_pipeline.review.noise import noise_header, read_noise, read_params
    from fer_pipeline.review.revisions import read_runs, reader

    read_a, read_b = reader(args.repo, args.rev_a), reader(args.repo, args.rev_b)
    noise = read_noise(read_a, args.rev_a) or read_noise(read_b, args.rev_b)  # the baseline's measurement first
    params = {args.rev_a: read_params(read_a), args.rev_b: read_params(read_b)}
    rows = compare_runs(read_runs(args.repo, args.rev_a), read_runs(args.repo, args.rev_b), noise)
    print(render(rows, args.rev_a, args.rev_b, noise_header(noise, params)), end="")
    return 1 if args.fail_on_worse and worse(rows) else 0
