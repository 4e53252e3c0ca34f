"""Benchmarks (not tests): Resound against soketi, run side by side on the same machine."""
