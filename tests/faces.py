"""Small synthetic face datasets for tests: images on disk, their real AU map store, and the manifest rows."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from fer_pipeline.aumaps.build import aumap_attrs
from fer_pipeline.aumaps.render import render_maps, to_uint8
from fer_pipeline.aumaps.store import write_aumap_store
from fer_pipeline.data.synthetic import SyntheticConfig, make_sample


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
