"""Read and write the standard 3DGS ``.ply`` layout (numpy only, no plyfile).

Byte layout written by :func:`write_ply` (``binary_little_endian 1.0``, one ``vertex`` element, N rows,
every property a little-endian float32, rows packed with no padding, 4 * (17 + 3 * (K - 1)) bytes each)::

    x y z            means[i]                           (world space)
    nx ny nz         0.0 (normals, unused by 3DGS)
    f_dc_0..2        sh[i, 0, c]                        (DC term per channel c)
    f_rest_0..M-1    sh[i, k, c] at f_rest_{c*(K-1) + k-1}  (channel-major, M = 3 * (K - 1))
    opacity          opacity_logits[i]                  (logit, pre-sigmoid)
    scale_0..2       log_scales[i]                      (natural log, pre-exp)
    rot_0..3         quats[i] = (w, x, y, z)            (as stored, not normalised)

K = 1, 4, 9, 16 SH coefficients per channel for degree 0..3, so M = 0, 9, 24 or 45 ``f_rest_*``.

:func:`read_ply` accepts what other tools write: any property order, extra properties (ignored), any
numeric PLY type (converted to float32), ``binary_big_endian`` and ``ascii``, and other elements
(e.g. ``face``) before or after ``vertex``. Every problem with the file raises :class:`PlyError` naming
the file; sizes are checked against the file size before anything is allocated.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import torch

from core.atomic_file import atomic_write
from core.gaussians import GaussianSet, sh_coeff_count
from core.regular_file import open_regular

MAX_HEADER_BYTES = 1 << 20  # a header must end within 1 MiB ...
MAX_HEADER_LINES = 10_000  # ... and 10,000 lines
MAX_COUNT = 10**15  # element counts above this are refused outright (before the file-size check)
MAX_ASCII_TOKEN = 64  # characters in one ASCII value (a float64 needs at most 24)
ASCII_CHUNK_ROWS = 4096  # ASCII rows parsed at a time
MAX_OTHER_LINE = 1 << 20  # bytes in one ASCII row of another element (skipped)

FORMATS = ("ascii", "binary_little_endian", "binary_big_endian")
_TYPES = {  # PLY scalar type -> numpy type code (byte order added per file)
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip
_REST_COUNTS = {0: 0, 9: 1, 24: 2, 45: 3}  # number of f_rest_* properties -> SH degree
_END_HEADER = re.compile(rb"\nend_header[ \t\r]*\n")


class PlyError(ValueError):
    """A PLY file that cannot be read; the message starts with the file's path."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        super().__init__(f"{os.fspath(path)}: {problem}")
        self.path = os.fspath(path)
        self.problem = problem

    def __reduce__(self) -> tuple:  # keep it picklable (e.g. across worker processes)
        return (type(self), (self.path, self.problem))


@dataclass(frozen=True)
class _Element:
    name: str
    count: int
    props: tuple[tuple[str, str, bool], ...]  # (name, type, is_list)


@dataclass(frozen=True)
class PlyHeader:
    """What the header of a 3DGS ``.ply`` says (validated; cheap to read, no vertex data touched).

    Attributes:
        path: the file.
        format: ``"ascii"``, ``"binary_little_endian"`` or ``"binary_big_endian"``.
        vertex_count: N, the number of Gaussians.
        properties: ``(name, ply_type)`` of every ``vertex`` property, in file order.
        sh_degree: 0..3, from the number of ``f_rest_*`` properties.
        header_size: bytes up to and including the ``end_header`` line.
        file_size: bytes in the file.
        skip: what precedes the vertex data after the header: bytes (binary) or lines (ascii).
    """

    path: str
    format: str
    vertex_count: int
    properties: tuple[tuple[str, str], ...]
    sh_degree: int
    header_size: int
    file_size: int
    skip: int = field(default=0, repr=False)


def _property_map(k: int) -> list[tuple[str, str, tuple[int, ...]]]:
    """``(ply name, GaussianSet field, index within one Gaussian's slot)`` for K SH coefficients,
    in the on-disk order of :func:`write_ply` (normals excluded)."""
    m = [(n, "means", (i,)) for i, n in enumerate("xyz")]
    m += [(f"f_dc_{c}", "sh", (0, c)) for c in range(3)]
    m += [(f"f_rest_{c * (k - 1) + j - 1}", "sh", (j, c)) for c in range(3) for j in range(1, k)]
    m += [("opacity", "opacity_logits", ())]
    m += [(f"scale_{i}", "log_scales", (i,)) for i in range(3)]
    m += [(f"rot_{i}", "quats", (i,)) for i in range(4)]
    return m


# ---------------------------------------------------------------------------------------------- writing


def write_ply(path: str | os.PathLike, gaussians: GaussianSet) -> None:
    """Write one scene (``batch_shape == ()``) in the layout of the module docstring, atomically.

    The data goes to a temporary file in the same directory which then replaces ``path`` (``os.replace``),
    so a crash never leaves a half-written file. Values are stored as float32: float16/bfloat16 sets are
    widened exactly, float64 sets are rounded (lossy; values beyond float32 range become +-inf).
    Non-finite values are written as they are.
    """
    if gaussians.batch_shape != ():
        raise ValueError(
            f"write_ply writes one scene, got a batch of shape {tuple(gaussians.batch_shape)}; "
            "write each scene of .unbind() to its own file"
        )
    g = gaussians.detach().to(device="cpu", dtype=torch.float32)
    n, k = g.num_gaussians, g.sh.shape[-2]
    pmap = _property_map(k)
    names = ["x", "y", "z", "nx", "ny", "nz"] + [p[0] for p in pmap[3:]]
    table = np.zeros((n, len(names)), dtype="<f4")  # normals stay zero
    src = {f: getattr(g, f).numpy() for f in ("means", "quats", "log_scales", "opacity_logits", "sh")}
    for col, (_, fname, idx) in zip([0, 1, 2] + list(range(6, len(names))), pmap):
        table[:, col] = src[fname][(slice(None),) + idx]
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {n}"]
    header += [f"property float {name}" for name in names] + ["end_header", ""]
    _atomic_write(path, "\n".join(header).encode("ascii"), table)


def _atomic_write(path: str | os.PathLike, header: bytes, table: np.ndarray) -> None:
    with atomic_write(path) as f:
        f.write(header)
        f.write(np.ascontiguousarray(table).reshape(-1).view(np.uint8).data)


# ---------------------------------------------------------------------------------------------- header


def read_ply_header(path: str | os.PathLike) -> PlyHeader:
    """Parse and validate the header of a 3DGS ``.ply`` without reading the vertex data.

    Checks the format, that ``vertex`` has every required property (all missing ones are named) and no
    list properties, the SH degree, and that the file is large enough for the declared vertex data.
    Raises :class:`PlyError` (``FileNotFoundError``/``IsADirectoryError`` for missing paths/directories).
    """
    with open_regular(path, "a .ply file", error=lambda p: PlyError(path, p)) as f:  # a FIFO never blocks
        st = os.fstat(f.fileno())
        if st.st_size == 0:
            raise PlyError(path, "empty file")
        head = f.read(min(st.st_size, MAX_HEADER_BYTES))
    if not (head.startswith(b"ply\n") or head.startswith(b"ply\r\n")):
        raise PlyError(path, "not a PLY file (it does not start with the 'ply' magic line)")
    end = _END_HEADER.search(head)
    if end is None:
        if st.st_size > MAX_HEADER_BYTES:
            raise PlyError(path, f"no 'end_header' line within the first {MAX_HEADER_BYTES} bytes")
        raise PlyError(path, "header is not terminated by an 'end_header' line (truncated header?)")
    lines = head[: end.start()].split(b"\n")
    if len(lines) > MAX_HEADER_LINES:
        raise PlyError(path, f"header has {len(lines)} lines, more than the limit of {MAX_HEADER_LINES}")
    fmt, elements = _parse_header_lines(path, lines[1:])
    return _check_vertex(path, fmt, elements, end.end(), st.st_size)


def _parse_header_lines(path: str | os.PathLike, lines: list[bytes]) -> tuple[str, list[_Element]]:
    fmt: str | None = None
    elements: list[tuple[str, int, list[tuple[str, str, bool]], set[str]]] = []
    for lineno, raw in enumerate(lines, start=2):
        tok = [t.decode("latin-1") for t in raw.split()]
        where = f"header line {lineno} ({raw[:80].decode('latin-1')!r})"
        if not tok or tok[0] in ("comment", "obj_info"):
            continue
        if tok[0] == "format":
            if fmt is not None or len(tok) != 3:
                raise PlyError(path, f"{where}: expected one 'format <type> 1.0' line")
            if tok[1] not in FORMATS:
                raise PlyError(path, f"{where}: unknown format {tok[1]!r}; expected {' or '.join(FORMATS)}")
            if tok[2] not in ("1.0", "1"):
                raise PlyError(path, f"{where}: unsupported PLY version {tok[2]!r} (only 1.0)")
            fmt = tok[1]
        elif tok[0] == "element":
            if len(tok) != 3 or not _is_name(tok[1]):
                raise PlyError(path, f"{where}: expected 'element <name> <count>'")
            if not re.fullmatch(r"[0-9]{1,30}", tok[2]):
                raise PlyError(path, f"{where}: element count must be a non-negative integer")
            if int(tok[2]) > MAX_COUNT:
                raise PlyError(path, f"{where}: absurd element count {tok[2]}")
            elements.append((tok[1], int(tok[2]), [], set()))
        elif tok[0] == "property":
            if not elements:
                raise PlyError(path, f"{where}: property before any element")
            is_list = len(tok) == 5 and tok[1] == "list"
            types = tok[2:4] if is_list else tok[1:2]
            if len(tok) != (5 if is_list else 3) or not _is_name(tok[-1]):
                raise PlyError(path, f"{where}: expected 'property <type> <name>' or 'property list ...'")
            if any(t not in _TYPES for t in types):
                raise PlyError(path, f"{where}: unknown property type; expected one of {', '.join(_TYPES)}")
            ename, _, props, seen = elements[-1]
            if tok[-1] in seen:
                raise PlyError(path, f"{where}: duplicate property {tok[-1]!r} in element {ename!r}")
            seen.add(tok[-1])
            props.append((tok[-1], " ".join(tok[1:-1]), is_list))
        else:
            raise PlyError(path, f"{where}: unknown header keyword {tok[0]!r}")
    if fmt is None:
        raise PlyError(path, "header has no 'format' line")
    return fmt, [_Element(name, count, tuple(props)) for name, count, props, _ in elements]


def _is_name(s: str) -> bool:
    return s.isascii() and s.isprintable()


def _check_vertex(
    path: str | os.PathLike, fmt: str, elements: list[_Element], hsize: int, fsize: int
) -> PlyHeader:
    index = [i for i, e in enumerate(elements) if e.name == "vertex"]
    if len(index) != 1:
        raise PlyError(path, f"expected exactly one 'vertex' element, found {len(index)}")
    before, vertex = elements[: index[0]], elements[index[0]]
    names = [p[0] for p in vertex.props]
    lists = [p[0] for p in vertex.props if p[2]]
    if lists:
        raise PlyError(path, f"vertex has list properties {lists}; 3DGS vertices need scalar properties")
    n_rest = sum(1 for nm in names if nm.startswith("f_rest_"))
    if n_rest not in _REST_COUNTS:
        raise PlyError(path, f"{n_rest} f_rest_* properties; expected 0, 9, 24 or 45 (SH degree 0-3)")
    degree = _REST_COUNTS[n_rest]
    missing = [p[0] for p in _property_map(sh_coeff_count(degree)) if p[0] not in names]
    if missing:
        raise PlyError(path, f"vertex is missing required properties: {', '.join(missing)}")
    body = fsize - hsize
    if fmt == "ascii":  # every property needs >= 1 character plus a separator or newline
        skip = sum(e.count for e in before)
        need = sum(e.count * max(1, 2 * len(e.props)) for e in before + [vertex]) - 1
    else:
        listed = [e.name for e in before if any(p[2] for p in e.props)]
        if listed:
            raise PlyError(path, f"elements {listed} before 'vertex' have list properties (size unknown)")
        skip = sum(e.count * _row_dtype(e, fmt).itemsize for e in before)
        need = skip + vertex.count * _row_dtype(vertex, fmt).itemsize
    if need > body:
        raise PlyError(
            path, f"truncated or corrupt: the header declares {vertex.count} vertices needing at least "
            f"{need} bytes of data, but the file has only {body} bytes after the header",
        )  # fmt: skip
    props = tuple((p[0], p[1]) for p in vertex.props)
    return PlyHeader(os.fspath(path), fmt, vertex.count, props, degree, hsize, fsize, skip)


def _row_dtype(element: _Element, fmt: str) -> np.dtype:
    order = "<" if fmt == "binary_little_endian" else ">"
    formats = [order + _TYPES[p[1]] for p in element.props]
    return np.dtype({"names": [p[0] for p in element.props], "formats": formats})


# ---------------------------------------------------------------------------------------------- reading


def read_ply(
    path: str | os.PathLike, *, device: str | torch.device = "cpu", validate: bool = True
) -> GaussianSet:
    """Read a 3DGS ``.ply`` into a float32 :class:`GaussianSet` with shapes ``[N, ...]`` on ``device``.

    Values of any numeric type are converted to float32 (float32 data is copied bit-exactly, so
    ``read_ply(write_ply(g))`` equals ``g`` bit for bit). With ``validate=True`` NaN/Inf values raise
    :class:`PlyError` naming the property; ``validate=False`` lets them through.
    """
    h = read_ply_header(path)
    n, k = h.vertex_count, sh_coeff_count(h.sh_degree)
    pmap = _property_map(k)
    cols = _read_ascii(h, pmap) if h.format == "ascii" else _read_binary(h)
    out = {
        "means": np.empty((n, 3), np.float32),
        "quats": np.empty((n, 4), np.float32),
        "log_scales": np.empty((n, 3), np.float32),
        "opacity_logits": np.empty((n,), np.float32),
        "sh": np.empty((n, k, 3), np.float32),
    }
    with np.errstate(all="ignore"):  # double -> float overflow becomes inf, reported by validate
        for name, fname, idx in pmap:
            dst = out[fname][(slice(None),) + idx]
            dst[...] = cols[name]
            if validate and not np.isfinite(dst).all():
                bad = np.flatnonzero(~np.isfinite(dst))
                raise PlyError(
                    path, f"property {name!r} ({fname}) has {bad.size} non-finite value(s) (NaN/Inf); "
                    f"first at vertex {bad[0]} (use validate=False to load anyway)",
                )  # fmt: skip
    t = {f: torch.from_numpy(a).to(device) for f, a in out.items()}
    return GaussianSet(t["means"], t["quats"], t["log_scales"], t["opacity_logits"], t["sh"])


def _read_binary(h: PlyHeader) -> Mapping[str, np.ndarray]:
    props = tuple((name, ptype, False) for name, ptype in h.properties)
    dtype = _row_dtype(_Element("vertex", h.vertex_count, props), h.format)
    need = h.vertex_count * dtype.itemsize  # already checked against the file size by read_ply_header
    with open_regular(h.path, "a .ply file", error=lambda p: PlyError(h.path, p)) as f:
        f.seek(h.header_size + h.skip)
        buf = f.read(need)
    if len(buf) != need:
        raise PlyError(h.path, f"truncated: expected {need} bytes of vertex data, read {len(buf)}")
    return np.frombuffer(buf, dtype=dtype, count=h.vertex_count)


def _read_ascii(h: PlyHeader, pmap: list[tuple[str, str, tuple[int, ...]]]) -> Mapping[str, np.ndarray]:
    """One line per element row (like plyfile); values parsed as float64, then rounded to float32.

    Streamed in chunks of :data:`ASCII_CHUNK_ROWS` rows; a value longer than :data:`MAX_ASCII_TOKEN`
    characters or a line longer than ``width`` such values can fill is refused with the line's number, so
    memory stays at the float32 table plus one chunk whatever the file holds.
    """
    n, width = h.vertex_count, len(h.properties)
    max_line = width * (MAX_ASCII_TOKEN + 16) + 64
    table = np.empty((n, width), np.float32)
    with open_regular(h.path, "a .ply file", error=lambda p: PlyError(h.path, p)) as f:
        line_no = f.read(h.header_size).count(b"\n")  # lines so far (the header's)
        for _ in range(h.skip):  # rows of elements before 'vertex'
            line_no += 1
            line = f.readline(MAX_OTHER_LINE + 1)
            if len(line) > MAX_OTHER_LINE:
                raise PlyError(h.path, f"line {line_no}: longer than {MAX_OTHER_LINE:,} bytes")
        for start in range(0, n, ASCII_CHUNK_ROWS):
            rows = min(ASCII_CHUNK_ROWS, n - start)
            tokens: list[bytes] = []
            for i in range(rows):
                line_no += 1
                line = f.readline(max_line + 1)
                if not line:
                    raise PlyError(h.path, f"truncated: {start + i} of {n} vertex lines present")
                if len(line) > max_line:
                    raise PlyError(h.path, f"line {line_no} (vertex {start + i}): longer than {max_line:,} "
                                           f"bytes, which {width} values cannot fill")
                row = line.split()
                if len(row) != width:
                    raise PlyError(h.path, f"line {line_no} (vertex {start + i}) has {len(row)} values, "
                                           f"expected {width}")
                tokens += row
            first = line_no - rows + 1
            longest = max(range(len(tokens)), key=lambda k: len(tokens[k]))
            if len(tokens[longest]) > MAX_ASCII_TOKEN:
                raise PlyError(h.path, f"line {first + longest // width}: a value of "
                                       f"{len(tokens[longest]):,} characters (at most {MAX_ASCII_TOKEN} are "
                                       "accepted)")
            try:
                values = np.array(tokens, dtype=f"S{MAX_ASCII_TOKEN}").astype(np.float64)
            except ValueError:
                bad = next(k for k, t in enumerate(tokens) if not _is_number(t))
                name = h.properties[bad % width][0]
                raise PlyError(h.path, f"line {first + bad // width}: vertex property {name!r} has a value "
                                       f"that is not a number ({tokens[bad][:20]!r})") from None
            with np.errstate(all="ignore"):  # float64 -> float32 overflow becomes inf, reported by validate
                table[start:start + rows] = values.reshape(rows, width)
    column = {name: j for j, (name, _) in enumerate(h.properties)}
    return {name: table[:, column[name]] for name, _, _ in pmap}


def _is_number(token: bytes) -> bool:
    try:
        np.array([token]).astype(np.float64)
    except ValueError:
        return False
    return True
