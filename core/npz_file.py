"""Read NumPy ``.npz`` side-car files so that their claims are checked before any array is read.

``np.load`` on an ``.npz`` trusts two claims: the zip member's declared size and the ``.npy`` header's
shape, and allocates the whole array from the header before reading it. A 3 MB file of deflated zeros whose
header says ``[20000, 20000]`` float64 thus costs 3.2 GB. :class:`NpzReader` opens the file (regular files
only, see :mod:`core.regular_file`), reads every member's ``.npy`` header (a few hundred bytes, decompressing
only those), and exposes ``(shape, dtype)`` per array. A caller checks the shapes its format allows, then
calls :meth:`NpzReader.read`, which reads exactly the bytes the header announces and refuses:

- members that are not ``.npy`` arrays, more than :data:`MAX_MEMBERS` of them, or ``.npy`` versions other
  than 1.0 / 2.0;
- object, structured and other non-numeric dtypes (unicode text is allowed: our headers are JSON strings);
- a header whose array does not match the member's declared size, or an array above ``max_bytes``;
- archives over the :data:`ZIP_LIMITS` (entry count, sizes, compression ratio: :mod:`core.zip_limits`).

Errors are raised by the caller's ``error`` factory (e.g. ``DirectionsFileError``) with the file's path.
"""

from __future__ import annotations

import math
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from numpy.lib import format as npy_format

from core.regular_file import open_regular
from core.zip_limits import ZipLimits, zip_entry_count, zip_problems

__all__ = ["MAX_ARRAY_BYTES", "MAX_MEMBERS", "ArrayInfo", "NpzReader"]

MAX_MEMBERS = 4096
MAX_ARRAY_BYTES = 256 << 20  # one array; a caller passes its own, smaller bound where it knows one
_MAX_HEADER = 1 << 16  # bytes of one .npy header
ZIP_LIMITS = ZipLimits(max_entries=MAX_MEMBERS, max_entry_bytes=MAX_ARRAY_BYTES + _MAX_HEADER)
_KINDS = "biufcU"  # bool, int, uint, float, complex, unicode text


@dataclass(frozen=True)
class ArrayInfo:
    """What a member's ``.npy`` header declares (nothing of the array read yet)."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    data_offset: int  # bytes of magic and header before the data

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


class NpzReader:
    """``with NpzReader(path, error=...) as z:`` then ``z.arrays`` (name -> :class:`ArrayInfo`, names without
    ``.npy``) and ``z.read(name)``. The file stays open (and the zip's central directory is read once)."""

    def __init__(self, path: str | os.PathLike, what: str = "an .npz file", *,
                 error: Callable[[str], Exception]) -> None:
        self.path, self._error = os.fspath(path), error
        self._file: BinaryIO | None = None
        self._zip: zipfile.ZipFile | None = None
        self._members: dict[str, zipfile.ZipInfo] = {}
        self.arrays: dict[str, ArrayInfo] = {}
        self._file = open_regular(path, what, error=error)
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        count = zip_entry_count(self._file)
        if count is None:
            raise self._error("not a readable .npz file (no zip directory)")
        if count > MAX_MEMBERS:
            raise self._error(f"{count:,} members, more than {MAX_MEMBERS:,}")
        try:
            self._zip = zipfile.ZipFile(self._file)
            infos = self._zip.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as e:
            raise self._error(f"not a readable .npz file ({type(e).__name__}: {e})") from None
        problems = zip_problems(infos, ZIP_LIMITS)
        if problems:
            raise self._error("; ".join(problems[:5]))
        for info in infos:
            if not info.filename.endswith(".npy") or info.is_dir():
                raise self._error(f"member {info.filename!r:.80} is not an .npy array")
            name = info.filename[:-4]
            if name in self._members:
                raise self._error(f"member {info.filename!r:.80} appears twice")
            self._members[name] = info
            self.arrays[name] = self._header(info)

    def _header(self, info: zipfile.ZipInfo) -> ArrayInfo:
        where = f"member {info.filename!r:.80}"
        try:
            with self._zip.open(info) as f:
                version = npy_format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = npy_format.read_array_header_1_0(f, max_header_size=_MAX_HEADER)
                elif version == (2, 0):
                    shape, fortran, dtype = npy_format.read_array_header_2_0(f, max_header_size=_MAX_HEADER)
                else:
                    raise ValueError(f".npy format version {version} (1.0 and 2.0 are read)")
                offset = f.tell()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, SyntaxError, TypeError) as e:
            raise self._error(f"{where}: unreadable .npy header ({type(e).__name__}: {str(e)[:200]})"
                              ) from None
        if dtype.kind not in _KINDS or dtype.fields is not None or dtype.subdtype is not None:
            raise self._error(f"{where}: dtype {dtype} is not a plain numeric or text dtype")
        array = ArrayInfo(info.filename[:-4], tuple(shape), dtype, bool(fortran), offset)
        if offset + array.nbytes != info.file_size:
            raise self._error(f"{where}: the header declares {list(shape)} {dtype} ({array.nbytes:,} bytes) "
                              f"but the member holds {max(0, info.file_size - offset):,} bytes of data")
        return array

    def read(self, name: str, *, max_bytes: int = MAX_ARRAY_BYTES) -> np.ndarray:
        """The array ``name`` (C order), read after checking its size against ``max_bytes``."""
        info = self.arrays[name]
        if info.nbytes > max_bytes:
            raise self._error(f"array {name!r} is {list(info.shape)} {info.dtype} ({info.nbytes:,} bytes), "
                              f"over the limit of {max_bytes:,}")
        try:
            with self._zip.open(self._members[name]) as f:
                f.read(info.data_offset)
                data = f.read(info.nbytes)  # the declared size; zipfile stops at the member's end
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
            raise self._error(f"array {name!r}: corrupt data ({type(e).__name__}: {str(e)[:200]})") from None
        if len(data) != info.nbytes:
            raise self._error(f"array {name!r}: truncated ({len(data):,} of {info.nbytes:,} bytes)")
        order = "F" if info.fortran_order else "C"
        array = np.frombuffer(data, dtype=info.dtype).reshape(info.shape, order=order)
        return np.array(array, order="C")  # writable, owning its memory

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
        if self._file is not None:
            self._file.close()

    def __enter__(self) -> NpzReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
