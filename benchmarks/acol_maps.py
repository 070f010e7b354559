"""Which of ACoL's maps follows the AUs: a trained ACoL pair read on the test faces (no training).

    python benchmarks/acol_maps.py models/acol-noaus/model.pt models/acol-aus/model.pt

ACoL's CAM is the element-wise max of classifier A's and classifier B's min-max maps of the class. B learns from the
last-layer features erased where A's map of the true class reaches `erase_threshold`, so which features B reads at
evaluation decides its map: the published code (wsolevaluation's ACoL, and the paper's code,
`dlib/div_classifiers/parts/acol.py` `forward`) erases at evaluation too, by A's map of the class asked for. Per model,
on the test faces with an AU map, for the true class: CAM-COS (as the evaluation scores it) of A's map alone, of B's
on the unerased features and on the erased ones, and of the max of A with each B; the min-max map's mean on and off
the AU region (AU map >= 0.5 at the map's size) for A and for the erased B. Runs in a checkout after `dvc repro` (or
an experiment that trained ACoL); writes nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from probe import au_region, macro_cos, nanmean, on_off, test_batches

from fer_pipeline.core.io import load_params
from fer_pipeline.models.acol import erase
from fer_pipeline.models.maps import cosine, minmax, resize, select_class


def read(model_path: Path, params: dict) -> dict[str, float]:
    """The statistics above for one model."""
    model, batches = test_batches(model_path, params)
    threshold = float(model.opts["erase_threshold"])
    names = ("A", "B unerased", "max(A, B unerased)", "B erased", "max(A, B erased)")
    cos: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    region_means: dict[str, list[torch.Tensor]] = {f"{n} {side} AU": [] for n in ("A", "B erased") for side in ("on", "off")}
    labels = []
    with torch.no_grad():
        for x, au, y in batches:
            last = model.backbone(x)[-1]
            a = minmax(select_class(model.head.a(last), y))
            b_plain = minmax(select_class(model.head.b(last), y))
            b_erased = minmax(select_class(model.head.b(erase(last, a, threshold)), y))
            maps = {"A": a, "B unerased": b_plain, "max(A, B unerased)": minmax(torch.maximum(a, b_plain)),
                    "B erased": b_erased, "max(A, B erased)": minmax(torch.maximum(a, b_erased))}  # min-max: as scored
            for name, m in maps.items():
                cos[name].append(cosine(resize(m, tuple(au.shape[-2:])), au))
            region = au_region(au, a.shape[-2:])
            for name, m in (("A", a), ("B erased", b_erased)):
                on, off = on_off(m, region)
                region_means[f"{name} on AU"].append(on)
                region_means[f"{name} off AU"].append(off)
            labels.append(y)
    out = {f"CAM-COS {n}": macro_cos(v, labels) for n, v in cos.items()}
    return out | {n: nanmean(v) for n, v in region_means.items()} | {"erase_threshold": threshold}


def main(argv: list[str] | None = None) -> None:
    """Print the statistics of each model side by side (a row per statistic: the columns are the models)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", type=Path, help="ACoL model.pt files")
    args = ap.parse_args(argv)
    params = load_params(Path("params.yaml"))
    torch.set_num_threads(2)
    results = {str(p): read(p, params) for p in args.models}
    print("| statistic | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    for key in next(iter(results.values())):
        print(f"| {key} | " + " | ".join(f"{r[key]:.3f}" for r in results.values()) + " |")


if __name__ == "__main__":
    sys.exit(main())
