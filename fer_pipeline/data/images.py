"""Read any image file once into 8-bit RGB: EXIF orientation, grayscale/RGBA/CMYK/16-bit normalised; clear failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps

#: Largest image accepted (PIL's decompression-bomb default is 89.5 Mpx; faces need far less).
MAX_PIXELS = 64_000_000
#: Smallest side worth reading (landmarks and CAMs mean nothing below this).
MIN_SIDE = 16


class ImageError(Exception):
    """An image that cannot be used; `reason` is one of REASONS, the message names the file and what to do."""

    REASONS = ("missing", "empty", "unreadable", "too_large", "too_small")

    def __init__(self, reason: str, path: str | Path, detail: str = "") -> None:
        self.reason = reason
        self.path = str(path)
        hint = {
            "missing": "check data.root and the manifest's path column",
            "empty": "the file has zero bytes; re-copy it",
            "unreadable": "the file is corrupt, truncated or not an image; re-export or remove it",
            "too_large": f"it exceeds {MAX_PIXELS:,} pixels; downscale it",
            "too_small": f"a side is below {MIN_SIDE} px",
        }[reason]
        super().__init__(f"{path}: {reason}{': ' + detail if detail else ''} ({hint})")


def _to_rgb8(im: Image.Image) -> np.ndarray:
    """Any PIL mode → uint8 (H,W,3) RGB; 16/32-bit grey is scaled by its dtype range, alpha dropped."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        grey = np.clip(a / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if im.mode == "F":
        a = np.asarray(im, dtype=np.float64)
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        grey = np.zeros(a.shape, np.uint8) if hi <= lo else ((a - lo) / (hi - lo) * 255 + 0.5).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


def read_image(path: str | Path) -> np.ndarray:
    """uint8 (H,W,3) RGB of `path` with EXIF orientation applied; raises ImageError(reason) on any bad file."""
    path = Path(path)
    if not path.is_file():
        raise ImageError("missing", path)
    if path.stat().st_size == 0:
        raise ImageError("empty", path)
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise ImageError("too_large", path, f"{w}x{h}")
            im.load()
            im = ImageOps.exif_transpose(im)
            rgb = _to_rgb8(im)
    except ImageError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageError("too_large", path, str(e)) from None
    except (OSError, ValueError, SyntaxError) as e:  # PIL's errors for corrupt / truncated / non-image files
        raise ImageError("unreadable", path, str(e).splitlines()[0] if str(e) else type(e).__name__) from None
    if min(rgb.shape[:2]) < MIN_SIDE:
        raise ImageError("too_small", path, f"{rgb.shape[1]}x{rgb.shape[0]}")
    return rgb
