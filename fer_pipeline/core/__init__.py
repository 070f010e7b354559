"""Facts shared by every stage: labels, the AU codebook, paths and deterministic I/O (no torch)."""
