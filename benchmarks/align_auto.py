"""`align.mode: auto` on the sets of `benchmarks/align_train.py`, without training: each set is built in a clone of this
repository's HEAD and run through prepare -> landmarks -> align (`dvc repro align`) under `auto`, then under each fixed
warping mode; prints auto's measurement and pick and whether its aligned store is byte-identical to the picked mode's.
Identical stores give identical AU maps, models and metrics, so auto's row of align_train.py is the picked mode's row.

    python benchmarks/align_auto.py --workdir /tmp/align-auto [--n 2000] [--sets tight photo]

A few minutes a set on 2 shared cores (no training).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from align_train import COMMON, ROOT, SETS, set_params, sh, write_tight  # noqa: E402

from fer_pipeline.align.framing import TIGHT_HEAD, measure_framing  # noqa: E402
from fer_pipeline.align.store import store_alignment, store_framing  # noqa: E402
from fer_pipeline.data.synthetic import SyntheticConfig, make_sample  # noqa: E402


def digest(path: Path) -> str:
    """sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_set(name: str, workdir: Path, n: int) -> dict[str, object]:
    """Build set `name` in its clone, align it under auto and each warping mode; auto's pick and the store digests."""
    params, dataset, _ = SETS[name]
    repo = workdir / name
    if not repo.exists():
        sh(["git", "clone", "-q", str(ROOT), str(repo)], workdir)
    if name == "tight":
        write_tight(repo, n)
    set_params(repo, {**COMMON, **params, "synthetic.n": n})
    store = repo / f"data/aligned/{dataset}.h5"
    digests = {}
    for mode in ("auto", "rigid", "similarity"):
        set_params(repo, {"align.mode": mode})
        sh(["dvc", "repro", "align"], repo)
        digests[mode] = digest(store)
        if mode == "auto":
            picked, framing = store_alignment(store).mode, store_framing(store)
            shutil.copy(store, workdir / f"{name}-auto.h5")
    row = {"set": name, "n": n, "head_height": framing.head_height, "rows": framing.rows, "threshold": TIGHT_HEAD,
           "auto": picked, "identical": digests["auto"] == digests[picked],
           "other_differs": all(digests["auto"] != d for m, d in digests.items() if m not in ("auto", picked)),
           "sha256": digests}
    print(json.dumps(row), flush=True)
    return row


def demo_framing(n: int) -> None:
    """The demo's own faces (params.yaml `synthetic`, 112 px aligned crops): what auto would pick there (no clone)."""
    p = yaml.safe_load((ROOT / "params.yaml").read_text())["synthetic"]
    cfg = SyntheticConfig(size=int(p["size"]), intensity=tuple(p["intensity"]), face_scale=tuple(p["face_scale"]),
                          roll=float(p["roll"]), shift=float(p["shift"]))
    pts = np.array([make_sample(0, i, i % 7, "train", cfg).landmarks for i in range(n)])
    f = measure_framing(pts, np.tile([cfg.size, cfg.size], (n, 1)), np.zeros(n, np.uint8))
    print(f"demo: median head height {f.head_height:.3f} of the frame over {f.rows} faces -> auto picks {f.pick} "
          "(the demo's params.yaml keeps none: its images as they are)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    demo_framing(args.n)
    rows = [run_set(name, args.workdir, args.n) for name in args.sets]
    for r in rows:
        same = "byte-identical to" if r["identical"] else "DIFFERS from"
        print(f"{r['set']}: median head height {r['head_height']:.3f} of the frame over {r['rows']} faces "
              f"(threshold {r['threshold']:g}) -> auto picks {r['auto']}; store {same} align.mode {r['auto']}'s")
    (args.workdir / f"results-{'-'.join(args.sets)}.json").write_text(json.dumps(rows, indent=1))
    if not all(r["identical"] for r in rows):
        raise SystemExit("auto's store differs from the mode it picked")


if __name__ == "__main__":
    main()
