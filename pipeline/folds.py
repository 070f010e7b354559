"""k-fold by subject from `dvc exp show --json`: each run's mean and spread over the folds of a `data.fold` sweep.

Run after the fold experiments have finished (docs/guides/ckplus-jaffe.md, "k-fold by subject"):
`python pipeline/folds.py` (or `--json saved.json` to read a saved `dvc exp show --json`). Writes reports/folds.md and
reports/folds.csv (one row per fold experiment and run).
"""

import argparse

from fer_pipeline.core import paths
from fer_pipeline.core.io import write_text
from fer_pipeline.report.ablations import read_exp_show
from fer_pipeline.report.folds import fold_table, render_folds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", help="saved `dvc exp show --json` output (default: run `dvc exp show --json` now)")
    args = ap.parse_args()
    table = fold_table(read_exp_show(args.json))
    if table.empty:
        raise SystemExit("no finished experiment has data.folds > 1 with metrics: set data.group and data.folds, queue "
                         "the folds (dvc exp run --queue -S 'data.fold=range(0,K)'), run them (dvc queue start), then rerun")
    write_text(paths.REPORT_DIR / "folds.csv", table.to_csv(index=False, lineterminator="\n", float_format="%.4f"))
    report = render_folds(table)
    write_text(paths.REPORT_DIR / "folds.md", report)
    print(report)


if __name__ == "__main__":
    main()
