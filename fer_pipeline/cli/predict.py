"""`fer predict DIR|MANIFEST`: batch prediction with a saved model, one CSV row per image (nothing dropped)."""

from __future__ import annotations

import argparse
from typing import Any

from fer_pipeline.cli.common import DEFAULT_MODEL, add_command, add_device, check_model, warn_if_synthetic
from fer_pipeline.landmarks.options import DETECT_MAX_SIDE, DETECTORS, FALLBACKS

EXAMPLES = """
  fer predict photos/ --out predictions.csv                  # a folder (class-named sub-folders give labels)
  fer predict faces.csv --split test --maps maps.h5          # a manifest's test rows, with every map in HDF5
  fer predict crops/ --detector none --figures figs/ --n-jobs 2
"""


def add_parser(subparsers: Any) -> None:
    """Add `predict` to the `fer` parser."""
    p = add_command(
        subparsers, "predict",
        help="predict the expression of every image of a folder or manifest, with CAM/attention scores per image",
        description="Batch prediction: detection (or given boxes), 68 landmarks, the framing the model was trained with, "
        "batched inference; one CSV row per input image with class probabilities and map scores, or a status and "
        "reason where no prediction was possible.",
        examples=EXAMPLES,
    )
    p.add_argument(
        "source",
        help="a folder of images (class-named sub-folders give labels) or a CSV with a path column "
        "(optional: sample_id, label, split, box_x, box_y, box_w, box_h)",
    )
    p.add_argument("--model", default=str(DEFAULT_MODEL), help=f"model file (default: {DEFAULT_MODEL})")
    p.add_argument("--out", default="predictions.csv", help="prediction CSV to write (default: predictions.csv)")
    p.add_argument("--maps", default=None, help="also write every row's CAM, attention and AU map to this HDF5 file")
    p.add_argument("--figures", default=None, help="also write one explanation PNG per face into this folder")
    p.add_argument("--root", default=None, help="manifest paths are relative to this folder (default: the CSV's folder)")
    p.add_argument("--split", default=None, help="manifest: only the rows of this split (e.g. test)")
    p.add_argument(
        "--detector",
        default="hog",
        choices=DETECTORS,
        help="hog | haar | none (none: the manifest's box, else the whole image: pre-aligned crops)",
    )
    p.add_argument(
        "--fallback",
        nargs="*",
        default=["haar"],
        choices=FALLBACKS,
        help="tried in order when the detector finds no face (default: haar; add 'whole' to use the whole image)",
    )
    p.add_argument(
        "--detect-max-side",
        type=int,
        default=DETECT_MAX_SIDE,
        help=f"detectors search a copy shrunk to this long side, px (0 = full size; default {DETECT_MAX_SIDE}, "
        "as landmarks.detect_max_side)",
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--n-jobs", type=int, default=1, help="processes that read, detect and frame images (joblib)")
    add_device(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute `fer predict` from parsed arguments; 0 on success (rows that failed are in the CSV, not errors)."""
    if args.batch_size < 1 or args.n_jobs < 1:
        raise ValueError("--batch-size and --n-jobs must be at least 1")
    warn_if_synthetic(check_model(args.model))  # before the heavy imports: a missing model is said at once
    from fer_pipeline.landmarks.dlib68 import Dlib68Config
    from fer_pipeline.predict import FrameConfig, predict

    cfg = FrameConfig(detector=Dlib68Config(args.detector, tuple(args.fallback), detect_max_side=args.detect_max_side))
    summary = predict(
        args.source,
        args.model,
        args.out,
        maps_path=args.maps,
        figures_dir=args.figures,
        frame_cfg=cfg,
        root=args.root,
        split=args.split,
        batch_size=args.batch_size,
        n_jobs=args.n_jobs,
        device=args.device,
    )
    print(f"fer predict: {summary.line()} -> {args.out}")
    return 0
