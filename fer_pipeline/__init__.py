"""fer_pipeline: guided interpretable facial expression recognition via spatial AU cues."""

#: The package version (pyproject.toml reads it; `fer --version` prints it; stores record it in their attributes).
__version__ = "0.2.0"
