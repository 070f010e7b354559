"""The docs' gallery: copies of the report stage's gallery (docs/assets/gallery.png, gallery-strip.png).

    python docs/make_gallery.py            # after `make repro` or `dvc repro` (it reads reports/figures/gallery*.png)
    python docs/make_gallery.py --check    # exit 1 if the docs' copies differ from the report's figures

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 when a copy is stale")
    args = parser.parse_args(argv)
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
