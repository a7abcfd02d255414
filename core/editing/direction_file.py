"""The directions file beside a model: ``model.safetensors`` -> ``model.directions.npz``.

A NumPy ``.npz`` (zip of ``.npy`` arrays, read with ``allow_pickle=False``: loading runs no code):

    header     0-d unicode array: JSON {"format": "splathead-directions", "format_version": 1,
               "model_sha256": hex SHA-256 of the model file, "model_file": its base name (informative),
               "num_ws", "w_dim", "num_samples" (of the statistics),
               "directions": [{"name", "kind", "scale", "slots": [start, stop] | null, "note"}, ...],
               "measurements": [{"name", "quantity", "box": {"center": [3], "half_size": [3]}}, ...]}
    vectors    [K, w_dim] float64, unit rows, in the order of header["directions"]
    w_mean     [w_dim] float64, mean of generated w (psi = 1)
    w_cov      [w_dim, w_dim] float64, their covariance (defines the slider unit of new directions)

Loading reads the header first and checks its format, the model's SHA-256 (refusing a file made for another
model: :class:`DirectionsMismatchError`) and the arrays' declared shapes before reading any array
(:mod:`core.npz_file`); anything unreadable raises :class:`DirectionsFileError` naming the file.
"""

from __future__ import annotations

import io
import json
import os

import numpy as np

from core.atomic_file import atomic_write
from core.editing.directions import Direction, DirectionSet, WStatistics
from core.editing.fingerprint import file_sha256, sidecar_path
from core.editing.measured_spec import Box, Measurement
from core.npz_file import NpzReader

FORMAT = "splathead-directions"
FORMAT_VERSION = 1
SUFFIX = ".directions.npz"
MAX_HEADER_CHARS = 1 << 20  # the JSON header
MAX_DIRECTIONS = 10_000
MAX_W_DIM = 4096  # as core.generator_limits


class DirectionsFileError(ValueError):
    """A directions file that cannot be read; the message starts with the path."""


class DirectionsMismatchError(DirectionsFileError):
    """A directions file made for a different model file (SHA-256 differs)."""


def directions_path(model_path: str | os.PathLike) -> str:
    """Where the directions of ``model_path`` live: ``model.safetensors`` -> ``model.directions.npz``."""
    return sidecar_path(model_path, SUFFIX)


def save_directions(directions: DirectionSet, path: str | os.PathLike, model_file: str = "") -> None:
    """Write ``directions`` to ``path`` atomically (see the module docstring for the format)."""
    header = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "model_sha256": directions.model_sha256,
        "model_file": os.path.basename(model_file), "num_ws": directions.num_ws, "w_dim": directions.w_dim,
        "num_samples": directions.stats.num_samples,
        "directions": [{"name": d.name, "kind": d.kind, "scale": d.scale,
                        "slots": list(d.slots) if d.slots else None, "note": d.note} for d in directions.directions],
        "measurements": [{"name": m.name, "quantity": m.quantity,
                          "box": {"center": list(m.box.center), "half_size": list(m.box.half_size)}}
                         for m in directions.measurements],
    }
    vectors = (np.stack([d.vector for d in directions.directions]) if directions.directions
               else np.zeros((0, directions.w_dim)))
    buf = io.BytesIO()
    np.savez(buf, header=np.array(json.dumps(header)), vectors=vectors, w_mean=directions.stats.mean,
             w_cov=directions.stats.cov)
    with atomic_write(path) as f:
        f.write(buf.getvalue())


def load_directions(path: str | os.PathLike, model_path: str | os.PathLike | None = None,
                    model_sha256: str | None = None) -> DirectionSet:
    """Read a directions file; with ``model_path`` (or its ``model_sha256``) refuse one made for another model.

    Raises:
        FileNotFoundError: no such file.
        DirectionsMismatchError: the file records a different model SHA-256.
        DirectionsFileError: not a directions file, corrupt, or of a newer format version.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such directions file")
    expected = model_sha256 or (file_sha256(model_path) if model_path is not None else None)

    def error(problem: str) -> DirectionsFileError:
        return DirectionsFileError(f"{path}: {problem}")

    # Header first, then the model hash, then the declared shapes: no array is read before all three pass.
    with NpzReader(path, "a directions file (.directions.npz)", error=error) as z:
        missing = [k for k in ("header", "vectors", "w_mean", "w_cov") if k not in z.arrays]
        if missing:
            raise error(f"not a directions file: no {', '.join(missing)} array")
        header = _read_header(z, error)
        if expected is not None and header.get("model_sha256") != expected:
            raise DirectionsMismatchError(
                f"{path}: made for another model file ({header.get('model_file') or '?'}, SHA-256 "
                f"{str(header.get('model_sha256'))[:12]}...), not this one ({expected[:12]}...); recompute "
                f"it with python -m training.directions --model <model>")
        entries, w_dim = header.get("directions"), header.get("w_dim")
        if not isinstance(entries, list) or len(entries) > MAX_DIRECTIONS:
            raise error(f"corrupt directions file: 'directions' must be a list of at most {MAX_DIRECTIONS}")
        if type(w_dim) is not int or not 1 <= w_dim <= MAX_W_DIM:
            raise error(f"corrupt directions file: w_dim {w_dim!r:.40} is not in [1, {MAX_W_DIM}]")
        want = {"vectors": (len(entries), w_dim), "w_mean": (w_dim,), "w_cov": (w_dim, w_dim)}
        for name, shape in want.items():
            info = z.arrays[name]
            if info.shape != shape or info.dtype.kind != "f":
                raise error(f"corrupt directions file: {name} is {info.dtype} {list(info.shape)}, expected "
                            f"float {list(shape)}")
        arrays = {name: z.read(name) for name in want}
    try:
        stats = WStatistics(arrays["w_mean"], arrays["w_cov"], int(header["num_samples"]))
        dirs = tuple(Direction(e["name"], e["kind"], arrays["vectors"][i], float(e["scale"]),
                               tuple(e["slots"]) if e["slots"] else None, str(e.get("note", "")))
                     for i, e in enumerate(entries))
        meas = tuple(Measurement(m["name"], m["quantity"], Box(tuple(m["box"]["center"]), tuple(m["box"]["half_size"])))
                     for m in header.get("measurements", []))
        return DirectionSet(str(header["model_sha256"]), int(header["num_ws"]), stats, dirs, meas)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise DirectionsFileError(f"{path}: corrupt directions file ({type(exc).__name__}: {exc})") from None


def _read_header(z: NpzReader, error) -> dict:
    """The JSON header (a 0-d text array of at most :data:`MAX_HEADER_CHARS`), format and version checked."""
    info = z.arrays["header"]
    if info.shape != () or info.dtype.kind != "U" or info.dtype.itemsize > 4 * MAX_HEADER_CHARS:
        raise error(f"not a directions file: header is {info.dtype} {list(info.shape)}, expected a JSON text "
                    f"of at most {MAX_HEADER_CHARS:,} characters")
    try:
        header = json.loads(str(z.read("header")))
    except ValueError as exc:
        raise error(f"not a readable directions file (header: {exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise error(f"not a splathead directions file (header format "
                    f"{header.get('format') if isinstance(header, dict) else None!r})")
    if header.get("format_version") != FORMAT_VERSION:
        raise error(f"format version {header.get('format_version')!r}; this code reads version "
                    f"{FORMAT_VERSION} (recompute with python -m training.directions)")
    return header


def find_directions(model_path: str | os.PathLike) -> DirectionSet | None:
    """The directions saved beside ``model_path``, checked against its SHA-256; None when there is no file.

    For the viewer's automatic load: mismatched or corrupt files raise (show the message, offer to recompute).
    """
    path = directions_path(model_path)
    if not os.path.exists(path):
        return None
    return load_directions(path, model_path=model_path)
