"""Three-way table λ = 0 / codebook guidance / active guidance from `dvc exp show --json` (docs/guides/active-aus.md).

Run after `dvc exp run -S aumaps.mode=active` on a set with `synthetic.au_presence` < 1 and `aus.source: synthetic`
(or `--json saved.json`). Writes reports/guidance.md and reports/guidance.csv.
"""

import argparse

from fer_pipeline.core import paths
from fer_pipeline.core.io import write_text
from fer_pipeline.report.ablations import read_exp_show
from fer_pipeline.report.guidance import guidance_table, render_guidance, seed_means


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", help="saved `dvc exp show --json` output (default: run `dvc exp show --json` now)")
    ap.add_argument("--method", default="cam", help="method whose runs to read (metrics/<method>-<noaus|aus>.json)")
    args = ap.parse_args()
    table = guidance_table(read_exp_show(args.json), args.method)
    if len(seed_means(table)) < 3:
        raise SystemExit(f"found {list(table['run']) if len(table) else []}: needs a codebook-mode state and an "
                         "`aumaps.mode: active` experiment, each with true-AU scores (synthetic set); docs: active AUs")
    write_text(paths.REPORT_DIR / "guidance.csv", table.to_csv(index=False, lineterminator="\n", float_format="%.4f"))
    report = render_guidance(table)
    write_text(paths.REPORT_DIR / "guidance.md", report)
    print(report)


if __name__ == "__main__":
    main()
