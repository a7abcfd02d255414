"""Read official StyleGAN3 ``torch_utils.persistence`` pickles (the format of CGS-GAN's
``network-snapshot-*.pkl``) into plain, inert data, without executing anything from the file and without the
official repository on ``sys.path``. What the records mean for CGS-GAN is :mod:`core.legacy_cgsgan`'s part.

In these pickles every network module is stored as ``_reconstruct_persistent_obj(meta)`` whose ``meta``
carries the *source text of the module that defined it* (the official loader ``exec``-s it) and the
object's ``__dict__``. Here a restricted unpickler maps every global such a file references
(docs/official-pickle-notes.md section 1.5) to inert stand-ins of ours and refuses everything else:

- ``torch_utils.persistence._reconstruct_persistent_obj`` -> :class:`PersistentRecord` (source kept as text);
- ``torch._utils._rebuild_tensor_v2`` / ``_rebuild_parameter`` -> our rebuilders (bounds and dtype checked);
- ``torch.storage._load_from_bytes`` -> ``torch.load(blob, map_location="cpu", weights_only=True)``;
- ``collections.OrderedDict`` -> itself; ``dnnlib.util.EasyDict`` -> :class:`EasyDictRecord` (a dict);
- ``numpy[._]core.multiarray.scalar`` + ``numpy.dtype`` -> a Python number (plain numeric dtypes only);
- ``torch.nn`` ``ModuleList`` / ``ModuleDict`` / ``GELU`` / ``Linear`` and the official ``Renderer`` ->
  :class:`ModuleRecord` (keeps the BUILD state, nothing else);
- the Renderer's functions (``build_covariance_from_scaling_rotation``, ``inverse_sigmoid``,
  ``torch.nn.functional.normalize``, ``torch._C._VariableFunctionsClass``) -> inert placeholders, and
  ``builtins.getattr`` only as ``getattr(torch._C._VariableFunctionsClass, "exp" | "log" | "sigmoid")``;
- anything else -> :class:`UnsafeLegacyPickleError` naming ``module.name``.

Verified (tests/core/test_legacy_cgsgan.py): a fixture writer re-creates the official format as the notes
describe it, through the real pickle / torch / numpy reduce paths (torch 2.13, numpy 2); hostile globals,
hostile storage blobs and embedded source are never executed; ``cuda:0``-tagged storages load on a
CPU-only machine.

Not verified (no real official file is available offline): the exact bytes the upstream writer (torch
2.5.1, numpy 1.x, Python 3.8-3.12) produces, e.g. ``numpy.core`` vs ``numpy._core`` and ``dict`` vs
``OrderedDict`` containers (both accepted) or an unexpected extra global (refused by name: add it to the
whitelist after checking what it is); the persistence ``version`` (6 assumed, others refused).
"""

from __future__ import annotations

import io
import math
import os
import pickle
import pickletools
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from core.checkpoint import CheckpointError, UnsafeCheckpointError
from core.pickle_guard import GlobalRef, PickleGuardError, PickleLimits, scan_pickle
from core.regular_file import open_regular

__all__ = [
    "MAX_PICKLE_BYTES", "EasyDictRecord", "InertGlobal", "LegacyPickleError", "ModuleRecord",
    "PersistentRecord", "UnsafeLegacyPickleError", "check_storage_blob", "is_official_pickle",
    "read_official_pickle", "reconstruct_persistent_obj",
]

PERSISTENCE_VERSION = 6
MAX_PICKLE_BYTES = 16 << 30  # an official 2048 snapshot with D and optimizer states is ~2 GB
GUARD_LIMITS = PickleLimits()  # nesting / sizes / memo bounds checked before unpickling (core.pickle_guard)


# ---------------------------------------------------------------------------------------------- errors


class LegacyPickleError(CheckpointError):
    """An official pickle that cannot be loaded: not CGS-GAN, unknown/missing/mis-shaped tensors, corrupt.
    The message starts with the file's path and lists every offending tensor by its official name."""


class UnsafeLegacyPickleError(UnsafeCheckpointError, LegacyPickleError):
    """The pickle references a global outside the official format's whitelist; nothing was executed."""


# ---------------------------------------------------------------------------------------------- stand-ins


@dataclass(frozen=True, eq=False)
class PersistentRecord:
    """One ``torch_utils.persistence`` object, as data: ``module_src`` is kept as text and never executed.

    Attributes:
        class_name: bare class name (``"CGSGenerator"``, ``"FullyConnectedLayer"``, ...).
        module_src: source text of the module that defined the class (searched as data only).
        state: the object's ``__dict__`` (``_parameters``, ``_buffers``, ``_modules``, plain attributes).
        init_args, init_kwargs: the recorded constructor arguments (``_init_args`` / ``_init_kwargs``).
    """

    class_name: str
    module_src: str
    state: dict
    init_args: tuple = ()
    init_kwargs: dict = field(default_factory=dict)

    def __setstate__(self, state: Any) -> None:  # a BUILD opcode must not change a checked record
        raise pickle.UnpicklingError("a persistent record takes no pickled state")

    def __repr__(self) -> str:
        return f"PersistentRecord({self.class_name!r})"


class ModuleRecord:
    """Inert stand-in for a non-persistent torch class pickled by reference (``ModuleList``, ``GELU``,
    ``Linear``, the official ``Renderer``): created empty by NEWOBJ, keeps the BUILD state dict, does nothing
    else. ``class_name`` is the qualified name of the class it replaces."""

    class_name = "?"
    state: dict

    def __new__(cls) -> ModuleRecord:  # no arguments: only NEWOBJ + BUILD fit, a REDUCE call with args fails
        self = super().__new__(cls)
        self.state = {}
        return self

    def __setstate__(self, state: Any) -> None:
        if type(state) is tuple and len(state) == 2 and state[1] is None:  # (dict, slotstate=None)
            state = state[0]
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(
                f"{self.class_name}: expected a dict state, got {type(state).__name__}")
        self.state = state

    def __repr__(self) -> str:
        return f"ModuleRecord({self.class_name!r})"


class EasyDictRecord(dict):
    """Stand-in for ``dnnlib.util.EasyDict``: a plain dict (the items come from SETITEMS)."""

    def __setstate__(self, state: Any) -> None:
        if state:
            raise pickle.UnpicklingError("EasyDict takes no pickled state")


@dataclass(frozen=True)
class InertGlobal:
    """Placeholder for a function the renderer state references (``torch.exp``, ``inverse_sigmoid`` ...);
    not callable."""

    name: str

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError(f"{self.name} takes no pickled state")


_TORCH_FUNCTIONS = InertGlobal("torch._C._VariableFunctionsClass")
_GETATTR_NAMES = frozenset({"exp", "log", "sigmoid"})


def _restricted_getattr(obj: Any, name: Any) -> InertGlobal:
    """``builtins.getattr`` as the official Renderer state uses it, and nothing else."""
    if obj is not _TORCH_FUNCTIONS or name not in _GETATTR_NAMES:
        what = obj.name if isinstance(obj, InertGlobal) else type(obj).__name__
        raise pickle.UnpicklingError(
            f"refused builtins.getattr({what}, {name!r:.60}): only getattr(torch._C._VariableFunctionsClass, "
            f"{'|'.join(sorted(_GETATTR_NAMES))}) occurs in official pickles")
    return InertGlobal(f"torch.{name}")


class _NumpyDType:
    """``numpy.dtype(spec, align, copy)`` + BUILD state, for plain numeric kinds only."""

    SPECS = frozenset({"f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "b1"})

    def __init__(self, spec: Any, align: Any = False, copy: Any = False) -> None:
        if type(spec) is not str or spec not in self.SPECS:
            raise pickle.UnpicklingError(f"refused numpy.dtype({spec!r:.40}): only plain numeric scalars "
                                         f"({' '.join(sorted(self.SPECS))}) occur in official pickles")
        self.spec, self.byteorder = spec, "="

    def __setstate__(self, state: Any) -> None:
        # (version, byteorder, subarray, names, fields, elsize, alignment, flags)
        if type(state) is not tuple or len(state) < 5 or state[1] not in ("<", ">", "|", "=") or any(
                s is not None for s in state[2:5]):
            raise pickle.UnpicklingError(
                f"refused numpy dtype state {state!r:.80}: not a plain numeric dtype")
        self.byteorder = state[1]

    def numpy(self) -> np.dtype:
        return np.dtype(("|" if self.byteorder == "|" else self.byteorder) + self.spec)


def _numpy_scalar(dtype: Any, data: Any = None) -> float | int | bool:
    """``numpy.core.multiarray.scalar(dtype, bytes)`` -> the Python number."""
    if not isinstance(dtype, _NumpyDType):
        raise pickle.UnpicklingError(f"refused numpy scalar of {type(dtype).__name__}: numeric dtypes only")
    if isinstance(data, str):  # protocol 0/1 writers store the bytes as a latin-1 str
        data = data.encode("latin-1")
    dt = dtype.numpy()
    if type(data) is not bytes or len(data) != dt.itemsize:
        raise pickle.UnpicklingError(f"numpy scalar: expected {dt.itemsize} bytes for {dt}, got {data!r:.40}")
    return np.frombuffer(data, dtype=dt)[0].item()


_TENSOR_DTYPES = frozenset({torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64,
                            torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool})


_LEGACY_TORCH_MAGIC = 0x1950A86A20F9469CFC6C  # first pickle of a legacy (non-zip) torch.save stream
_LEGACY_TORCH_PROTOCOL = 1001
_STORAGE_ITEMSIZE = {"DoubleStorage": 8, "FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2,
                     "LongStorage": 8, "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1,
                     "ByteStorage": 1, "BoolStorage": 1}


def check_storage_blob(blob: bytes) -> int:
    """Check a legacy ``torch.save`` storage stream (what ``torch.storage._load_from_bytes`` receives) before
    torch reads it: its five pickles are within the :mod:`core.pickle_guard` limits, and the element counts
    its storage records claim fit in the bytes after them (torch allocates a storage of the claimed size
    before reading a byte of it). Returns the claimed bytes; raises ``pickle.UnpicklingError``."""
    if blob[:4] == b"PK\x03\x04":
        raise pickle.UnpicklingError("a tensor storage blob in torch's zip format, not the legacy torch.save "
                                     "stream official pickles hold")
    try:
        magic = scan_pickle(blob)
        if magic.result != _LEGACY_TORCH_MAGIC:
            raise pickle.UnpicklingError("a tensor storage blob that is not a legacy torch.save stream "
                                         "(official pickles hold only those)")
        version = scan_pickle(blob, magic.end)
        if version.result != _LEGACY_TORCH_PROTOCOL:
            raise pickle.UnpicklingError(f"storage blob of torch.save protocol {version.result!r}, expected "
                                         f"{_LEGACY_TORCH_PROTOCOL}")
        sys_info = scan_pickle(blob, version.end)
        main = scan_pickle(blob, sys_info.end)
        keys = scan_pickle(blob, main.end)
    except PickleGuardError as e:
        raise pickle.UnpicklingError(f"corrupt tensor storage blob: {e}") from None
    claims: dict[Any, int] = {}
    for pid in main.persistent_ids:
        ok = (type(pid) is tuple and len(pid) == 6 and pid[0] == "storage" and isinstance(pid[1], GlobalRef)
              and pid[1].module == "torch" and pid[1].name in _STORAGE_ITEMSIZE and type(pid[4]) is int
              and pid[4] >= 0)
        if not ok:
            raise pickle.UnpicklingError(f"refused: unrecognised storage record {pid!r:.120} in a blob")
        claims[pid[2]] = 8 + pid[4] * _STORAGE_ITEMSIZE[pid[1].name]  # an int64 count, then the data
    claimed, present = sum(claims.values()), len(blob) - keys.end
    if claimed > present:
        raise pickle.UnpicklingError(f"corrupt tensor storage blob: its records claim {claimed:,} bytes of "
                                     f"data but only {present:,} follow")
    return claimed


def _load_storage(blob: Any) -> torch.storage.TypedStorage:
    """Replacement for ``torch.storage._load_from_bytes``: torch's weights-only loader, CPU, after
    :func:`check_storage_blob`."""
    if type(blob) is not bytes:
        raise pickle.UnpicklingError(f"storage blob must be bytes, got {type(blob).__name__}")
    check_storage_blob(blob)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "TypedStorage is deprecated"
            storage = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception as e:
        raise pickle.UnpicklingError(
            "refused: a tensor storage blob was rejected by torch.load(weights_only=True): "
            f"{type(e).__name__}: {str(e)[:300]}") from None
    if not isinstance(storage, torch.storage.TypedStorage) or storage.dtype not in _TENSOR_DTYPES:
        raise pickle.UnpicklingError(f"a storage blob held {type(storage).__name__}, not a tensor storage")
    return storage


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                    backward_hooks: Any = None, metadata: Any = None) -> torch.Tensor:
    """Checked ``torch._utils._rebuild_tensor_v2``: the view must lie inside its storage."""
    if not isinstance(storage, torch.storage.TypedStorage):
        raise pickle.UnpicklingError(f"tensor rebuilt from {type(storage).__name__}, not a storage")
    if (type(size) is not tuple or type(stride) is not tuple or len(size) != len(stride) or len(size) > 16
            or not all(type(v) is int and v >= 0 for v in (offset, *size, *stride))):
        raise pickle.UnpicklingError(f"malformed tensor geometry: offset {offset!r:.40}, size {size!r:.80}, "
                                     f"stride {stride!r:.80}")
    if backward_hooks or metadata:
        raise pickle.UnpicklingError("refused a tensor with backward hooks or extra metadata")
    numel = math.prod(size)
    end = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1 if numel else offset
    available = storage._untyped_storage.nbytes() // storage.dtype.itemsize
    if end > available:
        raise pickle.UnpicklingError(f"tensor of size {list(size)} (offset {offset}, stride {list(stride)}) "
                                     f"runs past its storage of {available} elements")
    if numel > available:  # stride-0 views: sizes (hence an architecture) that no bytes in the file back
        raise pickle.UnpicklingError(f"tensor of size {list(size)} (stride {list(stride)}) repeats elements "
                                     f"of its storage of {available}; official tensors are plain arrays")
    t = torch.empty((0,), dtype=storage.dtype)
    return t.set_(storage._untyped_storage, offset, size, stride)


def _rebuild_parameter(data: Any, requires_grad: Any = False, backward_hooks: Any = None) -> torch.Tensor:
    if not isinstance(data, torch.Tensor) or backward_hooks:
        raise pickle.UnpicklingError("malformed parameter (not a tensor, or with backward hooks)")
    return data


def _reconstruct_persistent(meta: Any) -> PersistentRecord:
    """Stand-in for ``torch_utils.persistence._reconstruct_persistent_obj``: checks ``meta``, runs nothing."""
    keys = {"type", "version", "module_src", "class_name", "state"}
    if type(meta) is not dict or set(meta) != keys:
        got = sorted(meta) if isinstance(meta, dict) else type(meta).__name__
        raise pickle.UnpicklingError(f"malformed persistent object: meta keys {got}, expected {sorted(keys)}")
    if meta["type"] != "class":
        raise pickle.UnpicklingError(f"unsupported persistent object type {meta['type']!r:.40}")
    if meta["version"] != PERSISTENCE_VERSION:
        raise pickle.UnpicklingError(
            f"torch_utils.persistence format version {meta['version']!r:.20}; only version "
            f"{PERSISTENCE_VERSION} (StyleGAN3 / EG3D / CGS-GAN) is supported")
    name, src, state = meta["class_name"], meta["module_src"], meta["state"]
    if type(name) is not str or not name.isidentifier() or type(src) is not str or type(state) is not dict:
        raise pickle.UnpicklingError("malformed persistent object: class_name / module_src / state types")
    args, kwargs = state.get("_init_args", ()), state.get("_init_kwargs", {})
    return PersistentRecord(name, src, state, args if type(args) is tuple else (),
                            kwargs if isinstance(kwargs, dict) else {})


reconstruct_persistent_obj = _reconstruct_persistent  # public: other formats map their reconstruct global here


def _module_record_class(qualname: str) -> type[ModuleRecord]:
    return type(qualname.rsplit(".", 1)[-1], (ModuleRecord,), {"class_name": qualname,
                                                              "__module__": __name__})


_MODULE_RECORD_CLASSES = {q: _module_record_class(q) for q in (
    "torch.nn.modules.container.ModuleList", "torch.nn.modules.container.ModuleDict",
    "torch.nn.modules.activation.GELU", "torch.nn.modules.linear.Linear",
    "training.gaussian3d_splatting.renderer.Renderer")}

_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage,
    ("collections", "OrderedDict"): OrderedDict,
    ("dnnlib.util", "EasyDict"): EasyDictRecord,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy", "dtype"): _NumpyDType,
    **{tuple(q.rsplit(".", 1)): cls for q, cls in _MODULE_RECORD_CLASSES.items()},
    ("training.gaussian3d_splatting.renderer", "build_covariance_from_scaling_rotation"):
        InertGlobal("training.gaussian3d_splatting.renderer.build_covariance_from_scaling_rotation"),
    ("training.gaussian3d_splatting.renderer", "inverse_sigmoid"):
        InertGlobal("training.gaussian3d_splatting.renderer.inverse_sigmoid"),
    ("torch.nn.functional", "normalize"): InertGlobal("torch.nn.functional.normalize"),
    ("torch._C", "_VariableFunctionsClass"): _TORCH_FUNCTIONS,
    ("builtins", "getattr"): _restricted_getattr,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, source: str, extra_globals: Mapping[tuple[str, str], Any] | None = None,
                 format_name: str = "official CGS-GAN") -> None:
        super().__init__(file)
        self.source, self.extra_globals, self.format_name = source, extra_globals or {}, format_name

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.extra_globals[(module, name)]  # another format's table (e.g. core.gghead) first
        except (KeyError, TypeError):
            pass
        try:
            return _GLOBALS[(module, name)]
        except (KeyError, TypeError):
            pass
        raise UnsafeLegacyPickleError(self.source, (
            f"refused: the pickle references {module}.{name}, which is not part of the {self.format_name} "
            "pickle format (whitelist in core/legacy_pickle.py). The file may be malicious or of another "
            "kind; nothing in it was executed"))

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafeLegacyPickleError(self.source, (
            f"refused: the pickle uses persistent ids (as torch.save does); {self.format_name} snapshots are "
            "written by plain pickle.dump and never do. Nothing was executed"))


def read_official_pickle(path: str | os.PathLike, *, max_bytes: int = MAX_PICKLE_BYTES,
                         extra_globals: Mapping[tuple[str, str], Any] | None = None,
                         format_name: str = "official CGS-GAN") -> Any:
    """Unpickle an official snapshot into plain data: dicts, tensors (CPU), :class:`PersistentRecord`,
    :class:`ModuleRecord` and numbers. Nothing from the file is executed or imported.

    ``extra_globals`` ({(module, name): inert stand-in}) extends the whitelist for another format of the
    same family (GGHead: :mod:`core.gghead.pickle_format`); ``format_name`` names it in error messages."""
    with open_regular(path, f"an {format_name} .pkl file", error=lambda p: LegacyPickleError(path, p)) as f:
        size = os.fstat(f.fileno()).st_size
        if size > max_bytes:
            raise LegacyPickleError(path, f"{size:,} bytes, over the limit of {max_bytes:,} "
                                          "(pass a larger max_bytes)")
        if size == 0:
            raise LegacyPickleError(path, f"empty file (not an {format_name} pickle)")
        head = f.read(4)
        f.seek(0)
        if head.startswith(b"PK\x03\x04"):
            raise LegacyPickleError(path, f"a zip archive (torch.save file), not an {format_name} pickle")
        try:  # nesting, container sizes, memo and declared lengths, before anything is built
            scan_pickle(f, limits=GUARD_LIMITS, end=size)
        except PickleGuardError as e:
            raise LegacyPickleError(path, f"refused: {e}. Nothing in the file was executed") from None
        f.seek(0)
        try:
            return _RestrictedUnpickler(f, os.fspath(path), extra_globals, format_name).load()
        except CheckpointError:
            raise
        except MemoryError:
            raise LegacyPickleError(path, "corrupt pickle: declared sizes exceed the available memory"
                                    ) from None
        except Exception as e:  # only our stand-ins and pickle's own opcodes ran: the data is bad
            if isinstance(e, pickle.UnpicklingError) and str(e).startswith("refused"):
                raise UnsafeLegacyPickleError(path, f"{e}. Nothing in the file was executed") from None
            raise LegacyPickleError(path, f"corrupt or not an official pickle: {type(e).__name__}: "
                                          f"{str(e)[:500]}") from None


def pickle_references(path: str | os.PathLike, wanted: Callable[[str], bool], *, max_bytes: int = 1 << 20,
                      max_ops: int = 20_000) -> bool:
    """Cheap check: does a string argument among the first opcodes (at most ``max_bytes`` bytes / ``max_ops``
    opcodes, never executed) satisfy ``wanted`` (a module or global name)? False for what cannot be read
    (missing, not a regular file, not a pickle)."""
    try:
        with open_regular(path) as f:
            raw = f.read(max_bytes)
    except OSError:
        return False
    try:
        for n, (op, arg, _) in enumerate(pickletools.genops(io.BytesIO(raw))):
            if n >= max_ops or op.name == "STOP":
                break
            if isinstance(arg, str) and wanted(arg):
                return True
    except Exception:  # truncated by max_bytes, or not a pickle
        pass
    return False


def is_official_pickle(path: str | os.PathLike, *, max_bytes: int = 1 << 20, max_ops: int = 20_000) -> bool:
    """Do the first opcodes reference ``torch_utils.persistence``? True for StyleGAN2-ADA/3, EG3D and CGS-GAN
    pickles; the loader then says whether it is a CGS-GAN generator."""
    return pickle_references(path, lambda a: a == "torch_utils.persistence"
                             or a.startswith("torch_utils.persistence "), max_bytes=max_bytes, max_ops=max_ops)
