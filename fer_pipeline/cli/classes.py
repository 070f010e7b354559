"""`fer classes`: the canonical expression classes (in label order) and the folder names accepted for each."""

from __future__ import annotations

import argparse
from typing import Any

from fer_pipeline.cli.common import add_command

EXAMPLES = """
  fer classes           # what to name the class folders of your own labelled dataset
"""


def add_parser(subparsers: Any) -> None:
    """Add `classes` to the `fer` parser."""
    p = add_command(
        subparsers, "classes", help="list the expression classes and the folder names accepted for each",
        description="The 7 classes in label order (the index a model predicts) and the folder names (case-insensitive) "
        "that `data.dataset: folder` maps to each.",
        examples=EXAMPLES,
    )
    p.set_defaults(func=run)


def class_table() -> str:
    """One line per class: its label index, canonical name and accepted folder names."""
    from fer_pipeline.core.labels import LABELS, SYNONYMS

    lines = ["label  class      accepted folder names (case-insensitive)"]
    for i, name in enumerate(LABELS):
        names = sorted((s for s, canonical in SYNONYMS.items() if canonical == name), key=lambda s: (s != name, s))
        lines.append(f"{i:>5}  {name:<9}  {', '.join(names)}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the class table."""
    print(class_table())
    return 0
