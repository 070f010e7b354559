"""AU heatmaps: landmark anchors, vectorised rendering, the HDF5 store and the joblib builder (no torch)."""

from fer_pipeline.aumaps.anchors import ANCHOR_OF, anchor_points, au_regions, inter_ocular
from fer_pipeline.aumaps.build import aumap_attrs, build_aumaps, summarize
from fer_pipeline.aumaps.render import from_uint8, render_maps, to_uint8
from fer_pipeline.aumaps.store import AUMapReader, AUMapTable, open_maps, read_aumap_store, write_aumap_store

__all__ = [
    "ANCHOR_OF",
    "AUMapReader",
    "AUMapTable",
    "anchor_points",
    "au_regions",
    "aumap_attrs",
    "build_aumaps",
    "from_uint8",
    "inter_ocular",
    "open_maps",
    "read_aumap_store",
    "render_maps",
    "summarize",
    "to_uint8",
    "write_aumap_store",
]
