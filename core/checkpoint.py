"""Snapshots (``.pkl``): generator and training state as plain data, read back by a restricted unpickler.

A snapshot file is one pickle (protocol 4) of one plain dict. It holds data only, never code::

    {
        "format": "splathead-snapshot",     # FORMAT_MAGIC: says what the file is
        "format_version": 1,                # FORMAT_VERSION of the code that wrote it
        "kind": "generator" | "training",   # weights only / everything needed to resume training
        "generator_config": {...},          # dataclasses.asdict(GeneratorConfig): plain values, no tensors
        "modules": {"G_ema": {name: TensorData, ...}, "G": ..., "D": ...},   # state dicts
        "optimizers": {"G": <optimizer.state_dict()>, ...},                  # tensors as TensorData
        "training": {...},                  # options and counters; tensors allowed (e.g. an RNG state)
        "metadata": {...},                  # free-form: created, code version, notes; no tensors
    }

Values are ``dict`` (keys ``str`` or ``int``), ``list``, ``tuple``, ``str``, ``bytes``, ``int``, ``float``
(NaN and infinities are data), ``bool``, ``None`` and, where tensors are allowed, :class:`TensorData`:
``(dtype name, shape, raw bytes)`` of the contiguous CPU tensor in little-endian C order. The device is not
recorded; tensors load onto ``map_location`` (default ``"cpu"``), so a file written on a CUDA machine loads
on one without CUDA. :func:`save_snapshot` refuses anything else with a ``TypeError`` naming the key path
(numpy arrays included: convert with ``torch.from_numpy``, ``.tolist()`` or ``.item()``), so it never writes
a file that :func:`load_snapshot` would refuse. Subclasses of dict/list/tuple (``OrderedDict``,
``torch.Size``) are stored as the plain type; tensors shared between entries are stored once per entry.

Why no code runs on load: a pickle may name any importable callable (``os.system``, ``builtins.eval``,
torch's rebuild functions, the module source embedded in official StyleGAN/CGS-GAN pickles) and call it.
The loader first walks the opcodes with :mod:`pickletools` (no objects built) to recognise other formats,
check declared lengths against the file and refuse imports early; then it unpickles with an
``Unpickler.find_class`` that resolves exactly one global, ``core.checkpoint.TensorData``, whose constructor
checks its arguments (dtype, shape, byte count), and refuses persistent ids. Everything else is built by
pickle's own opcodes for the plain types, which run no code. Then the structure and every field's type is
checked and the records become tensors. Memory is bounded by the file size (``max_bytes``): declared byte
strings, frames and memo indices are checked before anything is allocated for them.
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import math
import os
import pickle
import pickletools
import stat
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from core.atomic_file import atomic_write
from core.pickle_guard import PickleGuardError, scan_pickle

FORMAT_MAGIC = "splathead-snapshot"
FORMAT_VERSION = 1
KINDS = ("generator", "training")
PICKLE_PROTOCOL = 4
MAX_SNAPSHOT_BYTES = 64 << 30  # files above this are refused unless the caller raises max_bytes
MAX_OPCODES = 10_000_000  # ~10 per tensor in our files; a stream with more is not ours
MAX_DEPTH = 64  # nesting of dicts/lists/tuples (save and load alike)

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
_ALLOWED = "dict, list, tuple, str, bytes, int, float, bool, None"
_FOREIGN_MODULES = ("torch_utils", "dnnlib")  # official StyleGAN3 / EG3D / CGS-GAN pickles
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # first pickle of a pre-1.6 torch.save file
_MIGRATIONS: dict[int, Callable[[dict], dict]] = {}  # v -> function turning a version-v dict into v+1


# ---------------------------------------------------------------------------------------------- errors


class CheckpointError(ValueError):
    """A snapshot that cannot be read; the message starts with the file's path (or ``<bytes>``)."""

    def __init__(self, source: str | os.PathLike, problem: str) -> None:
        super().__init__(f"{os.fspath(source)}: {problem}")
        self.source, self.problem = os.fspath(source), problem

    def __reduce__(self) -> tuple:  # picklable across worker processes
        return (type(self), (self.source, self.problem))


class CorruptCheckpointError(CheckpointError):
    """Empty, truncated or corrupt, not a pickle, or a pickle that does not hold a snapshot."""


class CheckpointVersionError(CheckpointError):
    """A snapshot of a ``format_version`` this code cannot read (written by a newer version)."""


class UnsafeCheckpointError(CheckpointError, pickle.UnpicklingError):
    """The pickle imports something a snapshot never contains (or uses persistent ids); nothing was run."""


class ForeignCheckpointError(UnsafeCheckpointError):
    """A recognised other format (official CGS-GAN/StyleGAN pickle, ``torch.save`` file); nothing was run."""


def _foreign_cgsgan(source: str | os.PathLike) -> ForeignCheckpointError:
    return ForeignCheckpointError(source, (
        "this is an official CGS-GAN/StyleGAN pickle (it references torch_utils.persistence / dnnlib, whose "
        "loading executes code embedded in the file), not a splathead snapshot; load it with "
        "core.legacy_cgsgan (no code is executed) and save it with save_snapshot"))


def _refused(source: str | os.PathLike, name: str) -> UnsafeCheckpointError:
    if name.startswith(_FOREIGN_MODULES):
        return _foreign_cgsgan(source)
    hint = ""
    if name.startswith("torch"):
        hint = (" (a pickle of torch objects, as pickle.dump or torch.save write; snapshots store tensors as "
                "plain records: write them with save_snapshot)")
    return UnsafeCheckpointError(source, (
        f"refused: the pickle tries to import {name}, which a splathead snapshot never contains{hint}. "
        "This is not a splathead snapshot and may be malicious; nothing in it was executed"))


# ---------------------------------------------------------------------------------------------- records


class TensorData:
    """Plain-data record of one tensor: the only class a snapshot's pickle may reference.

    Attributes:
        dtype: one of ``float64 float32 float16 bfloat16 int64 int32 int16 int8 uint8 bool``.
        shape: tuple of non-negative ints (``()`` for a scalar).
        data: raw bytes, little-endian, C order; ``len(data) == prod(shape) * itemsize``.

    The constructor (which the unpickler calls) checks all of that, so no record with a wrong byte count
    exists; instances are immutable and pickled as ``TensorData(dtype, shape, data)``.
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


# ---------------------------------------------------------------------------------------------- snapshot


@dataclass(frozen=True, kw_only=True, eq=False)
class Snapshot:
    """The contents of a snapshot file (see the module docstring for the file layout).

    Attributes:
        format_version: always :data:`FORMAT_VERSION` (older files are migrated on load).
        kind: ``"generator"`` (weights only; needs ``"G_ema"`` or ``"G"``) or ``"training"``.
        generator_config: the generator's config as ``dataclasses.asdict`` gives it (plain values).
        modules: state dicts by name (``"G"``, ``"G_ema"``, ``"D"``).
        optimizers: ``optimizer.state_dict()`` by name (nested dicts/lists with tensors and numbers).
        training: options and counters; tensors allowed (e.g. ``torch.get_rng_state()``).
        metadata: free-form plain values (see :func:`default_metadata`).
    """

    format_version: int = FORMAT_VERSION
    kind: Literal["generator", "training"]
    generator_config: dict[str, Any]
    modules: dict[str, dict[str, torch.Tensor]]
    optimizers: dict[str, dict[str, Any]] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.format_version != FORMAT_VERSION:
            raise ValueError(f"format_version must be {FORMAT_VERSION}, got {self.format_version!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        for name in ("generator_config", "modules", "optimizers", "training", "metadata"):
            if not isinstance(getattr(self, name), dict):
                raise TypeError(f"Snapshot.{name} must be a dict, got {type(getattr(self, name)).__name__}")
        for name, sd in self.modules.items():
            if type(name) is not str or not isinstance(sd, dict):
                raise TypeError(f"Snapshot.modules maps str names to state dicts, got {name!r}: "
                                f"{type(sd).__name__}")
            bad = next((k for k, v in sd.items() if type(k) is not str or not isinstance(v, torch.Tensor)),
                       None)
            if bad is not None:
                raise TypeError(f"Snapshot.modules[{name!r}][{bad!r}] must be a str key to a tensor, "
                                f"got a {type(sd[bad]).__name__}")
        if self.kind == "generator" and not ({"G_ema", "G"} & set(self.modules)):
            raise ValueError(f"a generator snapshot needs modules 'G_ema' or 'G', got {sorted(self.modules)}")

    def generator_state(self) -> dict[str, torch.Tensor]:
        """The generator's state dict: ``modules["G_ema"]``, else ``modules["G"]``."""
        for name in ("G_ema", "G"):
            if name in self.modules:
                return self.modules[name]
        raise KeyError(f"snapshot has no generator weights (modules: {sorted(self.modules)})")


def default_metadata(**extra: Any) -> dict[str, Any]:
    """``{"created": UTC ISO time, "code_version": ..., "torch_version": ...}`` plus ``extra``."""
    from importlib import metadata as importlib_metadata

    try:
        code_version = importlib_metadata.version("splathead-studio")
    except importlib_metadata.PackageNotFoundError:
        code_version = "unknown"
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return {"created": created, "code_version": code_version, "torch_version": str(torch.__version__),
            **extra}


# ---------------------------------------------------------------------------------------------- saving


def _encode(obj: Any, path: str, tensors: bool, depth: int = 0) -> Any:
    """A fresh plain-data copy of ``obj`` with tensors as TensorData; TypeError names ``path`` otherwise."""
    if depth > MAX_DEPTH:
        raise ValueError(f"{path}: nested deeper than {MAX_DEPTH} levels (or contains a cycle)")
    if type(obj) in _LEAVES:
        return obj
    if isinstance(obj, torch.Tensor):
        if not tensors:
            raise TypeError(f"{path}: tensors are not allowed here (only in modules, optimizers, training)")
        try:
            return TensorData.from_tensor(obj)
        except TypeError as e:
            raise TypeError(f"{path}: {e}") from None
    if isinstance(obj, dict):
        bad = next((k for k in obj if type(k) not in (str, int)), None)
        if bad is not None:
            raise TypeError(f"{path}: dict key {bad!r} is a {type(bad).__name__}; keys must be str or int")
        return {k: _encode(v, f"{path}[{k!r}]", tensors, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        items = [_encode(v, f"{path}[{i}]", tensors, depth + 1) for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else tuple(items)
    kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
    hint = "; convert it with torch.from_numpy(a), .tolist() or .item()" if kind.startswith("numpy.") else ""
    raise TypeError(f"{path}: a {kind} cannot be stored in a snapshot (allowed: {_ALLOWED}"
                    f"{', tensors' if tensors else ''}){hint}")


def _encode_snapshot(snapshot: Snapshot) -> dict[str, Any]:
    if not isinstance(snapshot, Snapshot):
        raise TypeError(f"expected a Snapshot, got {type(snapshot).__name__}")
    assert (TensorData.__module__, TensorData.__qualname__) == _RECORD_GLOBAL, "record class renamed"
    return {
        "format": FORMAT_MAGIC,
        "format_version": FORMAT_VERSION,
        "kind": snapshot.kind,
        "generator_config": _encode(snapshot.generator_config, "generator_config", tensors=False),
        "modules": _encode(snapshot.modules, "modules", tensors=True),
        "optimizers": _encode(snapshot.optimizers, "optimizers", tensors=True),
        "training": _encode(snapshot.training, "training", tensors=True),
        "metadata": _encode(snapshot.metadata, "metadata", tensors=False),
    }


def snapshot_to_bytes(snapshot: Snapshot) -> bytes:
    """The bytes :func:`save_snapshot` would write."""
    return pickle.dumps(_encode_snapshot(snapshot), protocol=PICKLE_PROTOCOL)


def save_snapshot(path: str | os.PathLike, snapshot: Snapshot) -> None:
    """Write ``snapshot`` to ``path`` atomically.

    Every value is checked and converted before the file is touched (``TypeError``/``ValueError`` name the
    key path of the first bad value). The pickle goes to a temporary file in the same directory, is fsynced
    and then replaces ``path`` (``os.replace``): a crash or error never leaves a half-written file, and an
    existing file is kept until the new one is complete.
    """
    tree = _encode_snapshot(snapshot)
    with atomic_write(path) as f:
        pickle.dump(tree, f, protocol=PICKLE_PROTOCOL)


# ---------------------------------------------------------------------------------------------- loading


def _scan(raw: bytes, source: str | os.PathLike) -> None:
    """Walk the opcodes (nothing built, nothing run): recognise other formats and refuse what is not ours.

    The names of globals pushed by STACK_GLOBAL are tracked from the strings just before it, which is how
    pickle writes them; the find_class of the unpickler remains the actual gate.
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
            "torch.load(path, weights_only=True) (if you trust the file); write them with save_snapshot"))
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
    if version > FORMAT_VERSION:
        raise CheckpointVersionError(source, (
            f"written by a newer version of splathead (format_version {version}; this code reads up to "
            f"{FORMAT_VERSION}): update the code"))
    for v in range(version, FORMAT_VERSION):  # older files, brought up to date one version at a time
        if v not in _MIGRATIONS:
            raise CheckpointVersionError(source, f"format_version {version} is no longer readable")
        top = _MIGRATIONS[v](top)
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
    """Read a snapshot from its bytes (see :func:`load_snapshot`); ``source`` names it in errors."""
    raw = bytes(raw)
    if not raw:
        raise CorruptCheckpointError(source, "empty file (not a splathead snapshot)")
    if raw.startswith(b"PK\x03\x04"):
        raise ForeignCheckpointError(source, (
            "this is a zip archive, most likely a torch.save file (.pt/.pth), not a splathead snapshot; "
            "read it with torch.load(path, weights_only=True) (only if you trust the file), then write the "
            "tensors with save_snapshot"))
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


def load_snapshot(path: str | os.PathLike, map_location: torch.device | str = "cpu", *,
                  max_bytes: int = MAX_SNAPSHOT_BYTES) -> Snapshot:
    """Read a snapshot written by :func:`save_snapshot`; tensors land on ``map_location``.

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


# ---------------------------------------------------------------------------------------------- generators


def save_generator_state(path: str | os.PathLike, config: Any, state_dict: dict[str, torch.Tensor],
                   metadata: dict[str, Any] | None = None) -> None:
    """Write a weights-only snapshot (``kind="generator"``, ``modules={"G_ema": state_dict}``).

    ``config`` is the config dict (or the config dataclass, converted with ``dataclasses.asdict``);
    ``metadata`` is added to :func:`default_metadata`.
    """
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    snapshot = Snapshot(kind="generator", generator_config=dict(config), modules={"G_ema": dict(state_dict)},
                        metadata=default_metadata(**(metadata or {})))
    save_snapshot(path, snapshot)


def read_generator_state(path: str | os.PathLike, map_location: torch.device | str = "cpu",
                         ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``(generator_config, state_dict)`` of a snapshot of either kind: ``G_ema``, else ``G``."""
    snapshot = load_snapshot(path, map_location)
    try:
        return snapshot.generator_config, snapshot.generator_state()
    except KeyError as e:
        raise CorruptCheckpointError(path, str(e.args[0])) from None


# load_generator(path, device) -> Generator goes here or in core/generator.py (its author decides):
# it is read_generator_state(path, map_location=device), then GeneratorConfig.from_dict(config), building
# the module and load_state_dict(state, strict=True). Import core.generator inside that function, so this
# module stays generic and importing it never builds a network.
