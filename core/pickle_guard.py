"""Bound what a pickle may make the unpickler build, by walking its opcodes before anything is built.

Python's unpickler trusts the stream's claims: a tuple nested a million levels deep is built without a
complaint and then crashes the interpreter (a C stack overflow when it is hashed as a dict key, exit 139);
a memo index of 2**30 makes it allocate an 8 GB memo table; a frame or byte string may claim more bytes than
the file holds. :func:`scan_pickle` replays one pickle's opcodes (with :mod:`pickletools`, which decodes
arguments but builds nothing) on a model of the stack in which every container is a node with a nesting
depth, and refuses the stream as soon as it exceeds a :class:`PickleLimits` bound:

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

__all__ = ["GlobalRef", "PickleGuardError", "PickleLimits", "PickleScan", "scan_pickle"]


class PickleGuardError(ValueError):
    """The stream exceeds a limit, claims bytes it does not hold, or is malformed (the message says which).
    Nothing from it was built. ``limit`` is True for a limit (``PickleLimits``) and False for a malformed or
    truncated stream (which the real unpickler would refuse too, at the same opcode or earlier)."""

    def __init__(self, message: str, *, limit: bool = True) -> None:
        super().__init__(message)
        self.limit = limit


def _malformed(message: str) -> PickleGuardError:
    return PickleGuardError(message, limit=False)


@dataclass(frozen=True)
class PickleLimits:
    """Bounds for :func:`scan_pickle` (defaults suit model checkpoints: a few thousand tensors, nesting of a
    few dozen levels; the memory they allow is a few hundred bytes per opcode at most).

    Attributes:
        max_depth: nesting of any object (Python's own C code recurses once per level).
        max_container_items: items (dict keys and values count separately) added to one container.
        max_total_items: items added to all containers together.
        max_stack: values on the unpickler's stack at any time (marks included).
        max_memo: memo entries; a memo index may never exceed the number of opcodes read so far.
        max_ops: opcodes in the stream (bounds the scan's time: about 1.5 s per million).
        max_line: bytes in one protocol-0 text argument (a global's name, a decimal number, ...).
    """

    max_depth: int = 200
    max_container_items: int = 1_000_000
    max_total_items: int = 2_000_000
    max_stack: int = 100_000  # pickle.dump batches APPENDS / SETITEMS by 1000: stacks stay small
    max_memo: int = 2_000_000
    max_ops: int = 2_000_000  # an official 512 snapshot has ~100 k
    max_line: int = 1 << 20


@dataclass(frozen=True)
class GlobalRef:
    """A global named by the stream (GLOBAL / STACK_GLOBAL / INST), as data."""

    module: str
    name: str

    def __str__(self) -> str:
        return f"{self.module}.{self.name}"


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


class _NoLiteral:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<not a literal>"


_NOLIT = _NoLiteral()
_MAX_LITERAL_TUPLE = 16
_MAX_LITERAL_TEXT = 1024
_ATOMS = {
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "STRING", "BINSTRING",
    "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "UNICODE", "SHORT_BINUNICODE",
    "BINUNICODE", "BINUNICODE8", "FLOAT", "BINFLOAT", "NONE", "NEWTRUE", "NEWFALSE",
}
_CONSTANTS = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}
_PLAIN_ATOMS = _ATOMS - set(_CONSTANTS)  # their argument is their value


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


def _literal(value: Any) -> Any:
    if isinstance(value, (str, bytes)) and len(value) > _MAX_LITERAL_TEXT:
        return _NOLIT
    return value


class _Machine:
    """The stack model: every value is a node id (0: an atom, which never contains anything) with a
    literal value alongside; containers record their depth, size and the containers that hold them."""

    def __init__(self, limits: PickleLimits) -> None:
        self.lim = limits
        self.depth = [0]
        self.size = [0]
        self.parents: list[list[int]] = [[]]
        self.stack: list[int] = []
        self.lits: list[Any] = []
        self.marks: list[int] = []
        self.memo: dict[int, tuple[int, Any]] = {}
        self.items = 0
        self.deepest = 0
        self.work = 0  # depth updates propagated to containers that already held a deepened object

    # -------------------------------------------------------------- nodes

    def _too_deep(self) -> PickleGuardError:
        return PickleGuardError(f"objects nested deeper than {self.lim.max_depth} levels (or containing "
                                "themselves); refused before building them")

    def _count(self, node: int, k: int) -> None:
        self.items += k
        if self.items > self.lim.max_total_items:
            raise PickleGuardError(f"more than {self.lim.max_total_items:,} container items in all")
        if node:
            self.size[node] += k
            if self.size[node] > self.lim.max_container_items:
                raise PickleGuardError(f"a container of more than {self.lim.max_container_items:,} items")

    def new(self, children: list[int]) -> int:
        d = 1 + max((self.depth[c] for c in children), default=0)
        if d > self.lim.max_depth:
            raise self._too_deep()
        node = len(self.depth)
        self.depth.append(d)
        self.size.append(0)
        self.parents.append([])
        self._count(node, len(children))
        for c in set(children):
            if c:
                self.parents[c].append(node)
        self.deepest = max(self.deepest, d)
        return node

    def add(self, target: int, children: list[int]) -> None:
        if not target:  # an atom: the real unpickler fails on it
            return
        self._count(target, len(children))
        need = self.depth[target]
        for c in set(children):
            if c:
                self.parents[c].append(target)
                need = max(need, self.depth[c] + 1)
        work = [(target, need)]
        while work:
            node, d = work.pop()
            if self.depth[node] >= d:
                continue
            if d > self.lim.max_depth:
                raise self._too_deep()
            self.depth[node] = d
            self.deepest = max(self.deepest, d)
            raised = [(p, d + 1) for p in self.parents[node] if self.depth[p] < d + 1]
            self.work += len(raised)
            if self.work > self.lim.max_total_items:  # pickle.dump never fills a container after nesting it
                raise PickleGuardError(f"containers were deepened after being nested more than "
                                       f"{self.lim.max_total_items:,} times")
            work.extend(raised)

    # -------------------------------------------------------------- stack

    def push(self, node: int, lit: Any = _NOLIT) -> None:
        if len(self.stack) + len(self.marks) >= self.lim.max_stack:
            raise PickleGuardError(f"more than {self.lim.max_stack:,} values on the unpickler's stack")
        self.stack.append(node)
        self.lits.append(lit)

    def pop(self) -> tuple[int, Any]:
        if not self.stack or (self.marks and len(self.stack) == self.marks[-1]):
            raise _malformed("malformed pickle: stack underflow")
        return self.stack.pop(), self.lits.pop()

    def pop_mark(self) -> tuple[list[int], list[Any]]:
        if not self.marks:
            raise _malformed("malformed pickle: no MARK to pop to")
        k = self.marks.pop()
        nodes, lits = self.stack[k:], self.lits[k:]
        del self.stack[k:], self.lits[k:]
        return nodes, lits

    def top(self) -> int:
        if not self.stack or (self.marks and len(self.stack) == self.marks[-1]):
            raise _malformed("malformed pickle: stack underflow")
        return self.stack[-1]


def _tuple_literal(lits: list[Any]) -> Any:
    if len(lits) <= _MAX_LITERAL_TUPLE and all(v is not _NOLIT for v in lits):
        return tuple(lits)
    return _NOLIT


def _step(m: _Machine, name: str, arg: Any, ops: int, globals_: list, pids: list) -> None:
    """Apply one opcode to the model (see pickletools' opcode table for the stack effects)."""
    if name in _ATOMS:
        m.push(0, _literal(_CONSTANTS.get(name, arg)))
    elif name in ("EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET", "EMPTY_TUPLE"):
        m.push(m.new([]), () if name == "EMPTY_TUPLE" else _NOLIT)
    elif name == "MARK":
        if len(m.stack) + len(m.marks) >= m.lim.max_stack:
            raise PickleGuardError(f"more than {m.lim.max_stack:,} values on the unpickler's stack")
        m.marks.append(len(m.stack))
    elif name in ("TUPLE", "LIST", "DICT", "FROZENSET", "OBJ"):
        nodes, lits = m.pop_mark()
        m.push(m.new(nodes), _tuple_literal(lits) if name == "TUPLE" else _NOLIT)
    elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
        k = int(name[-1])
        popped = [m.pop() for _ in range(k)][::-1]
        m.push(m.new([n for n, _ in popped]), _tuple_literal([v for _, v in popped]))
    elif name == "INST":
        nodes, _ = m.pop_mark()
        module, _, qual = arg.partition(" ")
        globals_.append(GlobalRef(module, qual))
        m.push(m.new(nodes))
    elif name in ("APPEND", "SETITEM"):
        children = [m.pop()[0] for _ in range(1 if name == "APPEND" else 2)]
        m.add(m.top(), children)
    elif name in ("APPENDS", "SETITEMS", "ADDITEMS"):
        nodes, _ = m.pop_mark()
        m.add(m.top(), nodes)
    elif name == "BUILD":
        state, _ = m.pop()
        m.add(m.top(), [state])
    elif name == "REDUCE":
        args, _ = m.pop()
        func, _ = m.pop()
        m.push(m.new([func, args]))
    elif name == "NEWOBJ":
        args, _ = m.pop()
        cls, _ = m.pop()
        m.push(m.new([cls, args]))
    elif name == "NEWOBJ_EX":
        popped = [m.pop()[0] for _ in range(3)]
        m.push(m.new(popped))
    elif name == "GLOBAL":
        module, _, qual = arg.partition(" ")
        ref = GlobalRef(module, qual)
        globals_.append(ref)
        m.push(0, ref)
    elif name == "STACK_GLOBAL":
        (_, qual), (_, module) = m.pop(), m.pop()
        ref = GlobalRef(module if isinstance(module, str) else "?", qual if isinstance(qual, str) else "?")
        globals_.append(ref)
        m.push(0, ref)
    elif name in ("EXT1", "EXT2", "EXT4"):
        globals_.append(GlobalRef("<copyreg extension>", str(arg)))
        m.push(0)
    elif name == "PERSID":
        pids.append(_literal(arg))
        m.push(0)
    elif name == "BINPERSID":
        _, lit = m.pop()
        pids.append(None if lit is _NOLIT else lit)
        m.push(0)
    elif name == "POP":
        if m.marks and len(m.stack) == m.marks[-1]:
            m.marks.pop()
        else:
            m.pop()
    elif name == "POP_MARK":
        m.pop_mark()
    elif name == "DUP":
        m.push(m.top(), m.lits[-1])
    elif name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
        index = len(m.memo) if name == "MEMOIZE" else arg
        if index > ops or index >= m.lim.max_memo:
            raise _malformed(f"memo index {index:,} out of range (the unpickler would allocate a memo "
                             "table that large)")
        m.memo[index] = (m.top(), m.lits[-1])
    elif name in ("GET", "BINGET", "LONG_BINGET"):
        if arg not in m.memo:
            raise _malformed(f"malformed pickle: memo index {arg} read before it was written")
        m.push(*m.memo[arg])
    elif name in ("BYTEARRAY8", "NEXT_BUFFER"):
        m.push(0)
    elif name == "READONLY_BUFFER":
        m.top()
    elif name in ("PROTO", "FRAME", "STOP"):
        pass
    else:  # an opcode pickletools knows and this model does not: refuse rather than guess
        raise _malformed(f"unsupported pickle opcode {name}")


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
    m = _Machine(limits)
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
            if name in _PLAIN_ATOMS:  # the most frequent opcodes, inlined (m.push without the call)
                if len(stack) >= max_stack:
                    raise PickleGuardError(f"more than {max_stack:,} values on the unpickler's stack")
                stack.append(0)
                lits.append(arg if not isinstance(arg, (str, bytes)) or len(arg) <= _MAX_LITERAL_TEXT
                            else _NOLIT)
                continue
            if name == "POP" and stack and not (m.marks and len(stack) == m.marks[-1]):
                stack.pop()
                lits.pop()
                continue
            if name == "FRAME" and arg > end - stream.tell():
                raise _malformed(f"a frame claims {arg:,} bytes but only {end - stream.tell():,} remain "
                                 f"(at byte {pos})")
            if name == "PROTO":
                protocol = arg
            _step(m, name, arg, ops, globals_, pids)
            if name == "STOP":
                stop = stream.tell()
                break
    except PickleGuardError:
        raise
    except MemoryError:
        raise PickleGuardError("an argument does not fit in memory") from None
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, UnicodeDecodeError) as e:
        # pickletools: truncated argument, unknown opcode, a length claiming more than remains, ...
        raise _malformed(f"truncated or malformed pickle: {e} (at byte {stream.tell()} of {end})") from None
    if stop is None:
        raise _malformed(f"truncated pickle: no STOP opcode before byte {end}")
    if len(m.stack) != 1 or m.marks:
        raise _malformed(f"malformed pickle: {len(m.stack)} values and {len(m.marks)} marks left on the "
                         "stack at STOP")
    result = m.lits[0]
    return PickleScan(start, stop, ops, m.deepest, m.items, protocol, tuple(globals_), tuple(pids),
                      None if result is _NOLIT else result)
