"""What several `fer` commands share: their help layout, the device choices, and checks of the model file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fer_pipeline.core import paths

#: `--device` choices (the same as `train.device`).
DEVICES = ("auto", "cpu", "cuda")
#: The model `fer explain` and `fer predict` read by default: the guided CAM run of the demo pipeline.
DEFAULT_MODEL = paths.model_path("cam-aus")


def add_command(
    subparsers: Any, name: str, *, help: str, examples: str, description: str | None = None
) -> argparse.ArgumentParser:
    """A command's (or a sub-command's) parser whose help ends with its examples, laid out as written."""
    return subparsers.add_parser(
        name, help=help, description=description, epilog="examples:\n" + examples.strip("\n"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_device(parser: argparse.ArgumentParser) -> None:
    """`--device auto|cpu|cuda`."""
    parser.add_argument("--device", default="auto", choices=DEVICES, help="where the model runs (default: auto, a GPU if any)")


def check_model(path: str | Path) -> Path:
    """The model file, or a FileNotFoundError that names it and says how to get it."""
    model = Path(path)
    if not model.is_file():
        how = (
            "run `make repro` to train the demo models, or `dvc pull` to fetch them from the DVC remote"
            if Path(path).resolve().is_relative_to(Path.cwd().resolve() / "models")
            else "check the path, or train a model with `make repro` (it writes models/<method>-<aus>/model.pt)"
        )
        raise FileNotFoundError(f"model file {model} not found: {how}")
    return model


def trained_on(model: str | Path, lock: str | Path = "dvc.lock") -> str | None:
    """The dataset a pipeline model was trained on: the `data/prepared/<dataset>` input its training stage recorded in
    `lock` (None when the model is not one of this pipeline's outputs, or the lock does not say)."""
    import yaml

    lock, target = Path(lock), Path(model).resolve()
    if not lock.is_file():
        return None
    stages = (yaml.safe_load(lock.read_text(encoding="utf-8")) or {}).get("stages") or {}
    for stage in stages.values():
        outs = [Path(lock.parent, str(o.get("path", ""))).resolve() for o in stage.get("outs") or []]
        if target in outs:
            for dep in stage.get("deps") or []:
                parts = Path(str(dep.get("path", ""))).parts
                if parts[:2] == ("data", "prepared") and len(parts) == 3:
                    return parts[2]
    return None


def warn_if_synthetic(model: str | Path) -> None:
    """Warn on stderr when the model was trained on the generated faces of the demo: its predictions on photos of real
    people mean nothing."""
    if trained_on(model) == "synthetic":
        print(
            f"warning: {model} was trained on the synthetic demo faces (dvc.lock: data/prepared/synthetic); its "
            "predictions on real photos are not meaningful. Train on a labelled dataset of real faces first "
            "(params.yaml: data.dataset).",
            file=sys.stderr,
        )
