"""Benchmarks: `python -m bench` prints the tables recorded in BENCHMARKS.md."""
