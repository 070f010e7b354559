"""`fer predict`'s driver: frame blocks of images in parallel (joblib), predict each block in batches, and stream one
CSV row per input (plus optional maps and figures) to temp files renamed into place only when the run completes."""

from __future__ import annotations

import csv
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from fer_pipeline.core.labels import LABELS
from fer_pipeline.explain import aumap_settings
from fer_pipeline.predict.frame import BAD_IMAGE, FALLBACK, NO_FACE, OK, FrameConfig, Framed, frame_rows
from fer_pipeline.predict.score import SCORE_COLUMNS, Scored, score_batch

#: The prediction CSV's columns: one row per input, in input order, whatever happened to it.
CSV_COLUMNS = (
    "sample_id",
    "path",
    "status",
    "reason",
    "label",
    "pred",
    "correct",
    *(f"prob_{name}" for name in LABELS),
    *SCORE_COLUMNS,
    "photo_h",
    "photo_w",
)


@dataclass
class Summary:
    """What a run did: counts per status, accuracy where labels were given, wall time and throughput."""

    n: int
    counts: dict[str, int]
    labelled: int
    correct: int
    seconds: float

    @property
    def images_per_s(self) -> float:
        """Input rows handled per second of wall time (reading, detection, landmarks, framing and inference)."""
        return self.n / self.seconds if self.seconds > 0 else float("nan")

    def line(self) -> str:
        """One log line: counts, accuracy, throughput."""
        counts = ", ".join(f"{k} {self.counts.get(k, 0)}" for k in (OK, FALLBACK, NO_FACE, BAD_IMAGE))
        acc = f"; accuracy {100.0 * self.correct / self.labelled:.2f} % on {self.labelled} labelled" if self.labelled else ""
        return f"{self.n} images ({counts}){acc}; {self.seconds:.1f} s, {self.images_per_s:.1f} img/s"


def _blocks(df: pd.DataFrame, rows: int) -> Iterator[pd.DataFrame]:
    for start in range(0, len(df), rows):
        yield df.iloc[start : start + rows]


def framed_blocks(df: pd.DataFrame, cfg: FrameConfig, n_jobs: int, block_rows: int) -> Iterator[list[Framed]]:
    """Framed rows block by block, in input order; n_jobs > 1 frames later blocks in worker processes meanwhile."""
    if n_jobs == 1:
        for block in _blocks(df, block_rows):
            yield frame_rows(block, cfg)
        return
    from joblib import Parallel, delayed

    yield from Parallel(n_jobs=n_jobs, return_as="generator")(delayed(frame_rows)(b, cfg) for b in _blocks(df, block_rows))


def csv_rows(block: pd.DataFrame, framed: list[Framed], scored: dict[int, tuple[Scored, int]]) -> list[list[Any]]:
    """CSV rows for one block: the prediction and scores where a face was framed, the status and reason everywhere."""
    out = []
    for i, (row, fr) in enumerate(zip(block.itertuples(index=False), framed, strict=True)):
        label = int(row.label)
        values: list[Any] = [row.sample_id, row.path, fr.status, fr.reason, LABELS[label] if label >= 0 else ""]
        if i in scored:
            sc, j = scored[i]
            pred = int(sc.pred[j])
            values += [LABELS[pred], int(pred == label) if label >= 0 else ""]
            values += [f"{p:.6f}" for p in sc.probs[j]]
            values += ["" if np.isnan(sc.scores[c][j]) else f"{sc.scores[c][j]:.6f}" for c in SCORE_COLUMNS]
        else:
            values += ["", ""] + [""] * (len(LABELS) + len(SCORE_COLUMNS))
        values += [fr.photo_hw[0] or "", fr.photo_hw[1] or ""]
        out.append(values)
    return out


def score_block(
    model: Any, framed: list[Framed], settings: dict[str, Any], device: Any, batch_size: int
) -> dict[int, tuple[Scored, int]]:
    """Score the block's framed faces in batches; maps block index -> (its batch result, its row in that batch)."""
    idx = [i for i, fr in enumerate(framed) if fr.face is not None]
    done: dict[int, tuple[Scored, int]] = {}
    for start in range(0, len(idx), batch_size):
        part = idx[start : start + batch_size]
        faces = np.stack([framed[i].face for i in part])
        points = np.stack([framed[i].points for i in part])
        sc = score_batch(model, faces, points, settings, device)
        done.update({i: (sc, j) for j, i in enumerate(part)})
    return done


def predict(
    source: str | Path,
    model_path: str | Path,
    out_csv: str | Path,
    *,
    maps_path: str | Path | None = None,
    figures_dir: str | Path | None = None,
    frame_cfg: FrameConfig | None = None,
    root: str | Path | None = None,
    split: str | None = None,
    batch_size: int = 64,
    n_jobs: int = 1,
    block_rows: int = 256,
    device: str = "auto",
    progress: bool = True,
) -> Summary:
    """Predict every image of a folder or manifest with a saved model; every input gets a CSV row (status + reason)."""
    from tqdm import tqdm

    from fer_pipeline.align import model_alignment
    from fer_pipeline.core.io import atomic_path
    from fer_pipeline.evaluate.run import resolve_device
    from fer_pipeline.models import load_model
    from fer_pipeline.predict.inputs import read_inputs
    from fer_pipeline.predict.outputs import FigureWriter, MapWriter

    t0 = time.perf_counter()
    df = read_inputs(source, root, split)
    dev = resolve_device(device)
    model, config = load_model(model_path, dev)
    model = model.to(memory_format=torch.channels_last)
    base = frame_cfg or FrameConfig()
    cfg = FrameConfig(base.detector, model_alignment(config), int(config["input_size"]))  # framed as in training
    settings = aumap_settings()
    counts: Counter[str] = Counter()
    labelled = correct = 0
    with ExitStack() as stack:
        tmp_csv = stack.enter_context(atomic_path(out_csv))
        fh = stack.enter_context(open(tmp_csv, "w", newline=""))
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        maps = stack.enter_context(MapWriter(maps_path, len(df), int(settings["size"]))) if maps_path else None
        figures = FigureWriter(figures_dir) if figures_dir else None
        bar = stack.enter_context(tqdm(total=len(df), unit="img", desc="predict", disable=not progress))
        starts = range(0, len(df), block_rows)
        for start, framed in zip(starts, framed_blocks(df, cfg, n_jobs, block_rows), strict=True):
            block = df.iloc[start : start + block_rows]
            scored = score_block(model, framed, settings, dev, batch_size)
            rows = csv_rows(block, framed, scored)
            writer.writerows(rows)
            counts.update(fr.status for fr in framed)
            labels = block["label"].to_numpy()
            for i, (sc, j) in scored.items():
                if labels[i] >= 0:
                    labelled += 1
                    correct += int(sc.pred[j] == labels[i])
            if maps is not None:
                maps.write(start, block, framed, scored)
            if figures is not None:
                figures.write(block, framed, scored)
            bar.update(len(block))
    return Summary(len(df), dict(counts), labelled, correct, time.perf_counter() - t0)
