"""The SHA-256 of a model file, which keys the files saved beside it (directions, saved latents)."""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of the file's bytes (cached per path, size and modification time)."""
    st = os.stat(path)
    return _sha256(os.path.abspath(os.fspath(path)), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=32)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    from core.regular_file import open_regular  # a FIFO or device is refused, never read (issue 19)

    with open_regular(path, "a model file") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def sidecar_path(model_path: str | os.PathLike, suffix: str) -> str:
    """``model.safetensors`` (or ``model.safetensors.index.json``, ``model.pkl``) -> ``model<suffix>`` in the
    same folder (e.g. ``.directions.npz``)."""
    path = os.fspath(model_path)
    if path.lower().endswith(".safetensors.index.json"):
        return path[: -len(".safetensors.index.json")] + suffix
    stem, _ = os.path.splitext(path)
    return stem + suffix
