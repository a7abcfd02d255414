"""Timing of GPU work with CUDA events."""

from __future__ import annotations

import statistics
from typing import Callable

import torch


def cuda_ms(fn: Callable[[], object], repeats: int = 50, warmup: int = 5) -> float:
    """Median milliseconds of ``fn()`` over ``repeats`` calls after ``warmup`` calls, timed with CUDA events
    (each call synchronised, so the figure is latency, not pipelined throughput)."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)
