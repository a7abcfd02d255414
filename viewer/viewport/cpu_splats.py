"""CPU splat rasterizer (numba): the viewer's picture on machines without CUDA, drawn by the render worker.

Same input as the OpenGL path (:func:`viewer.viewport.splats.project`: the visible splats sorted back to
front, each with its pixel centre, exact box half-size, conic, opacity and colour), same maths per pixel as
the reference ``core.render_torch`` (``alpha = min(0.999, o exp(-sigma))`` at the pixel centre, nothing below
1/255, front-to-back ``colour += alpha T c``, ``T *= 1 - alpha``, stopping exclusively once T would fall to
1e-4 or below), but laid out for a CPU:

1. **Binning** (one thread, ~1 ms for 18k splats at 512^2): each splat's box is listed in the tiles of
   ``TILE_W`` x ``TILE_H`` (8 x 32) pixels it touches, front to back.
2. **Tiles** (numba ``nogil`` kernels on :attr:`CpuSplatRasterizer.threads` Python threads, tiles dealt
   round-robin): per splat of a tile, one straight loop over the tile rows its box covers, 8 pixels a row,
   which LLVM turns into 8-wide AVX2 code; every branch is a select. ``exp`` is ``p(sigma / 16)^16`` with
   ``p`` the degree-5 Taylor polynomial of ``exp(-x)``: relative error below 6e-5 where ``alpha >= 1/255``
   can hold (``sigma <= ln 255``; absolute below 3e-7), far below an 8-bit step (degree 6: 5 % slower, the
   same pixels but for one in 100,000 one step apart). Columns of a tile row outside a splat's box
   need no test: the box is the exact box of that ellipse, so their alpha stays below 1/255.

Measured on the default model at 512^2 (``python -m bench.cpu_splats``, 2-core x86): about a quarter of the
OpenGL path's llvmpipe draw. Needs numba; :func:`unavailable` says why it cannot run, and the viewer then
keeps the OpenGL path. numba compiles the kernels at their first use (about 10 s, once: ``make setup`` does
it; numba caches them in ``__pycache__`` beside the kernels); loading them from that cache takes under a
second.

Image orientation: row 0 is the top (OpenCV), as everywhere in the viewer.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Sequence

import numpy as np

from viewer.viewport.splats import FLOATS_PER_SPLAT, SplatArrays, check_size, project


_FAILURE: list[str] = []  # why the kernels could not be loaded, once known (not retried in this process)


def unavailable() -> str | None:
    """None when the kernels can run here, else the reason (numba missing or failing to compile)."""
    if _FAILURE:
        return _FAILURE[0]
    try:
        _kernels()
    except Exception as e:  # noqa: BLE001 - any failure means "use another path", with the reason shown
        _FAILURE.append(f"CPU splat rasterizer unavailable ({type(e).__name__}: {e})")
        return _FAILURE[0]
    return None


def default_threads() -> int:
    """The cores this process may run on (at most 8)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    return max(1, min(8, n))


class CpuSplatRasterizer:
    """Draws :class:`~viewer.viewport.splats.SplatArrays` into uint8 images on ``threads`` threads.

    One instance per calling thread (the render worker): :meth:`draw` is not re-entrant.
    """

    def __init__(self, threads: int | None = None) -> None:
        self.threads = int(threads) if threads else default_threads()
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads!r}")
        # the calling thread rasterises one share of the tiles itself, the pool the others
        self._pool = None
        if self.threads > 1:
            self._pool = ThreadPoolExecutor(self.threads - 1, thread_name_prefix="cpu-splats")
        self.count = 0  # splats drawn by the last draw

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def draw(self, arrays: SplatArrays | None, view: np.ndarray, K: Sequence[float], width: int, height: int,
             background: Sequence[float] = (0.0, 0.0, 0.0), splat_scale: float = 1.0,
             mode: str = "rgb") -> np.ndarray:
        """``[height, width, 3]`` uint8 of ``arrays`` for world-to-camera ``view [4, 4]`` (OpenCV axes) and
        pixel intrinsics ``K = (fx, fy, cx, cy)``; ``mode`` "rgb" (over ``background``, RGB in [0, 1]) or
        "alpha" (``1 - T`` as grey)."""
        if mode not in ("rgb", "alpha"):
            raise ValueError(f"the CPU rasterizer draws modes 'rgb' and 'alpha', not {mode!r}")
        check_size(width, height)
        return self.draw_instances(project_splats(arrays, view, K, width, height, splat_scale), width, height,
                                   background, mode)

    def draw_instances(self, inst: np.ndarray, width: int, height: int,
                       background: Sequence[float] = (0.0, 0.0, 0.0), mode: str = "rgb") -> np.ndarray:
        """:meth:`draw` from an instance buffer ``[V, 12]`` as :func:`~viewer.viewport.splats.project` returns
        it (sorted back to front)."""
        k = _kernels()
        inst = np.ascontiguousarray(inst, np.float32)
        self.count = len(inst)
        tiles_x, tiles_y = -(-width // k.TILE_W), -(-height // k.TILE_H)
        offsets, ids = k.bin_splats(inst, width, height, tiles_x, tiles_y)
        bg = np.zeros(3, np.float32) if mode == "alpha" else np.asarray(background, np.float32).reshape(3)
        out = np.empty((height, width, 3), np.uint8)
        args = (inst, offsets, ids, tiles_x, width, height, bg, mode == "alpha", out)
        if self._pool is None or tiles_x * tiles_y == 1:
            k.raster(*args, 0, 1)
        else:
            runs = [self._pool.submit(k.raster, *args, first, self.threads)
                    for first in range(1, self.threads)]
            k.raster(*args, 0, self.threads)
            for run in runs:
                run.result()
        return out


def project_splats(arrays: SplatArrays | None, view: np.ndarray, K: Sequence[float], width: int, height: int,
                   splat_scale: float = 1.0) -> np.ndarray:
    """:func:`viewer.viewport.splats.project` (the instance buffer ``[V, 12]``, back to front), compiled by
    numba for SH degree 0 (about a third of numpy's time on the default model); higher degrees go through
    numpy."""
    if arrays is None or not len(arrays):
        return np.zeros((0, FLOATS_PER_SPLAT), np.float32)
    view = np.asarray(view, np.float64)
    if arrays.sh.shape[1] > 1:
        return project(arrays, view, K, width, height, splat_scale)
    k = np.asarray([float(v) for v in K], np.float64)
    return _kernels().project_kernel(arrays.means, arrays.cov3d, arrays.opacity, arrays.colors, view, k,
                                     width, height, np.float32(splat_scale * splat_scale))


@lru_cache(maxsize=1)
def _kernels():
    """:mod:`viewer.viewport.cpu_splats_kernels`, imported (so numba is) and its kernels compiled, or loaded
    from numba's cache, by one tiny draw."""
    from viewer.viewport import cpu_splats_kernels as k

    inst = np.zeros((1, FLOATS_PER_SPLAT), np.float32)
    inst[0, 2:8] = (1.0, 1.0, 1.0, 0.0, 1.0, 0.5)  # half-size 1 px, conic identity, opacity 0.5 at (0, 0)
    offsets, ids = k.bin_splats(inst, 4, 4, 1, 1)
    k.raster(inst, offsets, ids, 1, 4, 4, np.zeros(3, np.float32), False, np.empty((4, 4, 3), np.uint8), 0, 1)
    k.project_kernel(np.zeros((1, 3), np.float32), np.ones((1, 6), np.float32), np.ones(1, np.float32),
                     np.ones((1, 3), np.float32), np.eye(4), np.ones(4), 4, 4, np.float32(1.0))
    return k
