"""Framing and accuracy, trained: CL, CAM-COS, ATT-COS, border fraction and CAM mass on the border for `align.mode`
none / similarity / rigid / auto, on tight 48 px crops and on photo-style frames, side by side. Each row is a real
`dvc repro` (prepare .. report, both runs of CAM) in a clone of this repository's HEAD; the `auto` row also says the
mode auto picked (`picked`) and its measured median head height / image side.

    python benchmarks/align_train.py --workdir /tmp/align-train [--n 2000] [--sets tight photo] \
        [--modes none similarity rigid auto]

`auto` writes the aligned store of the mode it picks, byte for byte (`benchmarks/align_auto.py` checks that without
training), so its row repeats that mode's; run it to see it trained.

Tight crops: the faces of `benchmarks/align_border.py` (head 1.12-1.19x the frame, 48 px), written as a class-folder
dataset with their generator landmarks imported (`landmarks.backend: import`), framed at 48 px. Photo-style frames:
the synthetic set with `synthetic.canvas: 224` (synthetic landmarks), framed at 112 px. The rest is the demo's
(resnet10t at 64 px, 6 epochs, λ 4 on layer 5, seed 0, portable CPU kernels). 10-12 min a row on 2 cores shared
with another training.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import h5py
import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from align_border import tight  # noqa: E402 -- the same tight crops as the border benchmark

from fer_pipeline.align.store import store_alignment, store_framing  # noqa: E402
from fer_pipeline.align.warp import warp  # noqa: E402
from fer_pipeline.core.labels import LABELS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: Per set: params set in the clone, the dataset name (store file names) and the original image side.
SETS = {
    "tight": ({"data.dataset": "folder", "data.root": "data/raw/tight", "landmarks.backend": "import", "align.size": 48},
              "folder", 48),
    "photo": ({"synthetic.canvas": 224, "align.size": 112}, "synthetic", 224),
}
COMMON = {"report.methods": ["cam"], "evaluate.faithfulness_n": 16}


def sh(cmd: list[str], cwd: Path) -> str:
    """Run in the clone, its own package first on the path (not an editable install's)."""
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(cwd),
                         "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"})
    if res.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed in {cwd}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res.stdout


def set_params(repo: Path, updates: dict[str, object]) -> None:
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for key, value in updates.items():
        node = params
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def write_tight(repo: Path, n: int) -> None:
    """n tight crops in class folders (the seven classes in turn) and their landmarks as an import CSV."""
    rows = []
    for i in range(n):
        img, pts = tight(i)
        name = LABELS[i % 7]
        out = repo / "data/raw/tight" / name / f"t{i:05d}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        rows.append({"sample_id": f"{name}_t{i:05d}", **{f"x{k}": pts[k, 0] for k in range(68)},
                     **{f"y{k}": pts[k, 1] for k in range(68)}})
    (repo / "data/import").mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(repo / "data/import/folder.csv", index=False, float_format="%.3f")


def border_masks(repo: Path, dataset: str, side: int, ids: list[str], map_size: int) -> np.ndarray:
    """(N, map, map) share of each map pixel outside the photo, for the test rows `ids` (zeros for mode none)."""
    with h5py.File(repo / f"data/aligned/{dataset}.h5", "r") as f:
        if "matrix" not in f:
            return np.zeros((len(ids), map_size, map_size), np.float32)
        index = {s.decode() if isinstance(s, bytes) else str(s): k for k, s in enumerate(f["sample_id"][:])}
        matrix, size = f["matrix"][:], int(f.attrs["size"])
    white = np.full((side, side, 3), 255, np.uint8)
    out = []
    for sid in ids:
        m = matrix[index[sid]]
        inside = warp(white, m, size, "constant")[..., 0].astype(np.float32) / 255 if np.isfinite(m).all() else 1.0
        out.append(cv2.resize(1.0 - np.broadcast_to(inside, (size, size)), (map_size, map_size), interpolation=cv2.INTER_AREA))
    return np.stack(out)


def border_numbers(repo: Path, dataset: str, side: int, mode: str) -> dict[str, float]:
    """Median border fraction of the test frames, and each run's mean share of (min-max) CAM mass on the border."""
    from fer_pipeline.core import paths
    from fer_pipeline.data.manifest import read_manifest
    from fer_pipeline.evaluate.run import evaluate_model

    manifest = read_manifest(repo / paths.manifest_path(dataset))
    image_root = repo / (paths.prepared_dir(dataset) if dataset == "synthetic" else "data/raw/tight")
    out: dict[str, float] = {}
    for run in ("cam-noaus", "cam-aus"):
        res = evaluate_model(repo / paths.model_path(run), manifest=manifest, image_root=image_root,
                             aumap_path=repo / paths.aumap_store(dataset), device="cpu", keep_maps=True,
                             faces_path=None if mode == "none" else repo / f"data/aligned/{dataset}.h5")
        cams = np.clip(res.cam_maps, 0, None)
        masks = border_masks(repo, dataset, side, res.sample_id, cams.shape[-1])
        out["border"] = float(np.median(masks.mean(axis=(1, 2))))
        out[f"{run}:cam_border"] = float(((cams * masks).sum((1, 2)) / np.maximum(cams.sum((1, 2)), 1e-12)).mean())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    ap.add_argument("--modes", nargs="+", default=["none", "similarity", "rigid", "auto"],
                    choices=["none", "similarity", "rigid", "auto"])
    args = ap.parse_args()
    results = []
    for name in args.sets:
        params, dataset, side = SETS[name]
        repo = args.workdir / name
        if not repo.exists():
            sh(["git", "clone", "-q", str(ROOT), str(repo)], args.workdir)
        if name == "tight":
            write_tight(repo, args.n)
        set_params(repo, {**COMMON, **params, "synthetic.n": args.n})
        for mode in args.modes:
            set_params(repo, {"align.mode": mode})
            t0 = time.time()
            sh(["dvc", "repro"], repo)
            m = {r: json.loads((repo / f"metrics/{r}.json").read_text()) for r in ("cam-noaus", "cam-aus")}
            store = repo / f"data/aligned/{dataset}.h5"
            framing = store_framing(store)
            row = {"set": name, "mode": mode, "picked": store_alignment(store).mode,
                   "head_height": framing.head_height if framing else None,
                   "minutes": round((time.time() - t0) / 60, 1), **border_numbers(repo, dataset, side, mode)}
            for r, v in m.items():
                row |= {f"{r}:cl": v["cl"], f"{r}:cam_cos": v["cam"]["cos"], f"{r}:att_cos": v["att"]["cos"]}
            results.append(row)
            print(json.dumps(row), flush=True)
    table = pd.DataFrame(results)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    (args.workdir / f"results-{'-'.join(args.sets)}.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
