"""`fer explain IMAGE`: the expression of one photo, and a figure of its landmarks, AU map, CAM and attention."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from fer_pipeline.cli.common import DEFAULT_MODEL, add_command, add_device, check_model, warn_if_synthetic

EXAMPLES = """
  fer explain photo.jpg                                  # photo_explain.png and the predicted class
  fer explain photo.jpg --json --out why.png             # also print probabilities and map scores as JSON
  fer explain photo.jpg --model models/cam-noaus/model.pt --device cpu
"""


def add_parser(subparsers: Any) -> None:
    """Add `explain` to the `fer` parser."""
    p = add_command(
        subparsers, "explain", help="predict the expression of a photo and draw its landmarks, AU map, CAM and attention",
        description="Find the face and its 68 landmarks, frame it as the model's training faces were, predict the "
        "expression and draw what the model looked at (the CAM and layer-5 attention beside the predicted class's AU "
        "map). The 68-point model is trained on iBUG-300W: non-commercial use only.",
        examples=EXAMPLES,
    )
    p.add_argument("image", help="a photo (any size; the face is found and framed as the model's training faces were)")
    p.add_argument("--model", default=str(DEFAULT_MODEL), help=f"model file (default: {DEFAULT_MODEL})")
    p.add_argument("--out", default=None, help="PNG to write (default: <image stem>_explain.png in the current folder)")
    p.add_argument("--json", action="store_true", help="print the prediction, probabilities and scores as JSON")
    add_device(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute `fer explain` from parsed arguments; 0 on success."""
    warn_if_synthetic(check_model(args.model))  # before the heavy imports: a missing model is said at once
    from fer_pipeline.explain import explain

    out = Path(args.out) if args.out else Path(f"{Path(args.image).stem}_explain.png")
    result: dict[str, Any] = explain(args.image, args.model, out, device=args.device)
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "landmarks"}, indent=2))
    else:
        probs = result["probabilities"]
        print(f"{args.image}: {result['prediction']} ({probs[result['prediction']]:.1%}) -> {out}")
    return 0
