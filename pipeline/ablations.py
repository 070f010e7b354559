"""Ablation figures and tables from `dvc exp show --json`: the λ curve (Fig. 5) and the layer table (Table 3).

Run after the queued sweeps have finished (docs/guides/review.md, "Ablations"): `python pipeline/ablations.py`
(or `--json saved.json` to draw from a saved `dvc exp show --json`). Writes reports/ablations.md and
reports/ablations/{lambda,layers}.png, experiments.csv; λ and the layers are chosen on the validation metrics
(`--select`, metrics/val/<run>.json) and reported with the test numbers of the pick.
"""

import argparse

import pandas as pd

from fer_pipeline.core import paths
from fer_pipeline.core.io import write_text
from fer_pipeline.evaluate.figures import save_figure
from fer_pipeline.report.ablations import (
    VAL_KEYS,
    choose,
    chosen_table,
    experiments_table,
    lambda_curve,
    lambda_figure,
    layer_figure,
    layer_table,
    layers_label,
    read_exp_show,
    render_ablations,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", help="saved `dvc exp show --json` output (default: run `dvc exp show --json` now)")
    ap.add_argument("--method", default="cam", help="method whose runs to read (metrics/<method>-aus.json)")
    ap.add_argument("--lambda", dest="lam", type=float, default=None, help="λ of the layer table (default: the most common)")
    ap.add_argument("--layers", default=None, help="layer set of the λ curve, e.g. 5 or 5,4 (default: the most common)")
    ap.add_argument("--select", default="cl", choices=VAL_KEYS,
                    help="validation metric that picks λ and the layers (default cl); test numbers never take part")
    args = ap.parse_args()
    exps = experiments_table(read_exp_show(args.json), args.method)
    if exps.empty:
        raise SystemExit("no experiment with train.lambda/train.layers params and metrics found; run the sweeps first")
    curve = lambda_curve(exps, layers_label(args.layers) if args.layers else None)
    layers = layer_table(exps, pd.read_csv(paths.PAPER_LAYER_TABLE), args.lam)
    out = paths.REPORT_DIR / "ablations"
    save_figure(lambda_figure(curve, f"{args.method}: accuracy and alignment vs λ"), out / "lambda.png")
    save_figure(layer_figure(layers, f"{args.method}: aligned layers (ours vs paper Table 3)"), out / "layers.png")
    write_text(out / "experiments.csv", exps.to_csv(index=False, lineterminator="\n", float_format="%.4f"))
    chosen = chosen_table(exps, choose(exps, args.select), args.select) if exps[f"val_{args.select}"].notna().any() else None
    if chosen is None:
        print("no experiment has validation metrics (metrics/val/<run>.json): nothing chosen; rerun the sweeps to get them")
    report = render_ablations(curve, layers, exps, chosen=chosen)
    write_text(paths.REPORT_DIR / "ablations.md", report)
    print(report)


if __name__ == "__main__":
    main()
