"""Dataset adapters and the embedded synthetic face generator (no torch)."""
