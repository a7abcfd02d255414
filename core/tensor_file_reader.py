"""Reading our tensor files (layout: ``core.tensor_files``): every header is checked before a tensor is read.

:func:`open_tensor_file` checks the header length against the file size, the JSON, each entry's dtype, shape
and byte range (contiguous, non-overlapping, exactly covering the data), and for a sharded file the index,
the part names (no path leaves the folder), sizes and write ids, and the chunk table. It returns a
:class:`TensorFile` with the table of every tensor; a caller compares it with what it expects (names and
shapes from a config) and only then reads (:meth:`TensorFile.read`, which also checks each part's SHA-256),
so nothing is allocated beyond what the file's bytes hold.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from core.checkpoint import CorruptCheckpointError
from core.tensor_files import DTYPES, INDEX_FORMAT, MANIFEST_KEY, MAX_INDEX_BYTES, PART_KEY, part_path

MAX_HEADER_BYTES = 16 << 20  # safetensors itself allows 100 MB; ours are a few kB to a few hundred kB
MAX_FILE_BYTES = 64 << 30
MAX_DIMS = 8


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
