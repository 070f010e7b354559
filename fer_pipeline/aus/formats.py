"""AU detector CSVs recognised by their columns (OpenFace 2.x, py-feat, a plain table), read as [0, 1] intensities.

- OpenFace 2.x (`FeatureExtraction` / `FaceLandmarkImg`): `AU01_r … AU45_r` intensities 0–5 (divided by 5) and
  `AU01_c …` presence 0/1 (used for an AU that has no `_r` column). Rows with `success` 0 are detector failures; where a
  sample has several rows (faces), the highest `confidence` wins. OpenFace has no AU16, AU24 or AU27: those stay NaN.
- py-feat (`Fex`): `AU01 … AU43` probabilities in [0, 1] (no AU16, AU27: NaN).
- plain: `sample_id, AU1, AU2, …` intensities in [0, 1] (what the synthetic generator writes).
Every format needs a `sample_id` column holding the manifest's ids. Only the codebook AUs (`AUS`) are kept.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fer_pipeline.core.codebook import ALL_AUS
from fer_pipeline.core.io import atomic_path

log = logging.getLogger(__name__)

#: The AUs a store holds, column j of `intensity` is AUS[j]: every AU any codebook uses (18).
AUS: tuple[int, ...] = ALL_AUS
_OPENFACE = re.compile(r"^AU(\d+)_([rc])$")
_PLAIN = re.compile(r"^AU(\d+)$")


@dataclass
class AuFile:
    """A parsed AU CSV: ids, (N, len(AUS)) float32 intensities in [0, 1] (NaN = unknown), a reason per bad row."""

    sample_id: list[str]
    intensity: np.ndarray
    reason: list[str]  # "" where the row is usable
    format: str  # openface | py-feat | plain


def plain_header() -> list[str]:
    """Columns of the plain format: `sample_id, AU1, …` (AUS)."""
    return ["sample_id", *(f"AU{a}" for a in AUS)]


def write_au_csv(path: str | Path, sample_ids: list[str], intensity: np.ndarray) -> None:
    """Write (N, len(AUS)) intensities in the plain format with fixed precision (byte-stable; NaN as an empty cell)."""
    df = pd.DataFrame(np.asarray(intensity, np.float64), columns=plain_header()[1:])
    df.insert(0, "sample_id", list(sample_ids))
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.4f", lineterminator="\n")


def detect_format(columns: list[str]) -> tuple[str, dict[int, str], float]:
    """(format name, AU -> column, scale dividing the values to [0, 1]) from the header; ValueError when no AU column."""
    openface = {c: _OPENFACE.match(c) for c in columns}
    if any(openface.values()):
        cols: dict[int, str] = {}
        for suffix in ("c", "r"):  # an intensity column wins over a presence column
            for c, m in openface.items():
                if m and m.group(2) == suffix:
                    cols[int(m.group(1))] = c
        return "openface", cols, 5.0
    plain = {int(m.group(1)): c for c in columns if (m := _PLAIN.match(c))}
    if plain:
        padded = all(len(c) >= 4 for c in plain.values())  # AU01 … (py-feat) vs AU1 … (plain)
        return ("py-feat" if padded else "plain"), plain, 1.0
    raise ValueError(
        f"no AU column found: expected OpenFace's AU01_r/AU01_c, py-feat's AU01 or plain AU1 columns; found {columns[:8]}"
        f"{'...' if len(columns) > 8 else ''}"
    )


def _row_values(raw: pd.DataFrame, cols: dict[int, str], scale: float) -> tuple[np.ndarray, list[str]]:
    """(N, len(AUS)) values divided by `scale` and a reason per row ("" = usable): non-numbers and values outside
    [0, scale] make the row invalid; a row with no value at all is invalid too."""
    n = len(raw)
    out = np.full((n, len(AUS)), np.nan, np.float64)
    reasons = [""] * n
    for j, au in enumerate(AUS):
        if au not in cols:
            continue
        text = raw[cols[au]]
        num = pd.to_numeric(text, errors="coerce").to_numpy(np.float64)
        bad_text = np.isnan(num) & text.notna().to_numpy() & (text.astype(str).str.strip() != "").to_numpy()
        with np.errstate(invalid="ignore"):
            out_of_range = (num < 0) | (num > scale) | np.isinf(num)
        for i in np.flatnonzero(bad_text | out_of_range):
            if not reasons[i]:
                value = text.iloc[i] if bad_text[i] else f"{num[i]:g}"
                reasons[i] = f"{cols[au]} = {value!r} is not a number in [0, {scale:g}]"
        out[:, j] = num / scale
    for i in np.flatnonzero(~np.isfinite(out).any(axis=1)):
        reasons[i] = reasons[i] or "no AU value (every codebook AU is empty)"
    out[[bool(r) for r in reasons]] = np.nan
    return out.astype(np.float32), reasons


def read_au_csv(path: str | Path) -> AuFile:
    """Read an AU CSV in any recognised format; one row per sample id (first row, or the most confident OpenFace face)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"AU file {path} not found")
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    raw.columns = [str(c).strip() for c in raw.columns]
    if "sample_id" not in raw.columns:
        raise ValueError(f"{path}: needs a sample_id column holding the manifest's ids (add it to the detector's output)")
    try:
        fmt, cols, scale = detect_format(list(raw.columns))
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    raw = raw.replace("", np.nan)
    values, reasons = _row_values(raw, cols, scale)
    if "success" in raw.columns:
        failed = pd.to_numeric(raw["success"], errors="coerce").fillna(0).to_numpy() == 0
        for i in np.flatnonzero(failed):
            reasons[i] = "detector failed (success = 0)"
        values[failed] = np.nan
    ids = raw["sample_id"].astype(str).str.strip().tolist()
    order = np.arange(len(ids))
    if "confidence" in raw.columns:  # most confident usable face first; stable, so ties keep file order
        conf = pd.to_numeric(raw["confidence"], errors="coerce").fillna(-np.inf).to_numpy()
        order = np.lexsort((np.arange(len(ids)), -conf, np.array([bool(r) for r in reasons])))
    seen: set[str] = set()
    keep = []
    for i in order:
        if ids[i] not in seen:
            seen.add(ids[i])
            keep.append(int(i))
    if len(keep) < len(ids):
        log.warning("%s: %d repeated sample ids: one row of each is used", path, len(ids) - len(keep))
    keep.sort()
    missing = [f"AU{a}" for a in AUS if a not in cols]
    if missing:
        log.info("%s (%s): no column for %s: those AUs stay NaN (unknown)", path, fmt, ", ".join(missing))
    return AuFile([ids[i] for i in keep], values[keep], [reasons[i] for i in keep], fmt)
