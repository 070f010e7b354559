"""68-point facial landmarks: backends, parallel extraction and the shareable HDF5 store (no torch)."""
