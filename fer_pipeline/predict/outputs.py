"""`fer predict`'s optional outputs: an HDF5 store of every row's maps (`--maps`) and one explanation PNG per face
(`--figures`), both in the row order of the prediction CSV."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from fer_pipeline.core.labels import LABELS
from fer_pipeline.predict.frame import Framed
from fer_pipeline.predict.score import Scored

#: Format version of the `--maps` store (attrs `format`).
MAPS_FORMAT = "fer_predict_maps/1"


class MapWriter:
    """`--maps` store: per input row its status, prediction, CAM, attention and predicted-class AU map (float16, NaN
    where no face was framed), the 68 points in face pixels and the photo -> face matrix. Written to a temp file, renamed
    on success."""

    def __init__(self, path: str | Path, n: int, size: int) -> None:
        self.path, self.n, self.size = Path(path), int(n), int(size)
        self._stack = ExitStack()

    def __enter__(self) -> MapWriter:
        from fer_pipeline.core.h5 import STR
        from fer_pipeline.core.io import atomic_path

        tmp = self._stack.enter_context(atomic_path(self.path))
        f = h5py.File(tmp, "w")
        self._stack.callback(f.close)  # closed before atomic_path renames it
        n, s = self.n, self.size
        maps = {"chunks": (1, s, s), "compression": "gzip", "fillvalue": np.nan}
        self.ds = {
            "sample_id": f.create_dataset("sample_id", (n,), dtype=STR),
            "status": f.create_dataset("status", (n,), dtype=STR),
            "pred": f.create_dataset("pred", (n,), dtype=np.int8, fillvalue=-1),
            "cam": f.create_dataset("cam", (n, s, s), dtype=np.float16, **maps),
            "att": f.create_dataset("att", (n, s, s), dtype=np.float16, **maps),
            "au": f.create_dataset("au", (n, s, s), dtype=np.float16, **maps),
            "has_map": f.create_dataset("has_map", (n,), dtype=bool),
            "points": f.create_dataset("points", (n, 68, 2), dtype=np.float32, fillvalue=np.nan),
            "matrix": f.create_dataset("matrix", (n, 2, 3), dtype=np.float64, fillvalue=np.nan),
        }
        f.attrs.update({"format": MAPS_FORMAT, "labels": ",".join(LABELS)})
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.__exit__(*exc)

    def write(self, start: int, block: pd.DataFrame, framed: list[Framed], scored: dict[int, tuple[Scored, int]]) -> None:
        """Rows start .. start + len(block) of the store."""
        stop = start + len(block)
        self.ds["sample_id"][start:stop] = block["sample_id"].astype(str).tolist()
        self.ds["status"][start:stop] = [fr.status for fr in framed]
        for i, fr in enumerate(framed):
            if i not in scored:
                continue
            sc, j = scored[i]
            r = start + i
            self.ds["pred"][r] = int(sc.pred[j])
            for name, arr in (("cam", sc.cam), ("att", sc.att), ("au", sc.au)):
                self.ds[name][r] = arr[j].astype(np.float16)
            self.ds["has_map"][r] = bool(sc.has_map[j])
            self.ds["points"][r] = fr.points
            self.ds["matrix"][r] = fr.matrix


class FigureWriter:
    """`--figures DIR`: `<sample_id>.png` per framed face -- the photo with the framed square and the 68 points, then
    the face with the predicted class's AU map, the CAM and the attention (the `fer explain` figure)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def write(self, block: pd.DataFrame, framed: list[Framed], scored: dict[int, tuple[Scored, int]]) -> None:
        """One PNG per scored row of the block."""
        from fer_pipeline.data.images import read_image
        from fer_pipeline.evaluate.figures import explain_figure, save_figure
        from fer_pipeline.explain import framed_region

        for i, (row, fr) in enumerate(zip(block.itertuples(index=False), framed, strict=True)):
            if i not in scored:
                continue
            sc, j = scored[i]
            pred = int(sc.pred[j])
            box = framed_region(fr.matrix, fr.face.shape[0])
            title = f"{row.sample_id}: {LABELS[pred]} ({sc.probs[j, pred]:.0%})"
            au: Any = sc.au[j] if sc.has_map[j] else None
            fig = explain_figure(read_image(row.path), box, fr.photo_points, fr.face, au, sc.cam[j], sc.att[j], title)
            save_figure(fig, self.folder / f"{row.sample_id}.png")
