"""Our tensor files: safetensors with a JSON manifest, as one file or as parts with an index.

One file (``NAME.safetensors``): a standard safetensors file whose ``__metadata__`` holds
``{"format": "pt", "splathead": <manifest JSON>}``. Any safetensors reader opens it; ours also checks it.

Sharded (when ``max_part_bytes`` is given and the data does not fit one file of that size), laid out as large
checkpoints are elsewhere (Hugging Face's ``model.safetensors.index.json``)::

    NAME.safetensors.index.json          {"metadata": {...}, "weight_map": {tensor name: part file name}}
    NAME-00001-of-00003.safetensors      parts: plain safetensors files, each at most max_part_bytes
    NAME-00002-of-00003.safetensors      (header included)
    ...

The index's ``metadata`` holds ``total_size`` (tensor bytes), ``format`` (``"splathead-index"``), a random
``snapshot_id`` that every part also records (``__metadata__["splathead.part"]``, so parts of two different
writes never mix), ``parts`` (file name, size and SHA-256 of each part, checked on read), the ``manifest``
and ``chunks``: a tensor larger than a part is stored flat in pieces ``NAME#0``, ``NAME#1``, ... and
``chunks[NAME] = {"dtype", "shape", "count"}`` says how to put it back, so the size limit always holds.

Writes are atomic: one file via a hidden temporary and a rename; parts are written as temporaries, renamed,
and the index is written last (the commit point). A write killed half-way leaves either hidden ``.tmp`` files
or parts without an index, never a readable half; :func:`orphan_parts` and
``core.atomic_file.stale_temporaries`` find the leftovers.

This module defines the layout and writes it; ``core.tensor_file_reader`` checks and reads it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import uuid
from pathlib import Path
from typing import Any

import torch

from core.atomic_file import atomic_path, atomic_write, fsync_directory, temporary_path

SUFFIX = ".safetensors"
INDEX_SUFFIX = ".safetensors.index.json"
MANIFEST_KEY = "splathead"  # __metadata__ key of a single file: the manifest JSON
PART_KEY = "splathead.part"  # __metadata__ key of a part: {"snapshot_id", "part", "parts"}
INDEX_FORMAT = "splathead-index"
MAX_INDEX_BYTES = 16 << 20
MIN_PART_BYTES = 16 << 10
PART_RE = re.compile(r"^(?P<stem>.+)-(?P<i>\d{5})-of-(?P<n>\d{5})\.safetensors$")
_SAFETENSORS_ERROR_ERRNO = re.compile(r"os error (\d+)")

DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}  # fmt: skip
DTYPE_CODES = {v: k for k, v in DTYPES.items()}


# ---------------------------------------------------------------------------------------------- writing


def index_path(path: str | os.PathLike) -> Path:
    """``NAME.safetensors`` -> ``NAME.safetensors.index.json``."""
    return Path(os.fspath(path) + ".index.json") if os.fspath(path).endswith(SUFFIX) \
        else Path(os.fspath(path) + INDEX_SUFFIX)


_PART_NAME = re.compile(r"-\d{5}-of-\d{5}" + re.escape(SUFFIX) + "$")


def is_part_name(name: str) -> bool:
    """True for a name that :func:`part_path` makes (``NAME-0000i-of-0000n.safetensors``)."""
    return bool(_PART_NAME.search(name))


def part_path(path: str | os.PathLike, i: int, n: int) -> Path:
    """``NAME.safetensors`` -> ``NAME-0000i-of-0000n.safetensors`` (i from 1)."""
    p = os.fspath(path)
    stem = p[: -len(SUFFIX)] if p.endswith(SUFFIX) else p
    return Path(f"{stem}-{i:05d}-of-{n:05d}{SUFFIX}")


def write_tensor_file(path: str | os.PathLike, tensors: dict[str, torch.Tensor], manifest: dict[str, Any], *,
                      max_part_bytes: int | None = None) -> Path:
    """Write ``tensors`` and ``manifest`` atomically; returns the file to open again (``path`` or its index).

    Args:
        path: ``NAME.safetensors``.
        tensors: name -> dense tensor of a dtype in :data:`DTYPES` (any device; copied to the CPU).
            Names are non-empty, without ``#`` (used for chunks) and not ``__metadata__``.
        manifest: JSON-able dict (finite floats only) stored with the tensors.
        max_part_bytes: if given and the whole does not fit in one file of this size, write parts of at most
            this many bytes each plus an index (see the module docstring).

    Raises ``OSError`` (errno ENOSPC for a full disk) when the file system refuses the write; then nothing of
    this write remains and an existing file of the same name is untouched.
    """
    path = Path(path)
    cpu = _checked_tensors(tensors)
    manifest_json = json.dumps(manifest, allow_nan=False, separators=(",", ":"))
    if max_part_bytes is not None and max_part_bytes < MIN_PART_BYTES:
        raise ValueError(f"max_part_bytes must be at least {MIN_PART_BYTES} (got {max_part_bytes})")
    single_meta = {"format": "pt", MANIFEST_KEY: manifest_json}
    single_size = _header_estimate(cpu, single_meta) + sum(_nbytes(t) for t in cpu.values())
    if max_part_bytes is None or single_size <= max_part_bytes:
        with _saving(path), atomic_path(path) as tmp:
            _save(cpu, tmp, single_meta)
        _remove_sharded(path, keep=())
        return path
    return _write_sharded(path, cpu, manifest, max_part_bytes)


def _checked_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for name, t in tensors.items():
        if type(name) is not str or not name or "#" in name or name == "__metadata__":
            raise ValueError(f"tensor name {name!r}: names are non-empty strings without '#'")
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}: a {type(t).__name__}, not a tensor")
        if t.layout != torch.strided or t.is_quantized or t.device.type == "meta":
            raise TypeError(f"{name}: only dense tensors with data can be stored (layout {t.layout}, "
                            f"device {t.device})")
        if t.dtype not in DTYPE_CODES:
            raise TypeError(f"{name}: dtype {t.dtype} is not supported ({', '.join(map(str, DTYPE_CODES))})")
        out[name] = t.detach().to("cpu").resolve_neg().resolve_conj().contiguous()
    return out


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def _entry_estimate(name: str, shape: tuple[int, ...]) -> int:
    """An upper bound on the header bytes of one entry."""
    return len(json.dumps(name)) + 48 + sum(len(str(d)) + 1 for d in shape) + 2 * 21


def _header_estimate(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> int:
    return 8 + 16 + len(json.dumps({"__metadata__": metadata})) + 8 + sum(
        _entry_estimate(n, tuple(t.shape)) for n, t in tensors.items())


def _save(tensors: dict[str, torch.Tensor], filename: str, metadata: dict[str, str]) -> None:
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    try:
        save_file(tensors, filename, metadata=metadata)
    except SafetensorError as exc:  # the Rust writer reports I/O errors as text: give them back their errno
        m = _SAFETENSORS_ERROR_ERRNO.search(str(exc))
        if m:
            code = int(m.group(1))
            raise OSError(code, os.strerror(code), filename) from None
        raise


@contextlib.contextmanager
def _saving(path: Path):
    """Name the file in an OSError raised while writing it."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None or str(exc.filename).endswith(".tmp"):
            raise OSError(exc.errno, exc.strerror, os.fspath(path)) from None
        raise


def _plan_parts(tensors: dict[str, torch.Tensor], metadata_bytes: int, max_part_bytes: int
                ) -> tuple[list[dict[str, torch.Tensor]], dict[str, dict]]:
    """First-fit packing in the given order (each tensor goes into the first part with room, so few parts
    are written); a tensor larger than a part is split flat into chunks."""
    budget = max_part_bytes - 8 - 16 - metadata_bytes - 8
    parts: list[dict[str, torch.Tensor]] = []
    used: list[int] = []
    chunks: dict[str, dict] = {}

    def add(name: str, t: torch.Tensor) -> None:
        cost = _entry_estimate(name, tuple(t.shape)) + _nbytes(t)
        i = next((i for i, u in enumerate(used) if u + cost <= budget), None)
        if i is None:
            parts.append({})
            used.append(0)
            i = len(parts) - 1
        parts[i][name] = t
        used[i] += cost

    for name, t in tensors.items():
        cost = _entry_estimate(name, tuple(t.shape)) + _nbytes(t)
        if cost <= budget:
            add(name, t)
            continue
        flat = t.reshape(-1)
        per = max(1, (budget - _entry_estimate(name + "#0000000", (flat.numel(),))) // t.element_size())
        pieces = [flat[i: i + per] for i in range(0, flat.numel(), per)]
        chunks[name] = {"dtype": DTYPE_CODES[t.dtype], "shape": list(t.shape), "count": len(pieces)}
        for i, piece in enumerate(pieces):
            add(f"{name}#{i}", piece)
    return parts, chunks


def _write_sharded(path: Path, tensors: dict[str, torch.Tensor], manifest: dict[str, Any],
                   max_part_bytes: int) -> Path:
    snapshot_id = uuid.uuid4().hex
    probe = json.dumps({"format": "pt", PART_KEY: json.dumps(
        {"snapshot_id": snapshot_id, "part": 99999, "parts": 99999})})
    plan, chunks = _plan_parts(tensors, len(probe), max_part_bytes)
    n = len(plan)
    if n > 99999:
        raise ValueError(f"{n} parts: raise max_part_bytes")
    finals = [part_path(path, i + 1, n) for i in range(n)]
    temps: list[str] = []
    parts_meta = []
    try:
        with _saving(path):
            for i, (part, final) in enumerate(zip(plan, finals)):
                tmp = temporary_path(final)
                temps.append(tmp)
                meta = {"format": "pt", PART_KEY: json.dumps({"snapshot_id": snapshot_id, "part": i + 1,
                                                              "parts": n})}
                _save(part, tmp, meta)
                size, digest = _fsync_and_hash(tmp)
                if size > max_part_bytes:  # the estimate is an upper bound; this would be a bug
                    raise AssertionError(f"part {final.name} has {size} bytes, over {max_part_bytes}")
                parts_meta.append({"file": final.name, "size": size, "sha256": digest})
        index = {
            "metadata": {"format": INDEX_FORMAT, "total_size": sum(_nbytes(t) for t in tensors.values()),
                         "snapshot_id": snapshot_id, "parts": parts_meta, "chunks": chunks,
                         "manifest": manifest},
            "weight_map": {name: finals[i].name for i, part in enumerate(plan) for name in part},
        }
        index_bytes = (json.dumps(index, allow_nan=False, indent=1) + "\n").encode()
        ipath = index_path(path)
        ipath.unlink(missing_ok=True)  # a snapshot of the same name is replaced: uncommit it first
        path.unlink(missing_ok=True)
        for tmp, final in zip(temps, finals):
            os.replace(tmp, final)
        temps = [os.fspath(f) for f in finals]  # from here on, a failure removes the renamed parts
        with _saving(ipath), atomic_write(ipath) as f:
            f.write(index_bytes)
    except BaseException:
        for tmp in temps:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
        raise
    fsync_directory(path.parent)
    _remove_sharded(path, keep=set(finals))
    return ipath


def _fsync_and_hash(filename: str) -> tuple[int, str]:
    h = hashlib.sha256()
    size = 0
    with open(filename, "rb") as f:
        os.fsync(f.fileno())
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
            size += len(block)
    return size, h.hexdigest()


def _remove_sharded(path: Path, keep: set[Path] | tuple) -> None:
    """After ``path`` was written as one file: remove an index and parts of the same name (or, after a
    sharded write, the parts of an older write that the new index does not list)."""
    if not keep:
        index_path(path).unlink(missing_ok=True)
    stem = part_path(path, 1, 1).name[: -len("-00001-of-00001" + SUFFIX)]
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(path.parent):
            m = PART_RE.match(entry.name)
            if m and m.group("stem") == stem and Path(entry.path) not in keep:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(entry.path)


def orphan_parts(directory: str | os.PathLike, older_than: float) -> list[Path]:
    """Part files in ``directory`` that no index lists (left by a write that was killed before its index was
    written), last modified before ``older_than``. Parts whose index cannot be read are left alone."""
    directory = Path(directory)
    listed: dict[str, set[str] | None] = {}
    found = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(directory):
            m = PART_RE.match(entry.name)
            if not m or not entry.is_file(follow_symlinks=False):
                continue
            stem = m.group("stem")
            if stem not in listed:
                listed[stem] = _listed_parts(directory / (stem + INDEX_SUFFIX))
            names = listed[stem]
            if names is not None and entry.name not in names and entry.stat().st_mtime < older_than:
                found.append(Path(entry.path))
    return sorted(found)


def _listed_parts(ipath: Path) -> set[str] | None:
    try:
        if ipath.stat().st_size > MAX_INDEX_BYTES:
            return None
        index = json.loads(ipath.read_text(encoding="utf-8"))
        return {p["file"] for p in index["metadata"]["parts"]}
    except FileNotFoundError:
        return set()
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None
