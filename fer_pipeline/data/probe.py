"""Check every manifest image once (the same reader training uses): its size, or why it cannot be used.

A bad file (missing, empty, corrupt, truncated, not an image, too large, too small, or a path outside the data
root) becomes a reason string per row, never an exception mid-run: the landmarks stage turns it into status 2
and the training/evaluation stages skip (and count) those rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed

from fer_pipeline.core.paths import resolve_inside
from fer_pipeline.data.images import ImageError, read_image

#: Reason of a manifest path that escapes its data root (checked before the file is ever opened).
OUTSIDE_ROOT = "outside_root"
#: Every reason a probe can give (ImageError's reasons plus the root check).
REASONS = (*ImageError.REASONS, OUTSIDE_ROOT)
#: What the user should do, per reason (one line).
ADVICE: dict[str, str] = {
    "missing": "check data.root and the manifest's path column, or restore the file",
    "empty": "the file has zero bytes: re-copy it",
    "unreadable": "the file is corrupt, truncated or not an image: re-export or remove it",
    "too_large": "it is above the decompression-bomb limit: downscale it",
    "too_small": "a side is below the minimum: use a larger image or drop the row",
    OUTSIDE_ROOT: "the manifest path escapes data.root: fix the row to a path inside the root",
}


@dataclass
class ImageCheck:
    """Per-row outcome: H, W (0 where unknown) and a reason ("" when the image is usable)."""

    sizes: np.ndarray  # int32 (N, 2) H, W
    reasons: list[str]

    @property
    def ok(self) -> np.ndarray:
        """bool (N,): rows whose image can be read."""
        return np.array([not r for r in self.reasons], dtype=bool)

    def counts(self) -> dict[str, int]:
        """Rows per reason (usable rows under "ok"), in REASONS order, zeros left out."""
        out = {"ok": int(self.ok.sum())}
        for reason in REASONS:
            n = sum(r == reason for r in self.reasons)
            if n:
                out[reason] = n
        return out


def probe_image(root: Path, relative: str) -> tuple[int, int, str]:
    """(H, W, "") for a usable image; (H, W or 0, reason) otherwise. Decodes fully: truncation shows only there."""
    try:
        full = resolve_inside(root, relative)
    except ValueError:
        return 0, 0, OUTSIDE_ROOT
    try:
        rgb = read_image(full)
    except ImageError as e:
        h, w = _header_size(full) if e.reason in ("too_large", "too_small") else (0, 0)
        return h, w, e.reason
    return int(rgb.shape[0]), int(rgb.shape[1]), ""


def _header_size(path: Path) -> tuple[int, int]:
    """H, W from the file header (no decode); (0, 0) if even that fails."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return int(im.height), int(im.width)
    except (OSError, ValueError, Image.DecompressionBombError):
        return 0, 0


def _probe_chunk(root: Path, relative: Sequence[str]) -> list[tuple[int, int, str]]:
    """Worker: probe a chunk of rows in order."""
    return [probe_image(root, p) for p in relative]


def probe_images(relative: Sequence[str], root: str | Path, *, n_jobs: int = 1, chunk_size: int = 1024) -> ImageCheck:
    """Probe every row (manifest order); chunks run with joblib when there is more than one (same result for any n_jobs)."""
    root, rel = Path(root), [str(p) for p in relative]
    chunk_size = max(1, int(chunk_size))
    chunks = [rel[s : s + chunk_size] for s in range(0, len(rel), chunk_size)]
    if int(n_jobs) == 1 or len(chunks) < 2:  # one chunk gains nothing from workers and would pay their start-up
        parts = [_probe_chunk(root, c) for c in chunks]
    else:
        parts = Parallel(n_jobs=int(n_jobs))(delayed(_probe_chunk)(root, c) for c in chunks)
    flat = [r for part in parts for r in part]
    sizes = np.array([(h, w) for h, w, _ in flat], dtype=np.int32).reshape(len(flat), 2)
    return ImageCheck(sizes=sizes, reasons=[r for _, _, r in flat])
