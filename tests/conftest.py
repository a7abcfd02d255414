"""Shared pytest set-up: marker handling and torch threading.

Markers (declared in pyproject.toml):
    gpu   skipped unless torch sees CUDA
    gui   skipped unless there is a display (``make test`` provides one with xvfb-run when it is installed)
    slow  deselect with ``-m "not slow"`` (``make test-fast``)
"""

from __future__ import annotations

import os
import sys

import pytest

NO_DISPLAY_REASON = (
    "gui test needs a display: no DISPLAY/WAYLAND_DISPLAY is set. Run `make test`, which wraps pytest in "
    "xvfb-run when it is installed (Debian: apt-get install xvfb xauth; or run .ci/run --deps-only as root)"
)


def has_display() -> bool:
    if sys.platform != "linux":
        return True  # macOS and Windows always have a window server for a desktop session
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def pytest_configure(config: pytest.Config) -> None:
    # Small, fixed thread pools: tests on tiny tensors gain nothing from many threads, results stay
    # reproducible across machines, and runs do not oversubscribe a shared CI box.
    os.environ.setdefault("OMP_NUM_THREADS", str(min(4, os.cpu_count() or 1)))
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(min(4, os.cpu_count() or 1))


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = [f"display: {os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY') or 'none'}"]
    try:
        import torch

        cuda = torch.cuda.is_available()
        lines.append(f"torch {torch.__version__}, CUDA available: {cuda}, threads: {torch.get_num_threads()}")
    except ImportError:
        lines.append("torch: not installed")
    return lines


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_gui = None if has_display() else pytest.mark.skip(reason=NO_DISPLAY_REASON)
    skip_gpu = None
    if any(item.get_closest_marker("gpu") for item in items):
        import torch

        if not torch.cuda.is_available():
            skip_gpu = pytest.mark.skip(reason="gpu test needs CUDA; torch.cuda.is_available() is False")
    for item in items:
        if skip_gui is not None and item.get_closest_marker("gui"):
            item.add_marker(skip_gui)
        if skip_gpu is not None and item.get_closest_marker("gpu"):
            item.add_marker(skip_gpu)
