"""Landmarks computed elsewhere (`sample_id, x0..x67, y0..y67` CSV): parsed, validated, aligned to the manifest."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from fer_pipeline.landmarks.store import N_POINTS, Status

log = logging.getLogger(__name__)


def _point_columns(columns: list[str]) -> tuple[list[str], list[str]] | None:
    """x/y column names in point order: ours (`x0..x67`) or OpenFace's (`x_0..x_67`); None when neither is complete."""
    for fmt in ("{}{}", "{}_{}"):
        xs = [fmt.format("x", i) for i in range(N_POINTS)]
        ys = [fmt.format("y", i) for i in range(N_POINTS)]
        if set(xs + ys) <= set(columns):
            return xs, ys
    return None


def read_points_csv(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Read an import CSV into ids and (N,68,2) float32; a wrong header names the file and the expected columns.

    Columns `sample_id` and `x0..x67, y0..y67` or OpenFace's `x_0..x_67, y_0..y_67` (its padded names are stripped).
    OpenFace rows with `success` 0 are skipped; where a sample has several rows (faces), the highest `confidence` wins.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"landmark file {path} not found")
    df = pd.read_csv(path, dtype={"sample_id": str}, keep_default_na=True, skipinitialspace=True)
    df.columns = [str(c).strip() for c in df.columns]
    cols = _point_columns(list(df.columns))
    if "sample_id" not in df.columns or cols is None:
        raise ValueError(
            f"{path}: needs a sample_id column and 68 x/y columns (x0..x67, y0..y67 or OpenFace's x_0..x_67, y_0..y_67); "
            f"found {list(df.columns)[:8]}{'...' if len(df.columns) > 8 else ''}"
        )
    if "success" in df.columns:
        failed = pd.to_numeric(df["success"], errors="coerce").fillna(0).to_numpy() == 0
        if failed.any():
            log.warning(
                "%s: %d rows with success=0 skipped (e.g. sample %s)", path, int(failed.sum()), df["sample_id"][failed].iloc[0]
            )
        df = df[~failed]
    if "confidence" in df.columns and df["sample_id"].duplicated().any():
        df = df.sort_values("confidence", ascending=False, kind="stable").drop_duplicates("sample_id", keep="first").sort_index()
    dup = df["sample_id"].duplicated(keep="first")
    if dup.any():
        log.warning(
            "%s: %d repeated sample ids (e.g. %s): the first row of each is used",
            path,
            int(dup.sum()),
            df["sample_id"][dup].iloc[0],
        )
        df = df[~dup]
    return df["sample_id"].astype(str).tolist(), _points_of(df, cols)


def _points_of(df: pd.DataFrame, cols: tuple[list[str], list[str]]) -> np.ndarray:
    """(N,68,2) float32 from the x and y columns `cols`."""
    xs, ys = cols
    return np.stack([df[xs].to_numpy(np.float64), df[ys].to_numpy(np.float64)], axis=-1).astype(np.float32)


class PointsSource:
    """A landmark file (import CSV/NPZ, or the synthetic ground truth) served block by block in manifest order.

    A CSV in our or OpenFace's columns (no `success`/`confidence` filtering to do) whose rows follow the manifest, as
    prepare writes the synthetic ground truth, is streamed: memory of a block, not of N. Any other file, or the first
    block whose ids are not the file's next rows, makes it read the whole file once (`read_points_file`: ids and
    float32 points, ~0.6 KB a row) and look rows up by id from then on.
    """

    #: Rows parsed per read while streaming.
    READ_ROWS = 4096

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"landmark file {self.path} not found")
        self._index: dict[str, int] | None = None
        self._points = np.zeros((0, N_POINTS, 2), np.float32)
        self._ids: list[str] = []
        self._reader: Iterator[pd.DataFrame] | None = None
        self._cols: tuple[list[str], list[str]] | None = None
        if self.path.suffix.lower() in (".csv", ".txt"):
            head = [str(c).strip() for c in pd.read_csv(self.path, nrows=0, skipinitialspace=True).columns]
            self._cols = _point_columns(head)
            if self._cols is not None and "sample_id" in head and not {"success", "confidence"} & set(head):
                self._reader = iter(pd.read_csv(self.path, dtype={"sample_id": str}, keep_default_na=True,
                                                skipinitialspace=True, chunksize=self.READ_ROWS))
        if self._reader is None:
            self._read_whole()

    def _read_whole(self) -> None:
        """Switch to lookup by id over the whole file."""
        ids, self._points = read_points_file(self.path)
        self._ids, self._reader = ids, None
        self._index = {s: i for i, s in enumerate(ids)}

    def take(self, sample_ids: list[str]) -> tuple[list[str], np.ndarray]:
        """(ids, (k,68,2) points) the file has for `sample_ids` (the block's ids, in order; missing ones left out)."""
        if self._reader is not None:
            while len(self._ids) < len(sample_ids):
                chunk = next(self._reader, None)
                if chunk is None:
                    break
                chunk.columns = [str(c).strip() for c in chunk.columns]
                assert self._cols is not None
                self._ids += chunk["sample_id"].astype(str).tolist()
                self._points = np.concatenate([self._points, _points_of(chunk, self._cols)])
            k = len(sample_ids)
            if self._ids[:k] == list(sample_ids):
                ids, pts = self._ids[:k], self._points[:k]
                self._ids, self._points = self._ids[k:], self._points[k:]
                return ids, pts
            log.info("%s: rows do not follow the manifest from sample %s on: reading the whole file", self.path,
                     sample_ids[0] if sample_ids else "?")
            self._read_whole()
        assert self._index is not None
        found = [s for s in sample_ids if s in self._index]
        return found, self._points[[self._index[s] for s in found]].reshape(len(found), N_POINTS, 2)


def read_points_npz(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Read an import NPZ: `sample_id` (N,) str and `landmarks` (N,68,2) x,y (a z column, from SynergyNet/3DDFA, is dropped)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"landmark file {path} not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            ids, pts = z["sample_id"], z["landmarks"]
    except KeyError:
        raise ValueError(f"{path}: needs arrays 'sample_id' (N,) and 'landmarks' (N,68,2)") from None
    except ValueError as e:  # object arrays need pickles, which are refused
        raise ValueError(f"{path}: {e}; save sample_id as a unicode array (np.array(ids, dtype=str))") from None
    if pts.ndim != 3 or pts.shape[1] != N_POINTS or pts.shape[2] not in (2, 3) or len(ids) != len(pts):
        raise ValueError(
            f"{path}: landmarks must be (N,68,2) or (N,68,3) with N = len(sample_id); got {pts.shape} for {len(ids)} ids"
        )
    return [str(s) for s in ids], pts[:, :, :2].astype(np.float32)


def read_points_file(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Read landmarks computed elsewhere from a CSV or an NPZ (by suffix)."""
    path = Path(path)
    if path.suffix.lower() == ".npz":
        return read_points_npz(path)
    if path.suffix.lower() in (".csv", ".txt"):
        return read_points_csv(path)
    raise ValueError(f"{path}: landmark files must be .csv or .npz")


def validate_points(points: np.ndarray, image_size: np.ndarray, margin: float = 0.1) -> tuple[np.ndarray, list[str]]:
    """Per row: valid flag and reason; points must be finite and inside the image (± `margin` of its size)."""
    n = len(points)
    ok = np.ones(n, dtype=bool)
    reasons = [""] * n
    finite = np.isfinite(points).all(axis=(1, 2))
    h = image_size[:, 0:1].astype(np.float32)
    w = image_size[:, 1:2].astype(np.float32)
    with np.errstate(invalid="ignore"):
        inside = (
            (points[:, :, 0] >= -margin * w)
            & (points[:, :, 0] <= (1 + margin) * w)
            & (points[:, :, 1] >= -margin * h)
            & (points[:, :, 1] <= (1 + margin) * h)
        ).all(axis=1)
    given = np.isfinite(points).any(axis=2).sum(axis=1)  # points with at least one coordinate
    for i in range(n):
        if not finite[i] and given[i] < points.shape[1]:
            ok[i], reasons[i] = False, f"non-finite coordinate (only {given[i]} of {points.shape[1]} points)"
        elif not finite[i]:
            ok[i], reasons[i] = False, "non-finite coordinate"
        elif image_size[i].min() <= 0:
            ok[i], reasons[i] = False, "image unreadable"
        elif not inside[i]:
            ok[i], reasons[i] = False, "point outside the image"
    return ok, reasons


def align_to_manifest(
    sample_ids: list[str], ids: list[str], points: np.ndarray, image_size: np.ndarray, source: str, ok_status: Status
) -> tuple[np.ndarray, np.ndarray]:
    """Points and statuses in manifest order: missing or invalid rows become INVALID_IMPORT (reason logged)."""
    out, status, _ = align_with_reasons(sample_ids, ids, points, image_size, source, ok_status)
    return out, status


def align_with_reasons(
    sample_ids: list[str],
    ids: list[str],
    points: np.ndarray,
    image_size: np.ndarray,
    source: str,
    ok_status: Status,
    rows_in_manifest: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """`align_to_manifest` plus each row's reason ("" when valid): for the store's `reason` column and the stage summary.
    `rows_in_manifest`: each sample's 0-based manifest row, for the log (default: its position in `sample_ids`)."""
    index = {s: i for i, s in enumerate(ids)}
    out = np.full((len(sample_ids), N_POINTS, 2), np.nan, dtype=np.float32)
    status = np.full(len(sample_ids), int(Status.INVALID_IMPORT), dtype=np.uint8)
    rows = np.array([index.get(s, -1) for s in sample_ids], dtype=np.int64)
    have = rows >= 0
    out[have] = points[rows[have]]
    valid, reasons = validate_points(out, image_size)
    at = np.arange(len(sample_ids)) if rows_in_manifest is None else np.asarray(rows_in_manifest)
    for i, sid in enumerate(sample_ids):
        if not have[i]:
            reasons[i] = "no landmarks row"
            log.warning("%s: no landmarks for sample %s (manifest row %d): status invalid_import", source, sid, at[i] + 2)
        elif reasons[i]:
            log.warning("%s: sample %s (manifest row %d): %s: status invalid_import", source, sid, at[i] + 2, reasons[i])
    good = have & valid
    status[good] = int(ok_status)
    out[~good] = np.nan
    return out, status, [r if not g else "" for r, g in zip(reasons, good, strict=True)]
