"""The landmarks stage: one small class per backend behind one protocol, chosen by `landmarks.backend`."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from fer_pipeline import __version__
from fer_pipeline.core import paths
from fer_pipeline.core.cluster import dask_client
from fer_pipeline.core.io import file_sha256
from fer_pipeline.data.affectnet import BOX_COLUMNS
from fer_pipeline.data.probe import ImageCheck, probe_images
from fer_pipeline.landmarks import dlib68
from fer_pipeline.landmarks.importer import PointsSource, align_with_reasons
from fer_pipeline.landmarks.parallel import run_images
from fer_pipeline.landmarks.store import LandmarkTable, Status

log = logging.getLogger(__name__)
#: Manifest columns with a face box (x, y, width, height), written by the AffectNet adapter.


def with_points(
    manifest: pd.DataFrame,
    check: ImageCheck,
    ids: list[str],
    points: np.ndarray,
    source: str,
    ok_status: Status,
    first_row: int = 0,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Points, statuses and reasons in manifest order from (ids, points) computed elsewhere: rows whose image failed
    the check are UNREADABLE with the check's reason; the others are validated against their decoded size
    (`first_row`: the manifest row of `manifest`'s first row, for the log)."""
    rows = manifest["sample_id"].tolist()
    good = np.flatnonzero(check.ok)
    out = np.full((len(rows), 68, 2), np.nan, dtype=np.float32)
    status = np.full(len(rows), int(Status.UNREADABLE), dtype=np.uint8)
    reason = list(check.reasons)
    sub = [rows[i] for i in good]
    out[good], status[good], why = align_with_reasons(sub, ids, points, check.sizes[good], source, ok_status, first_row + good)
    for i, r in zip(good, why, strict=True):
        reason[i] = r
    return out, status, reason


def explain_unreadable(table: LandmarkTable, manifest: pd.DataFrame, root: Path) -> LandmarkTable:
    """Give UNREADABLE rows that a backend left without a reason the image check's reason (only those are re-read)."""
    todo = [i for i, (s, r) in enumerate(zip(table.status, table.reason or [], strict=True)) if s == Status.UNREADABLE and not r]
    if todo:
        check = probe_images([str(manifest["path"].iloc[i]) for i in todo], root)
        reason = list(table.reason or [])
        for i, r in zip(todo, check.reasons, strict=True):
            reason[i] = r or "unreadable"
        table.reason = reason
    return table


def jitter(points: np.ndarray, noise: float, seed: int, rows: np.ndarray | None = None) -> np.ndarray:
    """Add Gaussian noise of std `noise` × inter-ocular distance (a stand-in for detector error), seeded per manifest
    row (`rows`, default 0..N-1), so a row's noise does not depend on how the stage splits the manifest into blocks."""
    if noise <= 0 or not len(points):
        return points
    eyes_r = np.nanmean(points[:, 36:42], axis=1)
    eyes_l = np.nanmean(points[:, 42:48], axis=1)
    iod = np.linalg.norm(eyes_l - eyes_r, axis=1)[:, None, None]
    at = np.arange(len(points)) if rows is None else np.asarray(rows)
    draws = np.stack(
        [np.random.default_rng([int(seed), int(r)]).standard_normal((68, 2)) for r in at]
    ).reshape(points.shape).astype(np.float32)
    return (points + draws * noise * iod).astype(np.float32)


class Backend(Protocol):
    """A landmark backend: 68 points, a status and the image size for every manifest row, in manifest order."""

    def extract(self, manifest: pd.DataFrame, root: Path, first_row: int = 0) -> LandmarkTable:
        """The store table for `manifest`, rows `first_row`.. of the stage's manifest (image paths relative to `root`).
        The stage calls it block after block on one backend object, in manifest order."""
        ...


def imported_table(
    manifest: pd.DataFrame, root: Path, file: Path | PointsSource, attrs: dict[str, Any], first_row: int = 0
) -> LandmarkTable:
    """Landmarks read from `file`, validated against each image's size, status 4 (imported) or 5 (invalid, reason logged)."""
    check = probe_images(manifest["path"].tolist(), root)  # decoded once, as training will: bad images become status 2
    source = file if isinstance(file, PointsSource) else PointsSource(file)
    ids = manifest["sample_id"].tolist()
    file_ids, points = source.take(ids)
    points, status, reason = with_points(manifest, check, file_ids, points, str(source.path), Status.IMPORTED, first_row)
    attrs = {**attrs, "fer_pipeline_version": __version__}
    return LandmarkTable(ids, points, check.sizes, status, attrs, reason)


def sha256_of(path: Path) -> str:
    """sha256 of an input file (recorded in the store attributes)."""
    return file_sha256(path)


class SyntheticBackend:
    """The generator's ground truth (`landmarks_gt.csv` beside the images), optionally jittered."""

    def __init__(self, noise: float = 0.0, seed: int = 0, n_jobs: int = 1, chunk_size: int = 1024) -> None:
        self.noise, self.seed, self.n_jobs, self.chunk_size = float(noise), int(seed), int(n_jobs), int(chunk_size)
        self._source: PointsSource | None = None

    def extract(self, manifest: pd.DataFrame, root: Path, first_row: int = 0) -> LandmarkTable:
        from fer_pipeline.core.paths import GT_LANDMARKS

        # Every image is decoded once (the reader training uses): unusable ones become UNREADABLE with a reason.
        check = probe_images(manifest["path"].tolist(), root, n_jobs=self.n_jobs, chunk_size=self.chunk_size)
        if self._source is None or first_row == 0:  # streamed in manifest order; a new pass starts over
            self._source = PointsSource(root / GT_LANDMARKS)
        ids = manifest["sample_id"].tolist()
        gt_ids, gt = self._source.take(ids)
        row_of = {sid: first_row + i for i, sid in enumerate(ids)}
        gt = jitter(gt, self.noise, self.seed, np.array([row_of[s] for s in gt_ids], dtype=np.int64))
        points, status, reason = with_points(manifest, check, gt_ids, gt, str(root / GT_LANDMARKS), Status.OK, first_row)
        attrs = {"backend": "synthetic", "noise": self.noise, "fer_pipeline_version": __version__}
        return LandmarkTable(ids, points, check.sizes, status, attrs, reason)


class ImportBackend:
    """Landmarks computed elsewhere (SynergyNet, OpenFace, 3DDFA) from a CSV or NPZ file."""

    def __init__(self, file: Path) -> None:
        self.file = Path(file)
        self._source: PointsSource | None = None
        if self.file.resolve().parent != paths.IMPORT_DIR.resolve():
            log.warning("%s is outside %s/: DVC does not track it (edits will not rerun landmarks)", self.file, paths.IMPORT_DIR)

    def extract(self, manifest: pd.DataFrame, root: Path, first_row: int = 0) -> LandmarkTable:
        if not self.file.is_file():
            raise FileNotFoundError(f"landmark file {self.file} not found: run `fer landmarks import FILE` or set landmarks.file")
        if self._source is None or first_row == 0:
            self._source = PointsSource(self.file)
            self._sha = sha256_of(self.file)
        attrs = {"backend": "import", "source_file": self.file.name, "source_sha256": self._sha}
        return imported_table(manifest, root, self._source, attrs, first_row)


class DatasetBackend:
    """Landmarks shipped by the dataset (AffectNet's `facial_landmarks`), which prepare wrote beside the manifest."""

    def __init__(self, prepared: Path) -> None:
        from fer_pipeline.core.paths import DATASET_LANDMARKS

        self.file = Path(prepared) / DATASET_LANDMARKS
        self._source: PointsSource | None = None

    def extract(self, manifest: pd.DataFrame, root: Path, first_row: int = 0) -> LandmarkTable:
        if not self.file.exists():
            raise FileNotFoundError(
                f"{self.file} not found: this dataset ships no landmarks; use landmarks.backend dlib68 or import"
            )
        if self._source is None or first_row == 0:
            self._source = PointsSource(self.file)
            self._sha = sha256_of(self.file)
        return imported_table(manifest, root, self._source, {"backend": "dataset", "source_sha256": self._sha}, first_row)


class Dlib68Backend:
    """dlib's 68-point shape predictor behind HOG / Haar / the dataset box; joblib over fixed chunks."""

    def __init__(
        self,
        cfg: dlib68.Dlib68Config,
        n_jobs: int = 1,
        chunk_size: int = 256,
        joblib_backend: str = "loky",
        progress: bool = True,
    ) -> None:
        self.cfg, self.n_jobs, self.chunk_size, self.joblib_backend = cfg, int(n_jobs), int(chunk_size), str(joblib_backend)
        self.progress = bool(progress)
        self._stack = contextlib.ExitStack()
        self._client: Any = None

    def client(self) -> Any:
        """The dask Client, opened at the first block and kept for the rest (a LocalCluster starts once per stage)."""
        if self.joblib_backend != "dask":
            return None
        if self._client is None:
            self._client = self._stack.enter_context(dask_client(self.n_jobs))
        return self._client

    def close(self) -> None:
        """Close the dask Client (and the LocalCluster the stage started), if any."""
        self._client = None
        self._stack.close()

    def extract(self, manifest: pd.DataFrame, root: Path, first_row: int = 0) -> LandmarkTable:
        boxes = None
        if all(c in manifest.columns for c in BOX_COLUMNS):
            boxes = manifest[list(BOX_COLUMNS)].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
        points, sizes, status = run_images(
            manifest["path"].tolist(),
            boxes,
            root,
            self.cfg,
            n_jobs=self.n_jobs,
            chunk_size=self.chunk_size,
            joblib_backend_name=self.joblib_backend,
            progress=self.progress,
            client=self.client(),
        )
        attrs = {**dlib68.attrs(self.cfg), "fer_pipeline_version": __version__}
        return LandmarkTable(manifest["sample_id"].tolist(), points, sizes, status, attrs)


def _as_list(value: Any) -> tuple[str, ...]:
    """A params list that `dvc exp run -S` may have turned into a string (`"[haar, whole]"`, `"haar,whole"`)."""
    if isinstance(value, str):
        return tuple(v.strip(" '\"") for v in value.strip("[]").split(",") if v.strip(" '\""))
    return tuple(str(v) for v in (value or ()))


def import_file(params: dict[str, Any], dataset: str) -> Path:
    """`landmarks.file`, or `data/import/<dataset>.csv` (what `fer landmarks import` writes) when empty."""
    file = str(params.get("file") or "")
    return Path(file) if file else paths.landmark_import(dataset)


BACKENDS: dict[str, Callable[[dict[str, Any], str, Path], Backend]] = {
    "synthetic": lambda p, dataset, prepared: SyntheticBackend(
        p.get("noise", 0.0), p.get("seed", 0), n_jobs=p.get("n_jobs", 1), chunk_size=p.get("chunk_size", 1024)
    ),
    "dlib68": lambda p, dataset, prepared: Dlib68Backend(
        dlib68.Dlib68Config(
            str(p.get("detector", "hog")),
            _as_list(p.get("fallback", ["haar"])),
            detect_max_side=int(p.get("detect_max_side", dlib68.DETECT_MAX_SIDE)),
        ),
        n_jobs=p.get("n_jobs", 1),
        chunk_size=p.get("chunk_size", 256),
        joblib_backend=p.get("backend_joblib", "loky"),
    ),
    "import": lambda p, dataset, prepared: ImportBackend(import_file(p, dataset)),
    "dataset": lambda p, dataset, prepared: DatasetBackend(prepared),
}


def make_backend(params: dict[str, Any], dataset: str, prepared: Path) -> Backend:
    """The backend named by `landmarks.backend`; unknown names list the valid ones."""
    name = str(params["backend"])
    if name not in BACKENDS:
        raise ValueError(f"landmarks.backend={name!r} is not supported; valid: {', '.join(BACKENDS)}")
    return BACKENDS[name](params, dataset, prepared)


def extract_landmarks(manifest: pd.DataFrame, root: Path, params: dict[str, Any], *, dataset: str = "synthetic") -> LandmarkTable:
    """Run `landmarks.backend` over the manifest of `dataset` (images under `root`); every unusable image is status 2
    with a reason (missing, empty, unreadable, too_large, too_small, outside_root)."""
    table = make_backend(params, dataset, paths.prepared_dir(dataset)).extract(manifest, Path(root))
    return explain_unreadable(table, manifest, Path(root))
