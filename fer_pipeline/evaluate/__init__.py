"""Evaluation: classification and map-localisation metrics on the test split."""
