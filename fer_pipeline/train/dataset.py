"""`FERDataset`: image + its AU map with ONE geometric augmentation draw applied to both, photometric jitter on the image only."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from fer_pipeline.aumaps.render import from_uint8
from fer_pipeline.aumaps.store import AUMapReader, open_maps
from fer_pipeline.core.labels import NEUTRAL
from fer_pipeline.core.paths import resolve_inside
from fer_pipeline.data.images import read_image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: `cache_images: auto` keeps decoded (resized) images in RAM below this many bytes.
AUTO_CACHE_BYTES = 500 * 2**20

Sample = tuple[torch.Tensor, torch.Tensor, bool, int, int]


def read_rgb(path: str | Path, size: int) -> np.ndarray:
    """uint8 (size,size,3) RGB resized to the square input (the AU map covers the whole image too)."""
    rgb = read_image(path)
    h, w = rgb.shape[:2]
    if (h, w) != (size, size):
        interp = cv2.INTER_AREA if h > size or w > size else cv2.INTER_LINEAR
        rgb = cv2.resize(rgb, (size, size), interpolation=interp)
    return rgb


def store_rows(reader: AUMapReader, sample_ids: Sequence[str]) -> np.ndarray:
    """Store row of each sample id (the store is in manifest order; matching by id catches a stale store)."""
    row_of = {sid: i for i, sid in enumerate(reader.sample_ids())}
    missing = [sid for sid in sample_ids if sid not in row_of]
    if missing:
        raise ValueError(
            f"{len(missing)} manifest sample ids (e.g. {missing[0]!r}) are not in the AU map store {reader.path}; "
            "rerun `dvc repro aumaps`"
        )
    return np.fromiter((row_of[sid] for sid in sample_ids), dtype=np.int64, count=len(sample_ids))


def geometric(input_size: int) -> v2.Transform:
    """The joint geometric draw (image and map get the same crop, rotation and flip)."""
    return v2.Compose(
        [
            v2.RandomResizedCrop(input_size, scale=(0.75, 1.0), ratio=(0.9, 1.1), antialias=True),
            v2.RandomRotation(10.0),
            v2.RandomHorizontalFlip(),
        ]
    )


def photometric() -> v2.Transform:
    """Colour jitter for the RGB image only (never applied to the map)."""
    return v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.2)  # no hue: its HSV round trip costs 3x the rest


def normalize(mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> v2.Transform:
    """uint8 image → float, normalised with the backbone's mean/std (ImageNet for timm ResNets)."""
    return v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))])


class FERDataset(Dataset[Sample]):
    """Rows of a manifest → (image (3,S,S) normalised, AU map (H,W) in [0,1], has_map, label, store row).

    Train: the map is upsampled to the image size and transformed jointly with it (H = W = input_size).
    Eval: image resized only; the map is returned at its stored size (it covers the whole image, so it stays aligned).
    """

    def __init__(
        self,
        manifest_rows: pd.DataFrame,
        image_root: str | Path,
        aumap_path: str | Path,
        input_size: int,
        train: bool,
        *,
        cache_images: str | bool = "auto",
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        self.input_size = int(input_size)
        self.train = bool(train)
        self.maps = open_maps(aumap_path)
        root = Path(image_root)
        self.paths = [str(resolve_inside(root, p)) for p in manifest_rows["path"]]
        self.labels = manifest_rows["label"].to_numpy(dtype=np.int64)
        self.rows = store_rows(self.maps, manifest_rows["sample_id"].astype(str).tolist())
        self.has_map = self.maps.has_map[self.rows] & (self.labels != NEUTRAL)
        self.geometric = geometric(self.input_size)
        self.photometric = photometric()
        self.normalize = normalize(mean, std)
        self.cache: list[np.ndarray] | None = None
        self.map_cache: np.ndarray | None = None
        if self._want_cache(cache_images):
            self.cache = [read_rgb(p, self.input_size) for p in self.paths]
            self.map_cache = self.maps.read_u8(self.rows)  # ~3 KB a row; saves a gzip chunk decode per item

    def _want_cache(self, mode: str | bool) -> bool:
        """Keep decoded images (and maps) in RAM? `auto`: when the images fit in AUTO_CACHE_BYTES."""
        mode = str(mode).strip().lower()
        if mode == "auto":
            return len(self.paths) * self.input_size**2 * 3 < AUTO_CACHE_BYTES
        return mode == "true"

    def __len__(self) -> int:
        return len(self.paths)

    def image(self, i: int) -> np.ndarray:
        """uint8 (S,S,3) RGB of item i (cached or read now)."""
        return self.cache[i] if self.cache is not None else read_rgb(self.paths[i], self.input_size)

    def au_map(self, i: int) -> np.ndarray:
        """float32 (S0,S0) stored AU map of item i in [0,1]."""
        if self.map_cache is not None:
            return from_uint8(self.map_cache[i])
        return self.maps[int(self.rows[i])]

    def __getitem__(self, i: int) -> Sample:
        img = tv_tensors.Image(torch.from_numpy(self.image(i)).permute(2, 0, 1).contiguous())
        au = self.au_map(i)
        if self.train:
            au = cv2.resize(au, (self.input_size, self.input_size), interpolation=cv2.INTER_LINEAR)
            au_t = tv_tensors.Image(torch.from_numpy(au)[None])
            img, au_t = self.geometric(img, au_t)
            img = self.photometric(img)
            au_map = au_t.as_subclass(torch.Tensor)[0].clamp_(0.0, 1.0)
        else:
            au_map = torch.from_numpy(au)
        image = self.normalize(img).as_subclass(torch.Tensor)
        return image, au_map, bool(self.has_map[i]), int(self.labels[i]), int(self.rows[i])
