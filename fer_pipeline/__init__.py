"""fer_pipeline: guided interpretable facial expression recognition via spatial AU cues."""

__version__ = "0.2.0"
