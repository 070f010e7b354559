"""`fer noise [REV]`: measure the training noise of each run from a revision trained over several seeds and
commit it (noise/seed-noise.json), so that `fer review` and the report can judge one-seed changes."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fer_pipeline.cli.common import add_command

EXAMPLES = """
  fer noise seeds      # after `dvc exp run -n seeds $(python -m fer_pipeline.core.presets params-seeds.yaml)`
  fer noise            # the same from the workspace (after `dvc repro` with report.extra_seeds set)
"""


def add_parser(subparsers: Any) -> None:
    """Add `noise` to the `fer` parser."""
    parser = add_command(
        subparsers, "noise",
        help="measure each run's spread over training seeds into noise/seed-noise.json (for fer review and the report)",
        description="Reads REV (a git revision, a `dvc exp` name, or the workspace), whose runs were trained over at "
        "least 3 seeds (report.extra_seeds), and writes per run and headline metric the standard deviation over the "
        "seeds, with the revision and the params it was measured at. Commit the file with the baseline.",
        examples=EXAMPLES,
    )
    parser.add_argument("rev", nargs="?", default="workspace",
                        help="the revision trained over several seeds (default: the workspace)")
    parser.add_argument("--repo", type=Path, default=Path("."), help="repository root (default: here)")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: REPO/noise/seed-noise.json)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Measure and write the noise file; print it."""
    from fer_pipeline.review.noise import NOISE_FILE, measure, read_params, write_noise
    from fer_pipeline.review.revisions import commit_of, read_runs, reader

    runs = read_runs(args.repo, args.rev)
    spread = {run: data.seeds for run, data in runs.items() if data.seeds}
    noise = measure(spread, commit_of(args.repo, args.rev), read_params(reader(args.repo, args.rev)))
    out = args.out or args.repo / NOISE_FILE
    write_noise(noise, out)
    for run, keys in sorted(noise.sd.items()):
        print(f"{run}: " + ", ".join(f"{k} sd {v:.4f}" for k, v in keys.items()))
    print(f"noise: {len(noise.seeds)} seeds {list(noise.seeds)} at {noise.rev[:7]} -> {out}")
    return 0
