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

Reading (:func:`open_tensor_file`) checks every header before any tensor is read: the header length against
the file size, the JSON, each entry's dtype, shape and byte range (contiguous, non-overlapping, exactly
covering the data), the part sizes and names, the chunk table. Only then can a caller compare the table with
what it expects (names and shapes from a config) and read (:meth:`TensorFile.read`), so nothing is allocated
beyond what the file's bytes hold.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from core.atomic_file import atomic_path, atomic_write, fsync_directory, temporary_path
from core.checkpoint import CorruptCheckpointError

SUFFIX = ".safetensors"
INDEX_SUFFIX = ".safetensors.index.json"
MANIFEST_KEY = "splathead"  # __metadata__ key of a single file: the manifest JSON
PART_KEY = "splathead.part"  # __metadata__ key of a part: {"snapshot_id", "part", "parts"}
INDEX_FORMAT = "splathead-index"
MAX_HEADER_BYTES = 16 << 20  # safetensors itself allows 100 MB; ours are a few kB to a few hundred kB
MAX_INDEX_BYTES = 16 << 20
MAX_FILE_BYTES = 64 << 30
MAX_DIMS = 8
MIN_PART_BYTES = 16 << 10
_PART_RE = re.compile(r"^(?P<stem>.+)-(?P<i>\d{5})-of-(?P<n>\d{5})\.safetensors$")
_SAFETENSORS_ERROR_ERRNO = re.compile(r"os error (\d+)")

DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}  # fmt: skip
DTYPE_CODES = {v: k for k, v in DTYPES.items()}


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as the headers describe it. ``pieces``: ``(part file, entry name)`` in order (one entry,
    or the chunks of a tensor split over parts)."""

    dtype: str
    shape: tuple[int, ...]
    pieces: tuple[tuple[Path, str], ...]

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * DTYPES[self.dtype].itemsize


@dataclass(frozen=True)
class PartInfo:
    """A part of a sharded file: its path, size in bytes and SHA-256 (hex) as the index records them."""

    path: Path
    size: int
    sha256: str


@dataclass(frozen=True, eq=False)
class TensorFile:
    """A file's headers, checked; no tensor data has been read.

    Attributes:
        path: the file the caller named (the single file, or the index of a sharded one).
        manifest: the JSON manifest the writer stored.
        tensors: every tensor by name, with dtype, shape and where it lies.
        parts: the parts of a sharded file (empty for a single file).
    """

    path: Path
    manifest: dict[str, Any]
    tensors: dict[str, TensorInfo]
    parts: tuple[PartInfo, ...] = ()

    @property
    def nbytes(self) -> int:
        """Total tensor bytes."""
        return sum(t.nbytes for t in self.tensors.values())

    @property
    def files(self) -> tuple[Path, ...]:
        """Every file that makes up this one (index first)."""
        return (self.path, *(p.path for p in self.parts))

    def read(self, names: list[str] | None = None, device: torch.device | str = "cpu",
             verify: bool = True) -> dict[str, torch.Tensor]:
        """The tensors ``names`` (default: all), as new tensors on ``device``.

        With ``verify`` the SHA-256 of every part that is read is checked against the index first.
        Raises CorruptCheckpointError when a file changed since it was opened or a part is damaged.
        """
        from safetensors import SafetensorError, safe_open

        names = list(self.tensors) if names is None else list(names)
        missing = [n for n in names if n not in self.tensors]
        if missing:
            raise KeyError(f"{self.path}: no tensors {missing[:5]}")
        needed = {piece[0] for n in names for piece in self.tensors[n].pieces}
        if verify:
            for part in self.parts:
                if part.path in needed:
                    _verify_part(part)
        out: dict[str, torch.Tensor] = {}
        by_file: dict[Path, list[str]] = {}
        for n in names:
            for file, _ in self.tensors[n].pieces:
                by_file.setdefault(file, []).append(n)
        loaded: dict[tuple[Path, str], torch.Tensor] = {}
        for file in by_file:
            _check_unchanged(file, self)
            try:
                with safe_open(os.fspath(file), framework="pt", device="cpu") as f:
                    for n in dict.fromkeys(by_file[file]):
                        for piece_file, entry in self.tensors[n].pieces:
                            if piece_file == file:
                                loaded[(file, entry)] = f.get_tensor(entry)
            except (SafetensorError, OSError) as exc:
                raise CorruptCheckpointError(file, f"cannot read its tensors: {exc}") from None
        for n in names:
            info = self.tensors[n]
            pieces = [loaded[p] for p in info.pieces]
            t = pieces[0] if len(pieces) == 1 else torch.cat([p.reshape(-1) for p in pieces])
            if t.dtype != info.torch_dtype or t.numel() != math.prod(info.shape):
                raise CorruptCheckpointError(info.pieces[0][0], f"{n}: the file changed since it was opened")
            out[n] = t.reshape(info.shape).to(device)
            for p in info.pieces:
                loaded.pop(p, None)
        return out


# ---------------------------------------------------------------------------------------------- writing


def index_path(path: str | os.PathLike) -> Path:
    """``NAME.safetensors`` -> ``NAME.safetensors.index.json``."""
    return Path(os.fspath(path) + ".index.json") if os.fspath(path).endswith(SUFFIX) \
        else Path(os.fspath(path) + INDEX_SUFFIX)


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
            m = _PART_RE.match(entry.name)
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
            m = _PART_RE.match(entry.name)
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


# ---------------------------------------------------------------------------------------------- reading


def sniff(path: str | os.PathLike) -> str:
    """What the file looks like from its first bytes: ``"safetensors"``, ``"index"`` (JSON), ``"pickle"``,
    ``"ply"``, ``"zip"`` or ``"unknown"``. The caller has checked that it is a regular file."""
    with open(path, "rb") as f:
        head = f.read(16)
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 2**63:
        return "safetensors"  # whether the header length fits the file is checked when it is read
    if head[:1] == b"\x80":
        return "pickle"
    if head.lstrip()[:1] == b"{":
        return "index"
    if head.startswith((b"ply\n", b"ply\r")):
        return "ply"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    return "unknown"


def open_tensor_file(path: str | os.PathLike, *, max_bytes: int = MAX_FILE_BYTES) -> TensorFile:
    """Read and check the headers of ``path`` (a single file or an index); no tensor data is read.

    Raises:
        FileNotFoundError / IsADirectoryError: as usual (also for a missing part).
        CorruptCheckpointError: not one of ours, truncated, a header that does not fit the file, parts that
            do not fit the index, or more than ``max_bytes`` in all.
    """
    path = Path(path)
    size = _regular_size(path)
    kind = sniff(path)
    if kind == "safetensors":
        if size > max_bytes:
            raise CorruptCheckpointError(path, f"{size:,} bytes, over the limit of {max_bytes:,}")
        meta, entries = _read_safetensors_header(path, size)
        if MANIFEST_KEY not in meta:
            raise CorruptCheckpointError(path, (
                "a safetensors file without a splathead manifest (its metadata has "
                f"{sorted(meta)[:6]}): not a splathead file" + (", but a part of a sharded one: open its "
                                                                 ".index.json" if PART_KEY in meta else "")))
        manifest = _parse_json(path, meta[MANIFEST_KEY], "manifest")
        tensors = {n: TensorInfo(dt, shape, ((path, n),)) for n, (dt, shape, _, _) in entries.items()}
        return TensorFile(path, manifest, tensors)
    if kind == "index":
        return _open_index(path, size, max_bytes)
    raise CorruptCheckpointError(path, f"not a safetensors file or index (it looks like: {kind})")


def _regular_size(path: Path) -> int:
    st = os.stat(path)  # before open(): opening a FIFO would block
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(21, "Is a directory (expected a .safetensors file or its .index.json)",
                                os.fspath(path))
    if not stat.S_ISREG(st.st_mode):
        raise CorruptCheckpointError(path, "not a regular file")
    return st.st_size


def _parse_json(path: Path, text: str | bytes, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise CorruptCheckpointError(path, f"its {what} is not valid JSON ({type(exc).__name__}: "
                                           f"{str(exc)[:200]})") from None


def _read_safetensors_header(path: Path, size: int) -> tuple[dict[str, str], dict[str, tuple]]:
    """``(metadata, {name: (dtype, shape, begin, end)})`` after checking everything against ``size``."""
    def bad(problem: str) -> CorruptCheckpointError:
        return CorruptCheckpointError(path, problem)

    with open(path, "rb") as f:
        first = f.read(8)
        if len(first) < 8:
            raise bad("truncated: shorter than a safetensors header")
        n = int.from_bytes(first, "little")
        if n > MAX_HEADER_BYTES or n > size - 8:
            raise bad(f"the header claims {n:,} bytes, but the file has {size - 8:,} after its length field "
                      f"(limit {MAX_HEADER_BYTES:,}): truncated or not a safetensors file")
        raw = f.read(n)
    if len(raw) != n:
        raise bad("truncated header (the file changed while it was read)")
    header = _parse_json(path, raw, "header")
    if not isinstance(header, dict):
        raise bad("the header is not a JSON object")
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise bad("__metadata__ must map strings to strings")
    entries = {}
    for name, e in header.items():
        if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
            raise bad(f"tensor {name[:100]!r}: an entry needs exactly dtype, shape and data_offsets")
        dtype, shape, offsets = e["dtype"], e["shape"], e["data_offsets"]
        if dtype not in DTYPES:
            raise bad(f"tensor {name[:100]!r}: dtype {str(dtype)[:20]!r} is not one we store "
                      f"({', '.join(DTYPES)})")
        if (not isinstance(shape, list) or len(shape) > MAX_DIMS
                or not all(type(d) is int and 0 <= d < 2**48 for d in shape)):
            raise bad(f"tensor {name[:100]!r}: shape {str(shape)[:80]} is not a list of at most {MAX_DIMS} "
                      "non-negative ints")
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(type(o) is int for o in offsets):
            raise bad(f"tensor {name[:100]!r}: data_offsets must be two ints")
        begin, end = offsets
        expected = math.prod(shape) * DTYPES[dtype].itemsize
        if not 0 <= begin <= end or end - begin != expected:
            raise bad(f"tensor {name[:100]!r}: bytes {begin}..{end} for a {dtype} tensor of shape {shape}, "
                      f"which needs {expected:,}")
        entries[name] = (dtype, tuple(shape), begin, end)
    position = 0
    for name, (_, _, begin, end) in sorted(entries.items(), key=lambda kv: (kv[1][2], kv[1][3])):
        if begin != position:
            raise bad(f"tensor {name[:100]!r} starts at byte {begin} of the data, expected {position} "
                      "(gaps or overlaps)")
        position = end
    if position != size - 8 - n:
        raise bad(f"the tensors cover {position:,} bytes but the file holds {size - 8 - n:,} after the header "
                  "(truncated or padded)")
    return meta, entries


def _open_index(path: Path, size: int, max_bytes: int) -> TensorFile:
    def bad(problem: str) -> CorruptCheckpointError:
        return CorruptCheckpointError(path, problem)

    if size > MAX_INDEX_BYTES:
        raise bad(f"{size:,} bytes: too large for an index (limit {MAX_INDEX_BYTES:,})")
    index = _parse_json(path, path.read_bytes(), "index")
    if not isinstance(index, dict) or not isinstance(index.get("metadata"), dict) \
            or index["metadata"].get("format") != INDEX_FORMAT or not isinstance(index.get("weight_map"), dict):
        raise bad(f"not a splathead index (a JSON file without metadata.format == {INDEX_FORMAT!r} and a "
                  "weight_map)")
    meta, weight_map = index["metadata"], index["weight_map"]
    manifest, parts_meta, chunks = meta.get("manifest"), meta.get("parts"), meta.get("chunks", {})
    snapshot_id = meta.get("snapshot_id")
    if not isinstance(manifest, dict) or not isinstance(parts_meta, list) or not parts_meta \
            or not isinstance(chunks, dict) or not isinstance(snapshot_id, str):
        raise bad("index metadata needs manifest (object), parts (non-empty list), chunks, snapshot_id")
    parts: list[PartInfo] = []
    n = len(parts_meta)
    for i, p in enumerate(parts_meta):
        expected_name = part_path(path.name[: -len(".index.json")], i + 1, n).name \
            if path.name.endswith(".index.json") else None
        if (not isinstance(p, dict) or not isinstance(p.get("file"), str) or p["file"] != expected_name
                or type(p.get("size")) is not int or not isinstance(p.get("sha256"), str)):
            raise bad(f"part {i + 1}: expected {{file: {expected_name!r}, size, sha256}}, got {str(p)[:200]}")
        parts.append(PartInfo(path.parent / p["file"], p["size"], p["sha256"]))
    if sum(p.size for p in parts) > max_bytes:
        raise bad(f"its parts hold {sum(p.size for p in parts):,} bytes, over the limit of {max_bytes:,}")
    entries: dict[str, tuple[str, tuple[int, ...], Path]] = {}
    for part in parts:
        actual = _regular_size(part.path)
        if actual != part.size:
            raise CorruptCheckpointError(part.path, f"{actual:,} bytes, but the index records {part.size:,} "
                                                    "(truncated or from another write)")
        pmeta, pentries = _read_safetensors_header(part.path, actual)
        tag = _parse_json(part.path, pmeta.get(PART_KEY, "null"), "part record")
        if not isinstance(tag, dict) or tag.get("snapshot_id") != snapshot_id:
            raise CorruptCheckpointError(part.path, "belongs to another write than its index (snapshot_id "
                                                    "differs): copy the index and its parts together")
        for name, (dt, shape, _, _) in pentries.items():
            if weight_map.get(name) != part.path.name:
                raise CorruptCheckpointError(part.path, f"holds {name[:100]!r}, which the index does not map to "
                                                        "this part")
            entries[name] = (dt, shape, part.path)
    if set(weight_map) != set(entries):
        missing = sorted(set(weight_map) - set(entries))[:5]
        raise bad(f"the weight_map lists tensors no part holds: {missing}")
    tensors: dict[str, TensorInfo] = {}
    chunked = set()
    for name, c in chunks.items():
        if (not isinstance(c, dict) or c.get("dtype") not in DTYPES or type(c.get("count")) is not int
                or not isinstance(c.get("shape"), list) or len(c["shape"]) > MAX_DIMS
                or not all(type(d) is int and d >= 0 for d in c["shape"]) or not 1 <= c["count"] <= len(entries)):
            raise bad(f"chunk record of {name[:100]!r} is malformed")
        pieces = [f"{name}#{i}" for i in range(c["count"])]
        if not all(p in entries and entries[p][0] == c["dtype"] and len(entries[p][1]) == 1 for p in pieces):
            raise bad(f"the chunks of {name[:100]!r} are missing or not flat {c['dtype']} tensors")
        if sum(entries[p][1][0] for p in pieces) != math.prod(c["shape"]):
            raise bad(f"the chunks of {name[:100]!r} do not add up to shape {c['shape']}")
        tensors[name] = TensorInfo(c["dtype"], tuple(c["shape"]), tuple((entries[p][2], p) for p in pieces))
        chunked.update(pieces)
    for name, (dt, shape, file) in entries.items():
        if name not in chunked:
            if "#" in name:
                raise bad(f"tensor {name[:100]!r} looks like a chunk but no chunk record lists it")
            tensors[name] = TensorInfo(dt, shape, ((file, name),))
    return TensorFile(path, manifest, tensors, tuple(parts))


def _verify_part(part: PartInfo) -> None:
    h = hashlib.sha256()
    with open(part.path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    if h.hexdigest() != part.sha256:
        raise CorruptCheckpointError(part.path, "SHA-256 differs from the index: the part is damaged (an "
                                                "incomplete copy?)")


def _check_unchanged(file: Path, tf: TensorFile) -> None:
    """A file replaced between open and read gets a clear error instead of wrong tensors."""
    expected = next((p.size for p in tf.parts if p.path == file), None)
    if expected is None:
        return  # a single file: safe_open re-checks its header against its size
    if _regular_size(file) != expected:
        raise CorruptCheckpointError(file, "changed since its index was read")
