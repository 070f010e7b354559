"""Small synthetic face datasets for tests: images on disk, their real AU map store, and the manifest rows."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from fer_pipeline.aumaps.build import aumap_attrs
from fer_pipeline.aumaps.render import render_maps, to_uint8
from fer_pipeline.aumaps.store import write_aumap_store
from fer_pipeline.core.labels import NUM_CLASSES
from fer_pipeline.data.synthetic import SyntheticConfig, make_sample
from fer_pipeline.inputs import IMAGENET_MEAN, IMAGENET_STD


def write_faces(
    root: Path,
    labels: np.ndarray,
    split: np.ndarray,
    *,
    size: int,
    prefix: str,
    seed: int = 0,
    shortcut: bool = False,
    folder: str = "images",
) -> tuple[pd.DataFrame, np.ndarray]:
    """Generate one face per label as `<root>/<folder>/<prefix>NNN.png` and the AU maps as `<root>/aumaps.h5`;
    returns the manifest rows (`sample_id, path, label, split, cue`) and the (N,68,2) ground-truth landmarks."""
    (root / folder).mkdir(parents=True, exist_ok=True)
    n = len(labels)
    cfg = SyntheticConfig(size=size, shortcut=shortcut)
    ids = [f"{prefix}{i:03d}" for i in range(n)]
    points, cues = np.empty((n, 68, 2), np.float32), np.empty(n, np.int64)
    for i in range(n):
        s = make_sample(seed, i, int(labels[i]), str(split[i]), cfg)
        points[i], cues[i] = s.landmarks, s.cue
        cv2.imwrite(str(root / folder / f"{ids[i]}.png"), cv2.cvtColor(s.image, cv2.COLOR_RGB2BGR))
    maps, has_map = render_maps(points, np.tile([size, size], (n, 1)), labels)
    write_aumap_store(root / "aumaps.h5", ids, to_uint8(maps), has_map, aumap_attrs("reference", 56, 0.25, 0.5))
    paths = [f"{folder}/{s}.png" for s in ids]
    return pd.DataFrame({"sample_id": ids, "path": paths, "label": labels, "split": split, "cue": cues}), points


def face_tensors(n: int, *, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """n synthetic faces in memory, labels cycling over the classes: normalised images (n,3,size,size), labels (n,),
    their AU maps (n,56,56) in [0, 1] and has_map (n,) -- for tests that train a few steps without files."""
    cfg = SyntheticConfig(size=size)
    labels = np.arange(n) % NUM_CLASSES
    samples = [make_sample(seed, i, int(labels[i]), "train", cfg) for i in range(n)]
    maps, has_map = render_maps(np.stack([s.landmarks for s in samples]), np.tile([size, size], (n, 1)), labels)
    x = torch.from_numpy(np.stack([s.image for s in samples])).permute(0, 3, 1, 2).float() / 255.0
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std, torch.from_numpy(labels).long(), torch.from_numpy(maps).float(), torch.from_numpy(has_map)
