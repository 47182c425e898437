"""Benchmarks: scripts that print figures, with ratios against a baseline of the same run."""
