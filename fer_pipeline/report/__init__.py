"""Paper-style tables: measured runs side by side with the paper's numbers."""
