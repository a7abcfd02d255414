"""A single latent saved as ``.npz`` (the viewer's "Save latent"): array ``ws`` (or ``w``) plus optional
scalars (``seed``, ``psi``, ``space``, ``source``).

:func:`read_latent_file` checks the declared shape and dtype before reading the array (:mod:`core.npz_file`):
``[num_ws, w_dim]``, ``[1, num_ws, w_dim]`` or ``[w_dim]``, float, with ``num_ws <= MAX_NUM_WS`` and
``w_dim <= MAX_W_DIM`` (the generator limits), so a small file cannot become a 20000 x 20000 latent.
"""

from __future__ import annotations

import os

import numpy as np

from core.generator_limits import INT_RANGES
from core.npz_file import NpzReader

__all__ = ["LATENT_KEYS", "MAX_NUM_WS", "MAX_W_DIM", "LatentFileError", "read_latent_file"]

LATENT_KEYS = ("ws", "w")
MAX_W_DIM = INT_RANGES["w_dim"][1]
MAX_NUM_WS = INT_RANGES["num_first_blocks"][1] + 16  # blocks: first blocks + one per further level


class LatentFileError(ValueError):
    """A latent file that cannot be used; the message starts with the path and says why."""


def read_latent_file(path: str | os.PathLike, expected: tuple[int, int] | None = None) -> np.ndarray:
    """``float32 [num_ws, w_dim]`` from a latent ``.npz`` (key ``ws`` or ``w``; a leading batch axis of 1 is
    dropped, a ``[w_dim]`` vector becomes ``[1, w_dim]``).

    Args:
        expected: ``(num_ws, w_dim)`` of the model it is for; then ``w_dim`` must match and ``num_ws`` be that
            or 1.

    Raises:
        FileNotFoundError: no such file. LatentFileError: anything else (not an .npz, no latent, a shape
            or dtype that is not a latent, non-finite values), before the array is read where it can be.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such latent file")

    def error(problem: str) -> LatentFileError:
        return LatentFileError(f"{path}: {problem}")

    with NpzReader(path, "a latent .npz file", error=error) as z:
        key = next((k for k in LATENT_KEYS if k in z.arrays), None)
        if key is None:
            raise error(f"no 'ws' or 'w' array (found: {', '.join(sorted(z.arrays)) or 'nothing'})")
        info = z.arrays[key]
        shape = info.shape[1:] if len(info.shape) == 3 and info.shape[0] == 1 else info.shape
        shape = (1, *shape) if len(shape) == 1 else shape
        ok = (len(shape) == 2 and info.dtype.kind == "f" and 1 <= shape[0] <= MAX_NUM_WS
              and 1 <= shape[1] <= MAX_W_DIM)
        if not ok:
            raise error(f"expected a float array [num_ws, w_dim] with num_ws <= {MAX_NUM_WS} and w_dim <= "
                        f"{MAX_W_DIM}, got {info.dtype} {list(info.shape)}")
        if expected is not None and (shape[1] != expected[1] or shape[0] not in (1, expected[0])):
            raise error(f"a latent {list(shape)} does not fit this model ([{expected[0]}, {expected[1]}])")
        ws = z.read(key).reshape(shape)
    if not np.isfinite(ws).all():
        raise error(f"expected a finite float array [num_ws, w_dim], got non-finite values in {list(shape)}")
    return ws.astype(np.float32)
