"""Named saved latents (checkpoints of the viewer's current latent, with thumbnails), kept beside the model.

``model.safetensors`` -> ``model.latents.npz``, a NumPy ``.npz`` read with ``allow_pickle=False``:

    header        0-d unicode array: JSON {"format": "splathead-latents", "format_version": 1,
                  "model_sha256", "entries": [{"name", "values": {slider: value}, "thumbnail": bool}, ...]}
    base_<i>      [num_ws, w_dim] float32, the base latent of entry i
    thumb_<i>     [H, W, 3] uint8 RGB thumbnail of entry i (when it has one)

An entry stores the base and the slider values, not only the edited w, so restoring it gives back the
sliders as they were (sliders that no longer exist in the directions file are reported by the viewer).
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, replace

import numpy as np
import torch

from core.atomic_file import atomic_write
from core.editing.fingerprint import sidecar_path
from core.editing.latent_edit import LatentEdit
from core.editing.latent_file import MAX_NUM_WS, MAX_W_DIM
from core.npz_file import NpzReader

FORMAT = "splathead-latents"
FORMAT_VERSION = 1
SUFFIX = ".latents.npz"
MAX_ENTRIES = 1000
MAX_THUMB_SIDE = 1024
MAX_HEADER_CHARS = 1 << 20


class LatentsFileError(ValueError):
    """A saved-latents file that cannot be used; the message starts with the path."""


@dataclass(frozen=True, eq=False)
class SavedLatent:
    """Attributes:
        name: unique within a library.
        edit: the base latent and slider values.
        thumbnail: ``[H, W, 3]`` uint8 RGB, or None.
    """

    name: str
    edit: LatentEdit
    thumbnail: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"a saved latent needs a non-empty name, got {self.name!r}")
        if self.thumbnail is not None:
            t = np.asarray(self.thumbnail)
            if t.dtype != np.uint8 or t.ndim != 3 or t.shape[2] != 3:
                raise ValueError(f"thumbnail must be uint8 [H, W, 3], got {t.dtype} {list(t.shape)}")


@dataclass(frozen=True, eq=False)
class LatentLibrary:
    """The saved latents of one model file, in the order they were saved.

    Attributes:
        model_sha256: SHA-256 of the model file (see :func:`core.editing.fingerprint.file_sha256`).
        entries: the saved latents, names unique.
    """

    model_sha256: str
    entries: tuple[SavedLatent, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.entries)

    def get(self, name: str) -> SavedLatent:
        for e in self.entries:
            if e.name == name:
                return e
        raise KeyError(f"no saved latent named {name!r}; have {list(self.names)}")

    def save(self, name: str, edit: LatentEdit, thumbnail: np.ndarray | None = None) -> LatentLibrary:
        """Add ``name`` (replacing an entry of that name in place)."""
        new = SavedLatent(name, edit, thumbnail)
        if name in self.names:
            return replace(self, entries=tuple(new if e.name == name else e for e in self.entries))
        return replace(self, entries=self.entries + (new,))

    def remove(self, name: str) -> LatentLibrary:
        self.get(name)
        return replace(self, entries=tuple(e for e in self.entries if e.name != name))

    def rename(self, old: str, new: str) -> LatentLibrary:
        if new in self.names and new != old:
            raise ValueError(f"a saved latent named {new!r} exists already")
        return replace(self, entries=tuple(replace(e, name=new) if e.name == old else e for e in self.entries))


def latents_path(model_path: str | os.PathLike) -> str:
    """``model.safetensors`` -> ``model.latents.npz``."""
    return sidecar_path(model_path, SUFFIX)


def save_library(library: LatentLibrary, path: str | os.PathLike) -> None:
    """Write ``library`` to ``path`` atomically."""
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, "model_sha256": library.model_sha256,
              "entries": [{"name": e.name, "values": dict(e.edit.values), "thumbnail": e.thumbnail is not None}
                          for e in library.entries]}
    arrays = {"header": np.array(json.dumps(header))}
    for i, e in enumerate(library.entries):
        arrays[f"base_{i}"] = e.edit.base.numpy().astype(np.float32)
        if e.thumbnail is not None:
            arrays[f"thumb_{i}"] = np.asarray(e.thumbnail, dtype=np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    with atomic_write(path) as f:
        f.write(buf.getvalue())


def load_library(path: str | os.PathLike, model_sha256: str | None = None) -> LatentLibrary:
    """Read a saved-latents file; with ``model_sha256`` refuse one saved for another model
    (``LatentsFileError``). A missing file raises ``FileNotFoundError``.

    The header is read and checked first (format, model hash, entry count), then every array's declared shape
    and dtype (:mod:`core.npz_file`); arrays are read only when all of that passed.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such saved-latents file")

    def error(problem: str) -> LatentsFileError:
        return LatentsFileError(f"{path}: not a readable saved-latents file ({problem})")

    try:
        with NpzReader(path, "a saved-latents file (.latents.npz)", error=error) as z:
            header = _read_header(z, error)
            if model_sha256 is not None and header["model_sha256"] != model_sha256:
                raise LatentsFileError(f"{path}: saved for another model file (SHA-256 "
                                       f"{str(header['model_sha256'])[:12]}..., this one "
                                       f"{model_sha256[:12]}...)")
            entries = header["entries"]
            if not isinstance(entries, list) or len(entries) > MAX_ENTRIES:
                raise error(f"'entries' must be a list of at most {MAX_ENTRIES}")
            for i, e in enumerate(entries):
                _check_entry_arrays(z, i, bool(e["thumbnail"]), error)
            return LatentLibrary(str(header["model_sha256"]), tuple(
                SavedLatent(e["name"], LatentEdit(torch.from_numpy(z.read(f"base_{i}").astype(np.float32)),
                                                  tuple((str(k), float(v)) for k, v in e["values"].items())),
                            z.read(f"thumb_{i}") if e["thumbnail"] else None)
                for i, e in enumerate(entries)))
    except LatentsFileError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise error(f"{type(exc).__name__}: {exc}") from None


def load_latents(path: str | os.PathLike) -> LatentLibrary:
    """What "Load latent" opens: a saved-latents file (:func:`load_library`, any model), or one latent
    (``core.editing.latent_file``: ``ws``/``w``, e.g. an inversion's ``pivot.npz``) as a library of one entry
    named after the file. Raises ``FileNotFoundError``, ``LatentsFileError`` or ``LatentFileError``."""
    from pathlib import Path

    from core.editing.latent_file import read_latent_file

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such latent file")
    with NpzReader(path, "a latent .npz file",
                   error=lambda p: LatentsFileError(f"{path}: not a readable latent or saved-latents file ({p})")) as z:
        is_library = "header" in z.arrays
    if is_library:
        return load_library(path)
    ws = torch.from_numpy(read_latent_file(path))
    return LatentLibrary("", (SavedLatent(Path(path).name.removesuffix(".npz"), LatentEdit(ws, ()), None),))


def _read_header(z: NpzReader, error) -> dict:
    info = z.arrays.get("header")
    if (info is None or info.shape != () or info.dtype.kind != "U"
            or info.dtype.itemsize > 4 * MAX_HEADER_CHARS):
        raise error(f"no JSON header of at most {MAX_HEADER_CHARS:,} characters")
    header = json.loads(str(z.read("header")))
    got = (header.get("format"), header.get("format_version")) if isinstance(header, dict) else (None, None)
    if got != (FORMAT, FORMAT_VERSION):
        raise error(f"format {got[0]!r} version {got[1]!r}")
    return header


def _check_entry_arrays(z: NpzReader, i: int, thumbnail: bool, error) -> None:
    """Entry ``i``'s arrays exist with sane declared shapes: ``base_i`` float ``[num_ws, w_dim]`` within the
    latent limits, ``thumb_i`` uint8 ``[H, W, 3]`` with sides up to :data:`MAX_THUMB_SIDE`."""
    base = z.arrays.get(f"base_{i}")
    if base is None or base.dtype.kind != "f" or len(base.shape) != 2 or not (
            1 <= base.shape[0] <= MAX_NUM_WS and 1 <= base.shape[1] <= MAX_W_DIM):
        got = f"{base.dtype} {list(base.shape)}" if base is not None else "nothing"
        raise error(f"base_{i} must be float [num_ws <= {MAX_NUM_WS}, w_dim <= {MAX_W_DIM}], got {got}")
    if thumbnail:
        t = z.arrays.get(f"thumb_{i}")
        if t is None or t.dtype != np.uint8 or len(t.shape) != 3 or t.shape[2] != 3 or not (
                1 <= t.shape[0] <= MAX_THUMB_SIDE and 1 <= t.shape[1] <= MAX_THUMB_SIDE):
            got = f"{t.dtype} {list(t.shape)}" if t is not None else "nothing"
            raise error(f"thumb_{i} must be uint8 [H, W, 3] with sides <= {MAX_THUMB_SIDE}, got {got}")
