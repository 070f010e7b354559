"""The docs' gallery: copies of the report stage's gallery (docs/assets/gallery.png, gallery-strip.png).

    python docs/make_gallery.py            # after `make repro` or `dvc repro` (it reads reports/figures/gallery*.png)
    python docs/make_gallery.py --check    # exit 1 if the docs' copies differ from the report's figures
    python docs/make_gallery.py --table1 DIR   # also copy DIR/reports/figures/gallery.png (a checkout that ran the
                                               # Table-1 preset) to docs/assets/gallery-table1.png

The report stage draws the gallery (`fer_pipeline/report/gallery.py`) from the evaluate stage's sample panels; the docs
site cannot show files outside docs/, so this script copies them, byte for byte, and a test compares the copies.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "reports" / "figures"
OUT = ROOT / "docs" / "assets"
NAMES = ("gallery.png", "gallery-strip.png")
#: The Table-1 preset's gallery (all eleven methods), copied from the checkout that ran it.
TABLE1 = "gallery-table1.png"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 when a copy is stale")
    parser.add_argument("--table1", type=Path, help="a checkout that ran params-table1-cpu.yaml: copy its gallery too")
    args = parser.parse_args(argv)
    if args.table1 is not None:
        source = args.table1 / "reports" / "figures" / "gallery.png"
        if not source.is_file():
            print(f"{source} not found: run the Table-1 preset there first", file=sys.stderr)
            return 1
        shutil.copyfile(source, OUT / TABLE1)
    missing = [n for n in NAMES if not (SOURCE / n).is_file()]
    if missing:
        print(f"{SOURCE}: {', '.join(missing)} not found; run the report stage first (`dvc repro report`)", file=sys.stderr)
        return 1
    stale = [n for n in NAMES if not (OUT / n).is_file() or not filecmp.cmp(SOURCE / n, OUT / n, shallow=False)]
    if args.check:
        for n in stale:
            print(f"docs/assets/{n} differs from reports/figures/{n}: run python docs/make_gallery.py", file=sys.stderr)
        return 1 if stale else 0
    for n in stale:
        shutil.copyfile(SOURCE / n, OUT / n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
