"""Benchmarks: each module measures figures and records them with :func:`bench.results.record`."""
