"""The data-only ``.pkl`` checkpoints of format_version 1 (written until the move to safetensors): read-only.

New files are written by :mod:`core.snapshots` (safetensors + JSON manifest); this module only reads the old
ones, so generators and training runs saved before the change keep loading (and resuming). A file is one pickle
(protocol 2+) of one plain dict::

    {
        "format": "splathead-snapshot",     # FORMAT_MAGIC
        "format_version": 1,
        "kind": "generator" | "training",
        "generator_config": {...},          # plain values, no tensors
        "modules": {"G_ema": {name: TensorData, ...}, "G": ..., "D": ...},   # state dicts
        "optimizers": {"G": <optimizer.state_dict()>, ...},                  # tensors as TensorData
        "training": {...},                  # options and counters; tensors allowed
        "metadata": {...},                  # free-form; no tensors
    }

Values are ``dict`` (keys ``str`` or ``int``), ``list``, ``tuple``, ``str``, ``bytes``, ``int``, ``float``,
``bool``, ``None`` and, where tensors are allowed, ``TensorData(dtype name, shape, raw little-endian bytes)``,
recorded in the pickle as the global ``core.checkpoint.TensorData`` (its name when the format was written).

Why no code runs on load: a pickle may name any importable callable (``os.system``, ``builtins.eval``,
torch's rebuild functions, the module source embedded in official StyleGAN/CGS-GAN pickles) and call it.
The loader first walks the opcodes with :mod:`pickletools` (no objects built) to recognise other formats,
check declared lengths against the file, bound the nesting of what would be built (a tuple nested a million
deep crashes the interpreter when hashed) and refuse imports early; then it unpickles with an
``Unpickler.find_class`` that resolves exactly one global, the tensor record, whose constructor checks its
arguments (dtype, shape, byte count), and refuses persistent ids. Everything else is built by pickle's own
opcodes for the plain types, which run no code. Then the structure and every field's type is checked and the
records become tensors. Memory is bounded by the file size (``max_bytes``).
"""

from __future__ import annotations

import io
import math
import os
import pickle
import pickletools
import stat
import sys
from collections import deque
from typing import Any

import torch

from core.checkpoint import (
    KINDS,
    CheckpointError,
    CheckpointVersionError,
    CorruptCheckpointError,
    ForeignCheckpointError,
    Snapshot,
    UnsafeCheckpointError,
)
from core.pickle_guard import PickleGuardError, scan_pickle

FORMAT_MAGIC = "splathead-snapshot"
FORMAT_VERSION = 1
MAX_SNAPSHOT_BYTES = 64 << 30  # files above this are refused unless the caller raises max_bytes
MAX_OPCODES = 10_000_000  # ~10 per tensor in our files; a stream with more is not ours
MAX_DEPTH = 64  # nesting of dicts/lists/tuples in the data

_DTYPES: dict[str, torch.dtype] = {
    "float64": torch.float64, "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
    "int64": torch.int64, "int32": torch.int32, "int16": torch.int16, "int8": torch.int8,
    "uint8": torch.uint8, "bool": torch.bool,
}  # fmt: skip
_DTYPE_NAMES = {v: k for k, v in _DTYPES.items()}
_RECORD_GLOBAL = ("core.checkpoint", "TensorData")  # the one global find_class resolves
_FIELDS = ("format", "format_version", "kind",  # then the data fields, in file order:
           "generator_config", "modules", "optimizers", "training", "metadata")
_LEAVES = (type(None), bool, int, float, str, bytes)
_FOREIGN_MODULES = ("torch_utils", "dnnlib")  # official StyleGAN3 / EG3D / CGS-GAN pickles
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # first pickle of a pre-1.6 torch.save file


def _foreign_cgsgan(source: str | os.PathLike) -> ForeignCheckpointError:
    return ForeignCheckpointError(source, (
        "this is an official CGS-GAN/StyleGAN pickle (it references torch_utils.persistence / dnnlib, whose "
        "loading executes code embedded in the file), not a splathead snapshot; load it with "
        "core.model_files.load_generator (core.legacy_cgsgan; no code is executed)"))


def _refused(source: str | os.PathLike, name: str) -> UnsafeCheckpointError:
    if name.startswith(_FOREIGN_MODULES):
        return _foreign_cgsgan(source)
    hint = ""
    if name.startswith("torch"):
        hint = (" (a pickle of torch objects, as pickle.dump or torch.save write; our files store tensors as "
                "plain data)")
    return UnsafeCheckpointError(source, (
        f"refused: the pickle tries to import {name}, which a splathead snapshot never contains{hint}. "
        "This is not a splathead snapshot and may be malicious; nothing in it was executed"))


# ---------------------------------------------------------------------------------------------- records

class TensorData:
    """Plain-data record of one tensor: the only class a format-1 pickle may reference.

    Attributes:
        dtype: one of ``float64 float32 float16 bfloat16 int64 int32 int16 int8 uint8 bool``.
        shape: tuple of non-negative ints (``()`` for a scalar).
        data: raw bytes, little-endian, C order; ``len(data) == prod(shape) * itemsize``.

    The constructor (which the unpickler calls) checks all of that, so no record with a wrong byte count
    exists; instances are immutable and pickled as ``core.checkpoint.TensorData(dtype, shape, data)`` (the
    name format-1 files record; ``core.checkpoint`` resolves it to this class).
    """

    __slots__ = ("dtype", "shape", "data")
    dtype: str
    shape: tuple[int, ...]
    data: bytes

    def __new__(cls, dtype: str, shape: tuple[int, ...], data: bytes) -> TensorData:
        if type(dtype) is not str or dtype not in _DTYPES:
            raise ValueError(f"TensorData: unsupported dtype {dtype!r} (supported: {', '.join(_DTYPES)})")
        if (type(shape) is not tuple or len(shape) > MAX_DEPTH
                or not all(type(s) is int and s >= 0 for s in shape)):
            raise ValueError(f"TensorData: shape must be a tuple of non-negative ints, got {shape!r:.200}")
        if type(data) is not bytes:
            raise TypeError(f"TensorData: data must be bytes, got {type(data).__name__}")
        expected = math.prod(shape) * _DTYPES[dtype].itemsize
        if len(data) != expected:
            raise ValueError(f"TensorData: {len(data)} bytes for a {dtype} tensor of shape {list(shape)}, "
                             f"which needs {expected}")
        if dtype == "bool" and data.translate(None, b"\x00\x01"):
            raise ValueError("TensorData: bool data holds bytes other than 0 and 1")
        self = object.__new__(cls)
        for name, value in (("dtype", dtype), ("shape", shape), ("data", data)):
            object.__setattr__(self, name, value)
        return self

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("TensorData is read-only")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("TensorData is read-only")

    def __setstate__(self, state: Any) -> None:  # a BUILD opcode must not change a checked record
        raise pickle.UnpicklingError("TensorData takes no pickled state")

    def __reduce__(self) -> tuple:
        return (TensorData, (self.dtype, self.shape, self.data))

    def __repr__(self) -> str:
        return f"TensorData({self.dtype!r}, {self.shape!r}, <{len(self.data)} bytes>)"

    @classmethod
    def from_tensor(cls, tensor: torch.Tensor) -> TensorData:
        """Record a dense tensor of a supported dtype (any device; copied to CPU, contiguous)."""
        _check_byteorder()
        if tensor.layout != torch.strided or tensor.is_quantized:
            raise TypeError(f"only dense tensors can be stored, got layout {tensor.layout} (use .to_dense())")
        if tensor.dtype not in _DTYPE_NAMES:
            raise TypeError(f"tensor dtype {tensor.dtype} is not supported (supported: {', '.join(_DTYPES)})")
        if tensor.device.type == "meta":
            raise TypeError("a tensor on the meta device has no data to store")
        t = tensor.detach().to("cpu").resolve_neg().contiguous()
        return cls(_DTYPE_NAMES[t.dtype], tuple(t.shape), t.reshape(-1).view(torch.uint8).numpy().tobytes())

    def to_tensor(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """A new tensor owning writable memory, on ``device``."""
        _check_byteorder()
        dtype = _DTYPES[self.dtype]
        if not self.data:
            return torch.empty(self.shape, dtype=dtype, device=device)
        return torch.frombuffer(bytearray(self.data), dtype=dtype).reshape(self.shape).to(device)


def _check_byteorder() -> None:
    if sys.byteorder != "little":
        raise NotImplementedError("snapshot tensors are little-endian; big-endian hosts are unsupported")


TensorData.__module__ = _RECORD_GLOBAL[0]  # pickled (by test fixtures) under the name the files use


# ---------------------------------------------------------------------------------------------- loading


def _guard(raw: bytes, source: str | os.PathLike) -> PickleGuardError | None:
    """core.pickle_guard's bounds (nesting, container sizes, memo, declared lengths), before anything is
    built: a limit refuses at once; a malformed stream is returned, to be refused after _scan's diagnosis."""
    try:
        scan_pickle(raw)
    except PickleGuardError as e:
        if e.limit:
            raise CorruptCheckpointError(source, f"refused: {e}") from None
        return e
    return None


def _scan(raw: bytes, source: str | os.PathLike) -> None:
    """Walk the opcodes (nothing built, nothing run): recognise other formats and refuse what is not ours.

    The names of globals pushed by STACK_GLOBAL are tracked from the strings just before it, which is how
    pickle writes them; the find_class of the unpickler remains the actual gate. The nesting depth of what
    the opcodes would build is bounded by :mod:`core.pickle_guard` before anything is built.
    """
    guard = _guard(raw, source)
    stream = io.BytesIO(raw)
    names: list[str] = []
    recent: deque = deque(maxlen=2)  # the last two values pushed: str or None
    memo: dict[int, Any] = {}
    n, persid, legacy_torch, stop, broken = 0, False, False, None, None
    try:
        for op, arg, pos in pickletools.genops(stream):
            n += 1
            if n > MAX_OPCODES:
                raise ValueError(f"more than {MAX_OPCODES:,} opcodes")
            name = op.name
            if name in ("GLOBAL", "INST"):
                names.append(".".join(arg.split(" ", 1)))
            elif name == "STACK_GLOBAL":
                mod, qual = (recent[0], recent[1]) if len(recent) == 2 else (None, None)
                known = isinstance(mod, str) and isinstance(qual, str)
                names.append(f"{mod}.{qual}" if known else "<a global whose name could not be read>")
            elif name in ("EXT1", "EXT2", "EXT4"):
                names.append(f"<copyreg extension {arg}>")
            elif name in ("PERSID", "BINPERSID"):
                persid = True
            elif name == "FRAME" and arg > len(raw) - stream.tell():
                raise ValueError(f"a frame of {arg} bytes runs past the end of the file")
            elif name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
                index = len(memo) if name == "MEMOIZE" else arg
                if index > n:  # the unpickler would allocate a memo table this large
                    raise ValueError(f"memo index {index} out of range")
                memo[index] = recent[-1] if recent else None
            elif name == "LONG1" and arg == _TORCH_LEGACY_MAGIC and n == 2:
                legacy_torch = True
            if name in ("GET", "BINGET", "LONG_BINGET"):
                recent.append(memo.get(arg))
            elif isinstance(arg, str) and name not in ("GLOBAL", "INST"):
                recent.append(arg)
            elif name not in ("PROTO", "FRAME", "PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
                recent.append(None)
            if name == "STOP":
                stop = pos
    except MemoryError:
        raise
    except Exception as e:  # pickletools raises ValueError for truncated / unknown opcode / bad argument
        broken = f"{e} (at byte {stream.tell()} of {len(raw)})"
    if any(s.startswith(_FOREIGN_MODULES) for s in names):
        raise _foreign_cgsgan(source)
    if legacy_torch:
        raise ForeignCheckpointError(source, (
            "this is a legacy (pre-1.6) torch.save file, not a splathead snapshot; its tensors are read by "
            "torch.load(path, weights_only=True) (if you trust the file)"))
    if broken is not None:
        what = "truncated or corrupt" if raw[:1] == b"\x80" else "not a pickle (not a splathead snapshot)"
        raise CorruptCheckpointError(source, f"{what}: {broken}")
    if persid:
        raise UnsafeCheckpointError(source, (
            "refused: the pickle uses persistent ids (as torch.save does); a splathead snapshot never does. "
            "Nothing in it was executed"))
    bad = next((s for s in names if s != ".".join(_RECORD_GLOBAL)), None)
    if bad is not None:
        raise _refused(source, bad)
    if raw[0] != 0x80 or raw[1] < 2:
        raise CorruptCheckpointError(source, "a protocol 0/1 pickle; snapshots are protocol 2 or later")
    if stop is not None and stop + 1 != len(raw):
        raise CorruptCheckpointError(source, f"{len(raw) - stop - 1} bytes of trailing data after the pickle")
    if guard is not None:
        raise CorruptCheckpointError(source, f"refused: {guard}")


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only ``core.checkpoint.TensorData``; refuses every other global and persistent ids."""

    def __init__(self, file: io.BytesIO, source: str | os.PathLike) -> None:
        super().__init__(file)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == _RECORD_GLOBAL:
            return TensorData
        raise _refused(self._source, f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafeCheckpointError(self._source, "refused: the pickle uses persistent ids; nothing was run")


def _decode(obj: Any, path: str, tensors: bool, device: Any, seen: set[int], depth: int = 0) -> Any:
    """Check the unpickled tree (plain types, no shared or cyclic containers); records become tensors."""
    if depth > MAX_DEPTH:
        raise ValueError(f"{path}: nested deeper than {MAX_DEPTH} levels")
    kind = type(obj)
    if kind in _LEAVES:
        return obj
    if kind not in (dict, list, tuple, TensorData):
        raise ValueError(f"{path}: a {kind.__name__}, which snapshots never hold")
    if kind is not tuple or obj:  # () is a singleton; everything else comes fresh from its own opcode
        if id(obj) in seen:
            raise ValueError(f"{path}: an object referenced twice (snapshots never share or nest objects so)")
        seen.add(id(obj))
    if kind is TensorData:
        if not tensors:
            raise ValueError(f"{path}: a tensor where only plain values are allowed")
        return obj.to_tensor(device)
    if kind is dict:
        bad = next((k for k in obj if type(k) not in (str, int)), None)
        if bad is not None:
            raise ValueError(f"{path}: dict key of type {type(bad).__name__}")
        return {k: _decode(v, f"{path}[{k!r}]", tensors, device, seen, depth + 1) for k, v in obj.items()}
    items = [_decode(v, f"{path}[{i}]", tensors, device, seen, depth + 1) for i, v in enumerate(obj)]
    return items if kind is list else tuple(items)


def _unpack(top: Any, source: str | os.PathLike, device: Any) -> Snapshot:
    def bad(problem: str) -> CorruptCheckpointError:
        return CorruptCheckpointError(source, problem)

    if type(top) is not dict or top.get("format") != FORMAT_MAGIC:
        what = f"a {type(top).__name__}"
        if type(top) is dict:
            what = f"a dict with keys {sorted(map(str, top))[:8]}"
        raise bad(f"not a splathead snapshot: the pickle holds {what}, not a {FORMAT_MAGIC!r} dict")
    version = top.get("format_version")
    if "format_version" not in top:
        raise bad("not one of ours: it has no format_version")
    if type(version) is not int or version < 1:
        raise bad(f"not one of ours: format_version is {version!r}, not a positive int")
    if version != FORMAT_VERSION:
        raise CheckpointVersionError(source, (
            f"a pickle snapshot of format_version {version}; only version {FORMAT_VERSION} was ever written as a "
            "pickle (later versions are safetensors files): this file was not written by splathead"))
    if set(top) != set(_FIELDS):
        missing, extra = set(_FIELDS) - set(top), set(top) - set(_FIELDS)
        raise bad(f"malformed snapshot: missing keys {sorted(missing)}, "
                  f"unexpected keys {sorted(map(str, extra))}")
    if top["kind"] not in KINDS:
        raise bad(f"malformed snapshot: kind is {top['kind']!r}, not one of {KINDS}")
    for name in _FIELDS[3:]:
        if type(top[name]) is not dict:
            raise bad(f"malformed snapshot: {name} is a {type(top[name]).__name__}, not a dict")
    for name, sd in top["modules"].items():
        if type(name) is not str or type(sd) is not dict or not all(
                type(k) is str and type(v) is TensorData for k, v in sd.items()):
            raise bad(f"malformed snapshot: modules[{name!r}] is not a state dict (str names to tensors)")
    for name, opt in top["optimizers"].items():
        if type(name) is not str or type(opt) is not dict:
            raise bad(f"malformed snapshot: optimizers[{name!r}] is not a dict")
    seen: set[int] = set()
    try:
        fields = {name: _decode(top[name], name, name not in ("generator_config", "metadata"), device, seen)
                  for name in _FIELDS[3:]}
        return Snapshot(kind=top["kind"], **fields)
    except (ValueError, TypeError, KeyError) as e:
        raise bad(f"malformed snapshot: {e}") from None


def snapshot_from_bytes(raw: bytes, *, map_location: torch.device | str = "cpu",
                        source: str | os.PathLike = "<bytes>") -> Snapshot:
    """Read a format-1 snapshot from its bytes (see :func:`load_pickle_snapshot`); ``source`` names it."""
    raw = bytes(raw)
    if not raw:
        raise CorruptCheckpointError(source, "empty file (not a splathead snapshot)")
    if raw.startswith(b"PK\x03\x04"):
        raise ForeignCheckpointError(source, (
            "this is a zip archive, most likely a torch.save file (.pt/.pth), not a splathead snapshot; "
            "read it with torch.load(path, weights_only=True) (only if you trust the file)"))
    if raw.startswith((b"ply\n", b"ply\r\n")):
        raise CorruptCheckpointError(source, "a .ply scene, not a snapshot: read it with core.ply.read_ply")
    _scan(raw, source)
    try:
        top = _RestrictedUnpickler(io.BytesIO(raw), source).load()
    except CheckpointError:
        raise
    except MemoryError:
        raise
    except Exception as e:  # only our own record class and pickle's built-in opcodes ran: the data is bad
        raise CorruptCheckpointError(source, f"corrupt pickle: {type(e).__name__}: {e}") from None
    return _unpack(top, source, torch.device(map_location))


def load_pickle_snapshot(path: str | os.PathLike, map_location: torch.device | str = "cpu", *,
                         max_bytes: int = MAX_SNAPSHOT_BYTES) -> Snapshot:
    """Read a format-1 ``.pkl`` snapshot; tensors land on ``map_location``.

    Raises:
        FileNotFoundError / IsADirectoryError: no such file.
        ForeignCheckpointError: an official CGS-GAN/StyleGAN pickle or a torch.save file (says what to use).
        UnsafeCheckpointError: the pickle imports anything but our tensor record, or uses persistent ids.
        CheckpointVersionError: written by a newer version of the code.
        CorruptCheckpointError: empty, truncated, corrupt, over ``max_bytes``, or not a snapshot.
    No code from the file runs in any case (see the module docstring).
    """
    st = os.stat(path)  # before open(): opening a FIFO would block
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(21, "Is a directory (expected a snapshot .pkl file)", os.fspath(path))
    if not stat.S_ISREG(st.st_mode):
        raise CorruptCheckpointError(path, "not a regular file")
    if st.st_size > max_bytes:
        raise CorruptCheckpointError(path, (
            f"{st.st_size:,} bytes, over the limit of {max_bytes:,} (pass a larger max_bytes if you expect a "
            "snapshot this large; loading needs up to three times the file size in memory)"))
    with open(path, "rb") as f:
        raw = f.read()  # not read(max_bytes + 1): that allocates max_bytes up front
    if len(raw) > max_bytes:
        raise CorruptCheckpointError(path, f"grew past the limit of {max_bytes:,} bytes while being read")
    return snapshot_from_bytes(raw, map_location=map_location, source=path)

