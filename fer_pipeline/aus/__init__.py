"""Per-image action-unit activations (`data/aus/<dataset>.h5`): the synthetic truth or an AU detector's CSV, per manifest row."""
