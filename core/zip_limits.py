"""Check a zip archive's claims before reading it: how many entries it has, how large each entry inflates,
and by how much (zip bombs).

:func:`zip_entry_count` reads the entry count from the end-of-central-directory record (a few bytes at the
end of the file) before :mod:`zipfile` builds one object per entry; :func:`zip_problems` then checks every
entry's declared size and compression ratio against :class:`ZipLimits`. :mod:`zipfile` never returns more
than an entry's declared size, so these checks bound what reading an accepted archive can cost.

Used by :mod:`core.npz_file` (side-car ``.npz`` files) and ``training.dataset`` (dataset zips).
"""

from __future__ import annotations

import os
import struct
import zipfile
from dataclasses import dataclass
from typing import BinaryIO

__all__ = ["ZipLimits", "zip_entry_count", "zip_problems"]

_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_EOCD64 = b"PK\x06\x06"
_MAX_COMMENT = 0xFFFF


@dataclass(frozen=True)
class ZipLimits:
    """Attributes:
        max_entries: entries in the archive.
        max_entry_bytes: declared (uncompressed) size of one entry.
        max_total_bytes: declared sizes of all entries together.
        max_ratio: uncompressed / compressed size of one entry, checked for entries above
            ``ratio_min_bytes`` (small entries may compress well without harm).
    """

    max_entries: int = 4096
    max_entry_bytes: int = 256 << 20
    max_total_bytes: int = 1 << 40
    max_ratio: float = 100.0
    ratio_min_bytes: int = 1 << 20


def zip_entry_count(f: BinaryIO) -> int | None:
    """The entry count the end-of-central-directory record declares (zip64 aware), or None when the file has
    no such record (not a zip). Reads at most 64 KiB + 98 bytes from the end; leaves ``f`` at its end."""
    size = f.seek(0, os.SEEK_END)
    tail_size = min(size, 22 + _MAX_COMMENT + 20 + 56)
    f.seek(size - tail_size)
    tail = f.read(tail_size)
    at = tail.rfind(_EOCD, 0, max(0, len(tail) - 18))  # the record is 22 bytes + comment
    if at < 0:
        return None
    entries = struct.unpack_from("<H", tail, at + 10)[0]
    loc = at - 20
    if loc >= 0 and tail[loc:loc + 4] == _EOCD64_LOCATOR:  # zip64: the count is in the zip64 record
        offset = struct.unpack_from("<Q", tail, loc + 8)[0]
        if 0 <= offset <= size - 56:
            f.seek(offset)
            record = f.read(56)
            if record[:4] == _EOCD64:
                entries = max(entries, struct.unpack_from("<Q", record, 32)[0])
    f.seek(size)
    return entries


def zip_problems(infos: list[zipfile.ZipInfo], limits: ZipLimits) -> list[str]:
    """One message per entry (by name) whose declared size or compression ratio breaks ``limits``, plus one
    for the total; empty when the archive is acceptable."""
    problems, total = [], 0
    if len(infos) > limits.max_entries:
        problems.append(f"{len(infos):,} entries, more than {limits.max_entries:,}")
    for info in infos:
        total += info.file_size
        name = f"entry {info.filename!r:.100}"
        if info.file_size > limits.max_entry_bytes:
            problems.append(f"{name} inflates to {info.file_size:,} bytes, over the limit of "
                            f"{limits.max_entry_bytes:,}")
        elif (info.file_size > limits.ratio_min_bytes
              and info.file_size > limits.max_ratio * max(info.compress_size, 1)):
            problems.append(f"{name} inflates {info.compress_size:,} bytes to {info.file_size:,} (ratio "
                            f"{info.file_size / max(info.compress_size, 1):,.0f}, over the limit of "
                            f"{limits.max_ratio:g}): a zip bomb?")
    if total > limits.max_total_bytes:
        problems.append(f"the entries inflate to {total:,} bytes in all, over the limit of "
                        f"{limits.max_total_bytes:,}")
    return problems
