"""The bad-input corpus, generated on the fly (never committed binaries): each bad file beside good synthetic faces.

`write_corpus(root)` writes `images/*` under `root`, the ground-truth landmark CSV the synthetic backend reads, and
returns the manifest plus, per row, what the pipeline must make of it (`expect_status`, `expect_reason`).
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from fer_pipeline.core.labels import NUM_CLASSES
from fer_pipeline.core.paths import GT_LANDMARKS
from fer_pipeline.data.datasets import write_landmark_csv
from fer_pipeline.data.images import MAX_PIXELS
from fer_pipeline.data.synthetic import SyntheticConfig, make_sample
from fer_pipeline.landmarks.store import Status

OK, UNREADABLE = int(Status.OK), int(Status.UNREADABLE)


def png_bytes(image: Image.Image) -> bytes:
    """PNG encoding of a PIL image."""
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    """JPEG encoding of a PIL image (RGB or CMYK)."""
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def corrupt_jpeg(face: Image.Image) -> bytes:
    """A JPEG whose quantisation/frame headers are overwritten with seeded noise (SOI and EOI intact)."""
    data = bytearray(jpeg_bytes(face))
    data[300:600] = np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8).tobytes()
    return bytes(data)


def bomb_png(side: int) -> bytes:
    """A valid 1-bit black PNG of side × side pixels (a few KB on disk: a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(row * side, 9)) + chunk(b"IEND", b"")


def face(index: int, label: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """RGB uint8 face and its (68, 2) ground-truth landmarks (synthetic generator, seed 0)."""
    s = make_sample(0, index, label, "train", SyntheticConfig(size=size))
    return s.image, s.landmarks


#: name -> (what it is, expected status, expected reason). Rows `missing` and `escape` have no file.
CORPUS: dict[str, tuple[str, int, str]] = {
    "corrupt.jpg": ("corrupt JPEG (header bytes overwritten)", UNREADABLE, "unreadable"),
    "truncated.png": ("truncated PNG (first 60 % of the bytes)", UNREADABLE, "unreadable"),
    "empty.jpg": ("zero-byte file", UNREADABLE, "empty"),
    "text.jpg": ("a text file named .jpg", UNREADABLE, "unreadable"),
    "gray.png": ("grayscale PNG (mode L)", OK, ""),
    "rgba.png": ("RGBA PNG", OK, ""),
    "gray16.png": ("16-bit grayscale PNG (mode I;16)", OK, ""),
    "cmyk.jpg": ("CMYK JPEG", OK, ""),
    "bomb.png": (f"PNG above the decompression-bomb limit ({MAX_PIXELS:,} px)", UNREADABLE, "too_large"),
    "tiny.png": ("8×8 image", UNREADABLE, "too_small"),
    "missing.png": ("manifest row whose file is missing", UNREADABLE, "missing"),
    "escape": ("manifest path ../../etc/passwd (escapes the data root)", UNREADABLE, "outside_root"),
}


def write_corpus(root: Path, *, n_good: int = 42, size: int = 64) -> pd.DataFrame:
    """Good faces (balanced, train/val/test) + one row per CORPUS entry; writes images and landmarks_gt.csv under `root`.

    Returns the manifest with extra columns `expect_status`, `expect_reason` and `what`.
    """
    img = root / "images"
    img.mkdir(parents=True, exist_ok=True)
    rows, points = [], []
    splits = ("train", "train", "train", "val", "test", "train")
    for i in range(n_good):
        label = i % NUM_CLASSES
        rgb, pts = face(i, label, size)
        Image.fromarray(rgb).save(img / f"good_{i:03d}.png")
        split = splits[(i // NUM_CLASSES) % len(splits)]
        rows.append((f"good_{i:03d}", f"images/good_{i:03d}.png", label, split, OK, "", "good synthetic face"))
        points.append(pts)

    rgb, pts = face(1000, 1, size)
    base = Image.fromarray(rgb)
    files = {
        "corrupt.jpg": corrupt_jpeg(base),
        "truncated.png": png_bytes(base)[: len(png_bytes(base)) * 6 // 10],
        "empty.jpg": b"",
        "text.jpg": b"this is not an image\n",
        "gray.png": png_bytes(base.convert("L")),
        "rgba.png": png_bytes(base.convert("RGBA")),
        "gray16.png": png_bytes(Image.fromarray(np.asarray(base.convert("L"), np.uint16) * 257)),  # mode I;16
        "cmyk.jpg": jpeg_bytes(base.convert("CMYK")),
        "bomb.png": bomb_png(int(MAX_PIXELS**0.5) + 100),
        "tiny.png": png_bytes(base.resize((8, 8))),
    }
    for name, data in files.items():
        (img / name).write_bytes(data)
    for k, (name, (what, status, reason)) in enumerate(CORPUS.items()):
        path = "../../etc/passwd" if name == "escape" else f"images/{name}"
        split = "test" if k % 3 == 0 else "train"
        rows.append((f"bad_{name.replace('.', '_')}", path, (k % (NUM_CLASSES - 1)) + 1, split, status, reason, what))
        points.append(pts)
    cols = ["sample_id", "path", "label", "split", "expect_status", "expect_reason", "what"]
    df = pd.DataFrame(rows, columns=cols)
    write_landmark_csv(root / GT_LANDMARKS, df["sample_id"].tolist(), np.stack(points).astype(np.float32))
    return df


def manifest_only(df: pd.DataFrame) -> pd.DataFrame:
    """The manifest columns of a corpus frame (what prepare would write)."""
    return df[["sample_id", "path", "label", "split"]]


def import_csv_rows(points: np.ndarray, size: int) -> tuple[pd.DataFrame, dict[str, str]]:
    """An import CSV (`sample_id, x0..x67, y0..y67`) with one good row and the bad kinds; expected reason per id."""
    from fer_pipeline.data.datasets import landmark_csv_header

    good = points.astype(np.float64)
    nan = good.copy()
    nan[10, 0] = np.nan
    outside = good.copy()
    outside[5, 0] = size * 3.0
    rows = {"imp_good": good, "imp_nan": nan, "imp_outside": outside, "imp_67": good.copy(), "imp_dup": good, "imp_dup2": good}
    frame = pd.DataFrame([[sid, *p[:, 0], *p[:, 1]] for sid, p in rows.items()], columns=landmark_csv_header(), dtype=object)
    frame.loc[frame["sample_id"] == "imp_67", ["x67", "y67"]] = ""  # a row with only 67 points
    frame.loc[frame["sample_id"] == "imp_dup2", "sample_id"] = "imp_dup"  # the same id twice
    expect = {
        "imp_good": "",
        "imp_nan": "non-finite coordinate",
        "imp_outside": "point outside the image",
        "imp_67": "non-finite coordinate (only 67 of 68 points)",
        "imp_dup": "",  # the same id twice: the first row is used (a warning names the file)
        "imp_absent": "no landmarks row",
    }
    return frame, expect
