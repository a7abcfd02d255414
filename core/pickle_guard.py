"""Bound what a pickle may make the unpickler build, by walking its opcodes before anything is built.

Python's unpickler trusts the stream's claims: a tuple nested a million levels deep is built without a
complaint and then crashes the interpreter (a C stack overflow when it is hashed as a dict key, exit 139);
a memo index of 2**30 makes it allocate an 8 GB memo table; a frame or byte string may claim more bytes than
the file holds. :func:`scan_pickle` replays one pickle's opcodes (with :mod:`pickletools`, which decodes
arguments but builds nothing) on a model of the stack in which every container is a node with a nesting
depth (:mod:`core.pickle_stack`), and refuses the stream as soon as it exceeds a :class:`PickleLimits` bound:

- nesting depth of any object (containers, and what REDUCE / NEWOBJ / BUILD make of their arguments,
  counted conservatively; an object that contains itself counts as infinitely deep and is refused);
- items in one container and in all containers together, stack length, memo size and memo indices;
- declared lengths (frames, byte and text strings) against the bytes that are actually left;
- opcodes in total, and the length of protocol-0 text lines.

It also reports, as plain values, every global a stream names and every persistent id it passes (where
the id is built from literals), so a caller can check claims that the format makes in them (e.g. the
element count of a legacy ``torch.save`` storage) against the bytes present. Nothing is imported, called or
allocated in proportion to a claim.

The guard bounds what unpickling *builds*; the callers' restricted ``find_class`` remains the gate for what
may be *imported*. Used by :mod:`core.checkpoint` (our snapshots) and :mod:`core.legacy_pickle` (official
StyleGAN3-style pickles and the storages inside them).
"""

from __future__ import annotations

import io
import mmap
import os
import pickletools
from dataclasses import dataclass
from typing import Any, BinaryIO

from core.pickle_stack import (
    MAX_LITERAL_TEXT,
    NOT_A_LITERAL,
    PLAIN_ATOMS,
    GlobalRef,
    PickleGuardError,
    PickleLimits,
    StackModel,
    apply_opcode,
    malformed,
)

__all__ = ["GlobalRef", "PickleGuardError", "PickleLimits", "PickleScan", "scan_pickle"]


@dataclass(frozen=True)
class PickleScan:
    """What :func:`scan_pickle` found in one pickle.

    Attributes:
        start, end: byte offsets of the first opcode and just past STOP.
        ops: opcodes read; depth: the deepest nesting reached; items: container items in all.
        protocol: the PROTO argument (0 when absent).
        globals: every global named, in stream order (``"?"`` parts for names not built from literals).
        persistent_ids: the value of every persistent id, in order: nested tuples of str / bytes / int /
            float / bool / None / :class:`GlobalRef`, or ``None`` where the id was not built from literals.
        result: the pickled value itself when it is such a literal (e.g. a bare number), else ``None``.
    """

    start: int
    end: int
    ops: int
    depth: int
    items: int
    protocol: int
    globals: tuple[GlobalRef, ...]
    persistent_ids: tuple[Any, ...]
    result: Any = None

class _Bounded:
    """A read-only view of ``[pos, limit)`` of a file for pickletools: a read never asks the file for more
    than what is left (so a claimed length is never allocated), and text lines are capped."""

    def __init__(self, f: BinaryIO, limit: int, max_line: int) -> None:
        self.f, self.limit, self.max_line = f, limit, max_line
        self.tell = f.tell

    def read(self, n: int = -1) -> bytes:
        if 0 <= n <= 4096:  # opcodes and fixed-size arguments: nothing to bound
            return self.f.read(n)
        left = max(0, self.limit - self.f.tell())
        return self.f.read(left if n is None or n < 0 else min(n, left))

    def readline(self) -> bytes:
        left = max(0, self.limit - self.f.tell())
        line = self.f.readline(min(left, self.max_line + 1))
        if len(line) > self.max_line:
            raise PickleGuardError(f"a text line of more than {self.max_line:,} bytes at {self.f.tell()}")
        return line


class _Mapped:
    """A memory-mapped file for pickletools: ``mmap.read`` never returns (or allocates) more than what is
    left, ``tell`` is the map's; only lines need a cap. Much faster than a Python-level read wrapper."""

    def __init__(self, mm: mmap.mmap, max_line: int) -> None:
        self.mm, self.max_line = mm, max_line
        self.read, self.tell, self.seek = mm.read, mm.tell, mm.seek

    def readline(self) -> bytes:
        pos = self.mm.tell()
        nl = self.mm.find(b"\n", pos, pos + self.max_line + 1)
        if nl < 0 and len(self.mm) - pos > self.max_line:
            raise PickleGuardError(f"a text line of more than {self.max_line:,} bytes at byte {pos}")
        return self.mm.read((nl + 1 - pos) if nl >= 0 else len(self.mm) - pos)


class _BoundedBytes(io.BytesIO):
    """In-memory data: ``BytesIO.read`` never allocates more than what is left; only lines need a cap."""

    max_line = 1 << 20

    def readline(self, size: int | None = -1) -> bytes:
        line = super().readline(self.max_line + 1)
        if len(line) > self.max_line:
            raise PickleGuardError(f"a text line of more than {self.max_line:,} bytes at byte {self.tell()}")
        return line

def _map(f: BinaryIO, end: int) -> mmap.mmap | None:
    """A read-only map of the file's first ``end`` bytes, or None (not a real file, empty, unsupported)."""
    try:
        return mmap.mmap(f.fileno(), end, access=mmap.ACCESS_READ) if end > 0 else None
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return None


def scan_pickle(data: bytes | bytearray | memoryview | BinaryIO, start: int = 0, *,
                limits: PickleLimits = PickleLimits(), end: int | None = None) -> PickleScan:
    """Walk the pickle that starts at byte ``start`` of ``data`` (bytes, or a seekable binary file, which is
    memory-mapped where possible) and check it against ``limits``; nothing is built. A file is left
    positioned after the scanned pickle.

    Args:
        end: the data's end (default: its length / the file's size); claims are checked against it.

    Raises:
        PickleGuardError: a limit is exceeded, a length claims more bytes than remain, or the stream is
            malformed or truncated; the message says which and where.
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        stream = _BoundedBytes(data if end is None else memoryview(data)[:end])
        stream.max_line = limits.max_line
        stream.seek(start)
        return _walk(stream, stream.getbuffer().nbytes, limits)
    f = data
    if end is None:
        end = f.seek(0, os.SEEK_END)
    mapped = _map(f, end)
    if mapped is not None:
        with mapped:
            mapped.seek(start)
            result = _walk(_Mapped(mapped, limits.max_line), end, limits)
    else:
        f.seek(start)
        result = _walk(_Bounded(f, end, limits.max_line), end, limits)
    f.seek(result.end)
    return result


def _walk(stream: Any, end: int, limits: PickleLimits) -> PickleScan:
    start = stream.tell()
    m = StackModel(limits)
    globals_: list[GlobalRef] = []
    pids: list[Any] = []
    ops, protocol, stop = 0, 0, None
    stack, lits, max_stack = m.stack, m.lits, limits.max_stack
    try:
        for op, arg, pos in pickletools.genops(stream):
            ops += 1
            if ops > limits.max_ops:
                raise PickleGuardError(f"more than {limits.max_ops:,} opcodes")
            name = op.name
            if name in PLAIN_ATOMS:  # the most frequent opcodes, inlined (m.push without the call)
                if len(stack) >= max_stack:
                    raise PickleGuardError(f"more than {max_stack:,} values on the unpickler's stack")
                stack.append(0)
                lits.append(arg if not isinstance(arg, (str, bytes)) or len(arg) <= MAX_LITERAL_TEXT
                            else NOT_A_LITERAL)
                continue
            if name == "POP" and stack and not (m.marks and len(stack) == m.marks[-1]):
                stack.pop()
                lits.pop()
                continue
            if name == "FRAME" and arg > end - stream.tell():
                raise malformed(f"a frame claims {arg:,} bytes but only {end - stream.tell():,} remain "
                                 f"(at byte {pos})")
            if name == "PROTO":
                protocol = arg
            apply_opcode(m, name, arg, ops, globals_, pids)
            if name == "STOP":
                stop = stream.tell()
                break
    except PickleGuardError:
        raise
    except MemoryError:
        raise PickleGuardError("an argument does not fit in memory") from None
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, UnicodeDecodeError) as e:
        # pickletools: truncated argument, unknown opcode, a length claiming more than remains, ...
        raise malformed(f"truncated or malformed pickle: {e} (at byte {stream.tell()} of {end})") from None
    if stop is None:
        raise malformed(f"truncated pickle: no STOP opcode before byte {end}")
    if len(m.stack) != 1 or m.marks:
        raise malformed(f"malformed pickle: {len(m.stack)} values and {len(m.marks)} marks left on the "
                         "stack at STOP")
    result = m.lits[0]
    return PickleScan(start, stop, ops, m.deepest, m.items, protocol, tuple(globals_), tuple(pids),
                      None if result is NOT_A_LITERAL else result)
