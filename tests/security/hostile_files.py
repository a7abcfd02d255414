"""Writers of hostile and broken files for the bad-input suite (tests/security/test_hostile_files.py).

Every writer is cheap in time and memory however much its file *claims*: zip bombs are written from one
deflated block repeated (full flushes make every block of zeros compress to the same bytes), huge PNGs from
zlib streams fed row by row, pickles opcode by opcode.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import socket
import struct
import zlib
from pathlib import Path

import numpy as np

# ---------------------------------------------------------------------------------------------- raw zip


def deflated_zeros(n: int, block: int = 1 << 20) -> bytes:
    """A raw deflate stream of ``n`` zero bytes, built from one compressed block repeated."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    one = c.compress(bytes(block)) + c.flush(zlib.Z_FULL_FLUSH)
    full, rest = divmod(n, block)
    tail = c.compress(bytes(rest)) + c.flush(zlib.Z_FINISH)
    return one * full + tail


def write_zip(path: Path, members: list[tuple[str, bytes, int, bool]], claimed_entries: int | None = None) -> Path:
    """A zip whose entries are ``(name, stored data, declared uncompressed size, deflated)``; sizes are
    whatever the caller says. Stored entries get their true CRC; deflated ones a CRC of 0 (readers that refuse
    them early never check it). ``claimed_entries`` overrides the count in the end record (central directory
    unchanged)."""
    out = io.BytesIO()
    central = []
    for name, data, size, deflated in members:
        raw = name.encode()
        offset = out.tell()
        method = 8 if deflated else 0
        crc = 0 if deflated else zlib.crc32(data)
        out.write(struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, method, 0, 0, crc, len(data), size, len(raw), 0))
        out.write(raw + data)
        central.append(struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 20, 20, 0, method, 0, 0, crc, len(data), size,
                                   len(raw), 0, 0, 0, 0, 0, offset) + raw)
    start = out.tell()
    for c in central:
        out.write(c)
    count = len(members) if claimed_entries is None else claimed_entries
    out.write(struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, min(count, 0xFFFF), min(count, 0xFFFF),
                          out.tell() - start, start, 0))
    path.write_bytes(out.getvalue())
    return path


def zeros_bomb(name: str, prefix: bytes, zeros: int) -> tuple[str, bytes, int, bool]:
    """A deflated member holding ``prefix`` then ``zeros`` zero bytes (a few KB per GB)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)
    return name, head + deflated_zeros(zeros), len(prefix) + zeros, True


def npy_header(shape: tuple[int, ...], dtype: str) -> bytes:
    """The magic and header of a version-1.0 ``.npy`` file declaring ``shape`` and ``dtype``."""
    text = repr({"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
    pad = 64 - (10 + len(text) + 1) % 64
    text = text + " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin-1")


def npy_member(name: str, array: np.ndarray) -> tuple[str, bytes, int, bool]:
    """A stored (uncompressed) honest ``.npy`` member."""
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    data = buf.getvalue()
    return name + ".npy", data, len(data), False


def npy_bomb(name: str, shape: tuple[int, ...], dtype: str = "<f8") -> tuple[str, bytes, int, bool]:
    """A deflated ``.npy`` member declaring ``shape`` whose data are zeros: a few KB per GB claimed."""
    return zeros_bomb(name + ".npy", npy_header(shape, dtype), int(np.prod(shape)) * np.dtype(dtype).itemsize)


# ---------------------------------------------------------------------------------------------- images


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A tiny PNG (signature, IHDR, an empty IDAT, IEND) claiming ``width`` x ``height`` RGB."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b""))
                     + _chunk(b"IEND", b""))
    return path


def png_grey(path: Path, width: int, height: int, value: int = 200) -> Path:
    """A valid 8-bit greyscale PNG of one value, streamed row by row (no full image in memory)."""
    c = zlib.compressobj(9)
    row = b"\x00" + bytes([value]) * width
    parts = [c.compress(row) for _ in range(height)] + [c.flush()]
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts))
                     + _chunk(b"IEND", b""))
    return path


def jpeg_header_only(path: Path, width: int, height: int) -> Path:
    """SOI, a baseline SOF0 frame header claiming ``width`` x ``height`` (3 components), EOI: no data."""
    sof = struct.pack(">BHHB", 8, height, width, 3) + b"".join(bytes([i, 0x11, 0]) for i in (1, 2, 3))
    path.write_bytes(b"\xff\xd8" + b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof + b"\xff\xd9")
    return path


def png_noise(path: Path, size: int, seed: int = 0) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
    return path


# ---------------------------------------------------------------------------------------------- pickles


def _u32(v: int) -> bytes:
    return struct.pack("<I", v)


PICKLE_PAYLOADS: dict[str, bytes] = {
    # the reproducer: a dict key that is a tuple nested 10**6 deep (hashing it overflows the C stack)
    "tuple key nested 10^6 deep": b"\x80\x04}" + b")" + b"\x85" * 10**6 + b"K\x01s.",
    # lists nested 10**5 deep, built bottom-up with APPEND
    "list nested 10^5 deep": b"\x80\x04" + b"]" * 100_000 + b"a" * 99_999 + b".",
    # dicts nested 10**5 deep as values (SETITEM)
    "dict nested 10^5 deep": b"\x80\x04" + b"}K\x01" * 100_000 + b"}" + b"s" * 100_000 + b".",
    # 10**5 lists memoized first, then nested top-down through the memo (depth grows after containment)
    "memo chain nested top-down": (b"\x80\x04" + b"".join(b"]r" + _u32(i) + b"0" for i in range(100_000))
                                   + b"".join(b"j" + _u32(i) + b"j" + _u32(i + 1) + b"a0" for i in range(99_999))
                                   + b"j" + _u32(0) + b"."),
    # a list that contains itself
    "list containing itself": b"\x80\x04]r" + _u32(0) + b"j" + _u32(0) + b"a.",
    # memo index 2**28: the unpickler would allocate a 2 GB memo table
    "memo index 2^28": b"\x80\x04K\x01r" + _u32(1 << 28) + b".",
    # a frame claiming 2**40 bytes
    "frame claiming 1 TB": b"\x80\x04\x95" + struct.pack("<Q", 1 << 40) + b"K\x01.",
    # a byte string claiming 2**40 bytes
    "bytes claiming 1 TB": b"\x80\x04\x8e" + struct.pack("<Q", 1 << 40) + b"abc.",
    # a text string claiming 2**33 bytes
    "text claiming 8 GB": b"\x80\x04\x8d" + struct.pack("<Q", 1 << 33) + b"abc.",
    # one list of 3 * 10**6 items (3 MB of file)
    "list of 3*10^6 items": b"\x80\x04](" + b"N" * 3_000_000 + b"e.",
    # 2 * 10**6 marks on the stack
    "2*10^6 marks": b"\x80\x04" + b"(" * 2_000_000 + b"N.",
    # 4 * 10**6 opcodes that never nest or grow anything (push, pop, ...)
    "4*10^6 opcodes of push and pop": b"\x80\x04" + b"N0" * 2_000_000 + b"N.",
    # a protocol-0 decimal long of 10**6 digits
    "decimal long of 10^6 digits": b"L" + b"9" * 1_000_000 + b"L\n.",
}


def write_pickle_payloads(root: Path) -> dict[str, Path]:
    out = {}
    for i, (name, data) in enumerate(PICKLE_PAYLOADS.items()):
        out[name] = root / f"payload{i}.pkl"
        out[name].write_bytes(data)
    return out


# ---------------------------------------------------------------------------------------------- special files


def special_files(root: Path, regular: Path) -> dict[str, str]:
    """Paths that are not regular files (FIFO, folder, character device, socket, links to them) and one
    link to the regular file ``regular`` (a control that must load). Keys describe them."""
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    fifo = root / f"fifo{regular.suffix}"
    os.mkfifo(fifo)
    out["FIFO"] = str(fifo)
    folder = root / f"folder{regular.suffix}"
    folder.mkdir()
    out["folder"] = str(folder)
    out["character device /dev/zero"] = "/dev/zero"
    dev_link = root / f"zero{regular.suffix}"
    dev_link.symlink_to("/dev/zero")
    out["link to /dev/zero"] = str(dev_link)
    sock = root / f"sock{regular.suffix}"
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(str(sock))
    finally:
        s.close()
    out["socket"] = str(sock)
    fifo_link = root / f"fifolink{regular.suffix}"
    fifo_link.symlink_to(fifo)
    out["link to a FIFO"] = str(fifo_link)
    good = root / f"good{regular.suffix}"
    good.symlink_to(regular.resolve())
    out["link to a regular file"] = str(good)
    return out


# ---------------------------------------------------------------------------------------------- misc


def json_member(name: str, obj) -> tuple[str, bytes, int, bool]:
    data = json.dumps(obj).encode()
    return name, data, len(data), False


def stored(name: str, data: bytes) -> tuple[str, bytes, int, bool]:
    return name, data, len(data), False


def plain_pickle(obj) -> bytes:
    return pickle.dumps(obj, protocol=4)
