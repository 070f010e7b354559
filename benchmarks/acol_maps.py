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

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from fer_pipeline.align.store import stage_inputs
from fer_pipeline.core import paths
from fer_pipeline.core.io import load_params
from fer_pipeline.data.datasets import image_root
from fer_pipeline.data.manifest import read_manifest
from fer_pipeline.evaluate.metrics import au_macro, per_class_mean
from fer_pipeline.inputs.dataset import FERDataset, collate
from fer_pipeline.models import load_model
from fer_pipeline.models.acol import erase
from fer_pipeline.models.maps import cosine, minmax, resize, select_class


def read(model_path: Path, params: dict) -> dict[str, float]:
    """The statistics above for one model."""
    model, config = load_model(model_path, torch.device("cpu"))
    dataset = params["data"]["dataset"]
    _, faces, _ = stage_inputs(params.get("align") or {}, dataset)
    rows = read_manifest(paths.manifest_path(dataset))
    rows = rows[rows["split"] == "test"]
    ds = FERDataset(rows, image_root(params["data"], dataset), paths.aumap_store(dataset), int(config["input_size"]),
                    mean=model.mean, std=model.std, faces_path=faces)
    threshold = float(model.opts["erase_threshold"])
    names = ("A", "B unerased", "max(A, B unerased)", "B erased", "max(A, B erased)")
    cos: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    region_means: dict[str, list[torch.Tensor]] = {n: [] for n in ("A on AU", "A off AU", "B erased on AU",
                                                                     "B erased off AU")}
    labels = []
    model.eval()
    with torch.no_grad():
        for x, au, has, y, _ in DataLoader(ds, batch_size=64, collate_fn=collate):
            x, au, y = x[has], au[has], y[has]
            last = model.backbone(x)[-1]
            a = minmax(select_class(model.head.a(last), y))
            b_plain = minmax(select_class(model.head.b(last), y))
            b_erased = minmax(select_class(model.head.b(erase(last, a, threshold)), y))
            maps = {"A": a, "B unerased": b_plain, "max(A, B unerased)": minmax(torch.maximum(a, b_plain)),
                    "B erased": b_erased, "max(A, B erased)": minmax(torch.maximum(a, b_erased))}  # min-max: as scored
            for name, m in maps.items():
                cos[name].append(cosine(resize(m, tuple(au.shape[-2:])), au))
            region = F.interpolate(au[:, None], size=a.shape[-2:], mode="bilinear", antialias=True)[:, 0] >= 0.5
            nan = a.new_tensor(float("nan"))
            for name, m in (("A", a), ("B erased", b_erased)):
                region_means[f"{name} on AU"].append(
                    torch.stack([c[r].mean() if r.any() else nan for c, r in zip(m, region, strict=True)]))
                region_means[f"{name} off AU"].append(
                    torch.stack([c[~r].mean() if (~r).any() else nan for c, r in zip(m, region, strict=True)]))
            labels.append(y)
    y_all = torch.cat(labels).numpy()
    ones = np.ones_like(y_all, dtype=bool)
    out = {f"CAM-COS {n}": au_macro(per_class_mean(torch.cat(v).numpy(), y_all, ones)) for n, v in cos.items()}
    out |= {n: float(np.nanmean(torch.cat(v).numpy())) for n, v in region_means.items()}
    return out | {"erase_threshold": threshold}


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
