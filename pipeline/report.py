"""Stage `report`: paper-style tables of every run beside the paper's numbers, the beyond-paper metrics and figures."""

import json
import sys
from pathlib import Path

import pandas as pd

from fer_pipeline.align.framing import describe
from fer_pipeline.align.store import stage_inputs, store_framing
from fer_pipeline.align.warp import alignment_notes
from fer_pipeline.core import paths
from fer_pipeline.core.crossdata import cross_names
from fer_pipeline.core.io import load_params, write_json, write_text
from fer_pipeline.evaluate.bootstrap import read_scores
from fer_pipeline.evaluate.panel import read_panel
from fer_pipeline.report.aumaps import summarize_stores, summary_text
from fer_pipeline.report.bands import bands_json, bands_table, method_differences, render_bands
from fer_pipeline.report.extra import render_extra, write_compare_figure
from fer_pipeline.report.gallery import gallery_section, write_gallery
from fer_pipeline.report.tables import (
    AUS,
    build_table,
    cross_table,
    method_notes,
    missing_classes,
    recall_table,
    render_cross,
    render_report,
    report_methods,
    run_name,
    shortcut_table,
    with_cross_columns,
)
from fer_pipeline.review.noise import noise_header, read_noise
from fer_pipeline.review.revisions import WORKSPACE, reader
from fer_pipeline.validate import check_stage, run_stage, stage_args


def read_details(run: str) -> dict:
    """Every metric of one run (its details.json)."""
    return json.loads(paths.details_path(run).read_text(encoding="utf-8"))


def main() -> None:
    params = load_params()
    check_stage("report", params)
    methods = report_methods(params["report"])
    metrics = {}
    for method in methods:
        for aus in AUS:
            run = run_name(method, aus)
            metrics[run] = read_details(run)
    table = build_table(metrics, methods, pd.read_csv(paths.PAPER_TABLES))
    trained = report_methods({"methods": params["report"]["methods"]})  # evaluate-x runs the trained methods only
    cross = {name: {run_name(m, a): read_details(paths.cross_run(run_name(m, a), name)) for m in trained for a in AUS}
             for name in cross_names(params)}
    own = f"{params['data']['dataset']} (own test)"
    xtable = cross_table({own: metrics, **cross}, trained) if cross else pd.DataFrame()
    shortcut = shortcut_table(metrics, methods)
    figures = {}
    panels = {}
    for method in methods:
        panels[method] = {aus: read_panel(paths.plots_dir(run_name(method, aus)) / "samples.h5") for aus in AUS}
        name = f"{method}-samples.png"
        if write_compare_figure(panels[method], method, paths.REPORT_DIR / "figures" / name):
            figures[method] = f"figures/{name}"
    fig_dir = paths.REPORT_DIR / "figures"
    gallery = write_gallery(panels, fig_dir / "gallery.png", fig_dir / "gallery-strip.png")  # docs: docs/make_gallery.py
    dataset = params["data"]["dataset"]
    alignment, faces, points = stage_inputs(params["align"], dataset)  # align.mode auto: the mode the align stage picked
    choice = describe(str(params["align"]["mode"]), alignment.mode, store_framing(faces)) if faces is not None else ""
    notes = method_notes(methods) + alignment_notes(alignment, choice)  # no note for align.mode none (the demo)
    counts = summary_text(summarize_stores(paths.manifest_path(dataset), paths.aumap_store(dataset), points))
    text = render_report(table, shortcut, dataset, notes, recall_table(metrics, methods), counts)
    scores = {run: read_scores(paths.scores_path(run), str(paths.scores_path(run))) for run in metrics}
    noise = read_noise(reader(Path("."), WORKSPACE))  # one-seed runs' training noise (noise/seed-noise.json)
    diffs = method_differences(scores, metrics, methods, noise)
    seeds = max(len((d.get("seeds") or {}).get("seeds", [0])) for d in metrics.values())  # report.extra_seeds + 1
    lines = noise_header(noise, {"params.yaml": params})
    text += render_bands(bands_table(metrics, diffs, methods), seeds=seeds, noise_lines=lines)
    write_json(paths.BANDS_REPORT, bands_json(metrics, diffs, methods))
    text += render_extra(metrics, methods, figures)
    text += gallery_section("figures/gallery.png") if gallery else ""
    text += render_cross(xtable, {name: missing_classes(next(iter(d.values()))) for name, d in cross.items()})
    write_text(paths.REPORT_DIR / "tables.md", text)
    table = with_cross_columns(table, xtable, own)  # the CSV gains one column per (extra test dataset, run)
    write_text(paths.REPORT_DIR / "tables.csv", table.to_csv(index=False, lineterminator="\n", float_format="%.4f"))
    print(text)
    print(f"report: {paths.REPORT_DIR / 'tables.md'}")


if __name__ == "__main__":
    run_stage("report", main, *stage_args("report", "", sys.argv[1:]))
