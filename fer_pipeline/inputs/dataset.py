"""`FERDataset`: manifest rows → (normalised image, AU map, has_map, label, store row), and `collate` for batches.

The image is the framed face (the aligned store, else the image file) resized to the input size; the map covers the
same frame. With an `augment` (training's, `fer_pipeline.train.augment.Augmentation`) ONE geometric draw moves image
and map together and colour jitter touches the image only; without one (evaluation) nothing else happens to either.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from fer_pipeline.align.store import AlignedFaces
from fer_pipeline.align.warp import resize_square
from fer_pipeline.aumaps.render import from_uint8
from fer_pipeline.aumaps.store import AUMapReader, NoMaps, open_maps
from fer_pipeline.core.labels import NEUTRAL
from fer_pipeline.core.paths import resolve_inside
from fer_pipeline.data.images import read_image
from fer_pipeline.inputs.tensor import IMAGENET_MEAN, IMAGENET_STD, Colour, normalizer, to_tensor_planes, with_map

#: `cache_images: auto` keeps decoded (resized) images in RAM below this many bytes.
AUTO_CACHE_BYTES = 500 * 2**20

Sample = tuple[torch.Tensor, torch.Tensor, bool, int, int]
#: A dataset key: a row index, or (epoch, row index) from `EpochSampler` so that the augmentation draw is per epoch.
Key = int | tuple[int, int]


class Augment(Protocol):
    """What `FERDataset` needs of an augmentation: a per-(epoch, row) draw, its geometry, its colour change."""

    def draw(self, epoch: int, index: int) -> Any:
        """The draw of row `index` in `epoch` (a pure function of them and the augmentation's seed)."""
        ...

    def geometry(self, x: np.ndarray, d: Any, out_size: int) -> np.ndarray:
        """Draw `d`'s warp of an (H,W[,C]) uint8 array into (out_size, out_size[,C])."""
        ...

    def colour(self, d: Any) -> Colour:
        """Draw `d`'s in-place colour change of the float planes (see `to_tensor_planes`)."""
        ...


def read_rgb(path: str | Path, size: int) -> np.ndarray:
    """uint8 (size,size,3) RGB resized to the square input (the AU map covers the whole image too)."""
    return resize_square(read_image(path), size)


def store_rows(reader: AUMapReader | NoMaps | AlignedFaces, sample_ids: Sequence[str]) -> np.ndarray:
    """Store row of each sample id (the store is in manifest order; matching by id catches a stale store)."""
    row_of = {sid: i for i, sid in enumerate(reader.sample_ids())}
    missing = [sid for sid in sample_ids if sid not in row_of]
    kind, stage = ("aligned-face", "align") if isinstance(reader, AlignedFaces) else ("AU map", "aumaps")
    if missing:
        raise ValueError(
            f"{len(missing)} manifest sample ids (e.g. {missing[0]!r}) are not in the {kind} store {reader.path}; "
            f"rerun `dvc repro {stage}`"
        )
    return np.fromiter((row_of[sid] for sid in sample_ids), dtype=np.int64, count=len(sample_ids))


def cache_decision(mode: str | bool, n: int, size: int, map_size: int, train: bool) -> tuple[bool, str]:
    """`train.cache_images` for n images at `size` px: (cache?, a log line with the RAM the cache takes — decoded RGB,
    + the map as a 4th channel when training, + the stored maps — and the choice and why)."""
    mode = str(mode).strip().lower()
    need = n * (size * size * (4 if train else 3) + map_size * map_size)
    mib, limit = need / 2**20, AUTO_CACHE_BYTES / 2**20
    what = f"{n:,} images at {size} px take {mib:,.0f} MiB decoded"
    if mode == "auto" and need < AUTO_CACHE_BYTES:
        return True, f"cache_images auto: on ({what}, under the {limit:.0f} MiB limit): decoded once, kept in RAM"
    if mode == "auto":
        return False, (f"cache_images auto: off ({what}, over the {limit:.0f} MiB limit): every image is read and decoded from "
                "disk every epoch (train.num_workers > 0 decodes in parallel; cache_images: true forces the cache)")
    on = mode == "true"
    return on, f"cache_images {mode}: {what}; " + ("kept in RAM" if on else "read from disk every epoch")


class FERDataset(Dataset[Sample]):
    """Rows of a manifest → (image (3,S,S) normalised, AU map (H,W) in [0,1], has_map, label, store row).

    With `augment` (training): one draw (a function of the augmentation's seed, the epoch and the row) warps the image
    and the map together, the map riding as a 4th image channel (H = W = input_size); colour on the image only.
    Without (evaluation): image resized only; the map at its stored size (it covers the whole image, so it stays aligned).
    """

    def __init__(
        self,
        manifest_rows: pd.DataFrame,
        image_root: str | Path,
        aumap_path: str | Path | None,
        input_size: int,
        *,
        augment: Augment | None = None,
        cache_images: str | bool = "auto",
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        faces_path: str | Path | None = None,
    ) -> None:
        self.input_size = int(input_size)
        self.augment = augment
        self.train = augment is not None
        ids = manifest_rows["sample_id"].astype(str).tolist()
        self.maps = open_maps(aumap_path) if aumap_path is not None else NoMaps(ids)  # None: no map read (λ = 0)
        root = Path(image_root)
        self.paths = [str(resolve_inside(root, p)) for p in manifest_rows["path"]]
        self.labels = manifest_rows["label"].to_numpy(dtype=np.int64)
        self.rows = store_rows(self.maps, ids)
        # faces_path: the aligned-face store (align.mode != none): framed faces instead of the image files
        self.faces = AlignedFaces(faces_path) if faces_path is not None else None
        self.face_rows = store_rows(self.faces, ids) if self.faces is not None else None
        self.has_map = self.maps.has_map[self.rows] & (self.labels != NEUTRAL)
        self.norm = normalizer(mean, std)
        self.cache: list[np.ndarray] | None = None
        self.map_cache: np.ndarray | None = None
        if self._want_cache(cache_images):
            self.cache = [self.read(i) for i in range(len(self.paths))]
            self.map_cache = self.maps.read_u8(self.rows)  # ~3 KB a row; saves a gzip chunk decode per item
            if self.train:  # each image carries its map as a 4th channel: one warp per sample moves both
                self.cache = [with_map(img, m) for img, m in zip(self.cache, self.map_cache, strict=True)]

    def _want_cache(self, mode: str | bool) -> bool:
        """Keep decoded images (and maps) in RAM? `auto`: when they fit in AUTO_CACHE_BYTES; `cache_note` says why."""
        on, self.cache_note = cache_decision(mode, len(self.paths), self.input_size, self.maps.size, self.train)
        return on

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, i: int) -> np.ndarray:
        """uint8 (S,S,3) RGB of item i read now: its framed face from the aligned store, else its image file."""
        if self.faces is not None and self.face_rows is not None:
            return resize_square(self.faces.face(int(self.face_rows[i])), self.input_size)
        return read_rgb(self.paths[i], self.input_size)

    def image(self, i: int) -> np.ndarray:
        """uint8 (S,S,3) RGB of item i (cached or read now)."""
        return self.cache[i][:, :, :3] if self.cache is not None else self.read(i)

    def au_u8(self, i: int) -> np.ndarray:
        """uint8 (S0,S0) stored AU map of item i."""
        return self.map_cache[i] if self.map_cache is not None else self.maps.read_u8([int(self.rows[i])])[0]

    def au_map(self, i: int) -> np.ndarray:
        """float32 (S0,S0) stored AU map of item i in [0,1]."""
        return from_uint8(self.au_u8(i))

    def planes(self, i: int, d: Any = None) -> tuple[list[np.ndarray], np.ndarray | None]:
        """uint8 R, G, B planes of item i and its float32 map: warped together by draw `d` to the input size (train;
        the same bytes cached or not), or as read (d is None: the map at its stored size)."""
        if d is None or self.augment is None:
            return list(cv2.split(np.ascontiguousarray(self.image(i)))), self.au_map(i)
        rgba = self.cache[i] if self.cache is not None else with_map(self.image(i), self.au_u8(i))
        channels = cv2.split(self.augment.geometry(rgba, d, self.input_size))
        return list(channels[:3]), from_uint8(channels[3])

    def __getitem__(self, key: Key) -> Sample:
        epoch, i = key if isinstance(key, tuple) else (0, key)
        d = self.augment.draw(epoch, i) if self.augment is not None else None
        planes, au = self.planes(i, d)
        colour = self.augment.colour(d) if self.augment is not None else None
        image = torch.from_numpy(to_tensor_planes(planes, self.norm, colour))
        au_map = torch.from_numpy(au) if au is not None else torch.zeros(0)  # None: a subclass that reads no maps
        return image, au_map, bool(self.has_map[i]), int(self.labels[i]), int(self.rows[i])


def collate(batch: list[Sample]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack samples into a batch with NumPy (one thread): torch's default_collate hands a 5 MB copy to the intra-op
    thread pool, 500 ms instead of 1 ms a batch when other processes hold the cores (BENCHMARKS.md, "Training step")."""
    images, maps, has_map, labels, rows = zip(*batch, strict=True)
    return (
        torch.from_numpy(np.stack([t.numpy() for t in images])),
        torch.from_numpy(np.stack([t.numpy() for t in maps])),
        torch.tensor(has_map, dtype=torch.bool),
        torch.tensor(labels, dtype=torch.int64),
        torch.tensor(rows, dtype=torch.int64),
    )
