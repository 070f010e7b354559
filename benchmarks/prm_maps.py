"""Where PRM's class evidence lies, without and with AUs: a trained PRM pair read on the test faces (no training).

    python benchmarks/prm_maps.py models/prm-noaus/model.pt models/prm-aus/model.pt [--cam models/cam-aus/model.pt]

PRM's logit is the mean of the class response map's (CRM) 3 x 3 window maxima (`pooling: local_max`), so only the
positions that are some window's maximum receive the class gradient. Per model, on the test faces with an AU map, for
the true class: CAM-COS (min-max CRM vs the AU map, as the evaluation scores it), the share of the map's positions that
receive gradient, the share of those on the AU region (AU map >= 0.5 at the CRM's size) against the AU region's share
of the map, and the min-max CRM's mean on and off the AU region. Runs in a checkout after `dvc repro` (or an experiment
that trained PRM); writes nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from probe import au_region, macro_cos, nanmean, on_off, test_batches

from fer_pipeline.core.io import load_params
from fer_pipeline.models.maps import cosine, minmax, resize


def window_argmax(crm: torch.Tensor, k: int) -> torch.Tensor:
    """bool (B, h, w): positions that are the maximum of at least one k x k stride-1 window (no padding)."""
    b, h, w = crm.shape
    _, idx = F.max_pool2d(crm[:, None], kernel_size=k, stride=1, return_indices=True)
    mask = torch.zeros(b, h * w, dtype=torch.bool)
    mask.scatter_(1, idx.flatten(1), True)
    return mask.view(b, h, w)


def read(model_path: Path, params: dict) -> dict[str, float]:
    """The statistics above for one model."""
    model, batches = test_batches(model_path, params)
    cos, labels, grad, on_grad, region_share, on, off = [], [], [], [], [], [], []
    k = int(model.opts.get("win_size", 1))  # CAM: every position is its own 1 x 1 window
    with torch.no_grad():
        for x, au, y in batches:
            out = model(x, layers=())
            crm = out.cams[torch.arange(len(y)), y]  # the true class's raw map (B, h, w)
            cos.append(cosine(resize(model.class_cam(x, y, out), tuple(au.shape[-2:])), au))  # as the evaluation scores it
            labels.append(y)
            region = au_region(au, crm.shape[-2:])
            g = window_argmax(crm, min(k, *crm.shape[-2:]))
            grad.append(g.float().mean(dim=(1, 2)))
            on_grad.append((g & region).sum(dim=(1, 2)) / g.sum(dim=(1, 2)))
            region_share.append(region.float().mean(dim=(1, 2)))
            on_cam, off_cam = on_off(minmax(crm), region)
            on.append(on_cam)
            off.append(off_cam)
    return {"CAM-COS": macro_cos(cos, labels), "positions with gradient": nanmean(grad),
            "of them on the AU region": nanmean(on_grad), "AU region's share of the map": nanmean(region_share),
            "CAM on the AU region": nanmean(on), "CAM off it": nanmean(off), "map side": float(crm.shape[-1])}


def main(argv: list[str] | None = None) -> None:
    """Print the statistics of each model side by side."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", type=Path, help="model.pt files (PRM; --cam adds a CAM model for reference)")
    ap.add_argument("--cam", type=Path, action="append", default=[], help="a CAM model.pt read the same way")
    args = ap.parse_args(argv)
    params = load_params(Path("params.yaml"))
    torch.set_num_threads(2)
    results = {str(p): read(p, params) for p in [*args.models, *args.cam]}
    keys = list(next(iter(results.values())))
    print("| model | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for name, r in results.items():
        print(f"| {name} | " + " | ".join(f"{r[k]:.3f}" for k in keys) + " |")


if __name__ == "__main__":
    sys.exit(main())
