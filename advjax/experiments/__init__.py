"""Experiment runners behind the `python -m benchmarks.<name>` entry points."""
