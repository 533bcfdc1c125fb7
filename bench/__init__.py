"""Benchmark: the straightforward single-process loop against the pipeline (``python -m bench``)."""
