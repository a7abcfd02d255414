"""Snapshots on disk: a :class:`core.checkpoint.Snapshot` as safetensors + JSON manifest (``core.tensor_files``).

Tensor names: ``<module>/<state-dict key>`` for the modules (``G_ema/mapping.fc0.weight``), and
``optimizers/...`` / ``training/...`` (their path in the tree) for tensors inside the optimizer states and the
training dict. The manifest (JSON, stored in the file's metadata or the index)::

    {"format": "splathead", "format_version": 2,      # version 1 was the data-only pickle (core.snapshot_pickle)
     "kind": "generator" | "training",
     "generator_config": {...},                        # GeneratorConfig.to_dict(), plain JSON
     "modules": ["G_ema"] | ["G", "G_ema", "D"],       # which <module>/ prefixes hold state dicts
     "optimizers": {"G": TREE, "D": TREE},             # optimizer.state_dict() as a TREE
     "training": TREE,                                 # options, progress, RNG states, ...
     "metadata": {...}}                                # created, code and torch versions, notes

A TREE is JSON in which ``{"$tensor": name}`` stands for a tensor of the file, ``{"$tuple": [...]}`` for a
tuple, ``{"$dict": [[key, value], ...]}`` for a dict with int keys (or keys starting with ``$``) and
``{"$float": "nan" | "inf" | "-inf"}`` for non-finite floats; everything else is plain JSON. Every tensor of
the file is accounted for exactly once; anything else is refused.

Files record no device: tensors load onto ``map_location``. :func:`load_snapshot` also reads the format-1
``.pkl`` files (read-only).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from core.checkpoint import KINDS, CheckpointVersionError, CorruptCheckpointError, Snapshot
from core.tensor_file_reader import TensorFile, TensorInfo, open_tensor_file, sniff
from core.tensor_files import write_tensor_file

FORMAT = "splathead"
FORMAT_VERSION = 2
TREE_ROOTS = ("optimizers", "training")
MAX_DEPTH = 64


# ---------------------------------------------------------------------------------------------- trees


def _encode(obj: Any, path: str, tensors: dict[str, torch.Tensor] | None, depth: int = 0) -> Any:
    """JSON for ``obj``; tensors go into ``tensors`` under their path (None: tensors are not allowed)."""
    if depth > MAX_DEPTH:
        raise ValueError(f"{path}: nested deeper than {MAX_DEPTH} levels (or contains a cycle)")
    if obj is None or type(obj) in (bool, int, str):
        return obj
    if type(obj) is float:
        return obj if math.isfinite(obj) else {"$float": str(obj)}
    if isinstance(obj, torch.Tensor):
        if tensors is None:
            raise TypeError(f"{path}: tensors are not allowed here")
        if path in tensors:
            raise ValueError(f"{path}: two values map to the same tensor name")
        tensors[path] = obj
        return {"$tensor": path}
    if isinstance(obj, dict):
        if all(type(k) is str and not k.startswith("$") for k in obj):
            return {k: _encode(v, f"{path}/{k}", tensors, depth + 1) for k, v in obj.items()}
        bad = next((k for k in obj if type(k) not in (str, int)), None)
        if bad is not None:
            raise TypeError(f"{path}: dict key {bad!r} is a {type(bad).__name__}; keys must be str or int")
        return {"$dict": [[k, _encode(v, f"{path}/{k}", tensors, depth + 1)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        items = [_encode(v, f"{path}/{i}", tensors, depth + 1) for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else {"$tuple": items}
    kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
    hint = "; convert it with torch.from_numpy(a), .tolist() or .item()" if kind.startswith("numpy.") else ""
    raise TypeError(f"{path}: a {kind} cannot be stored (allowed: dict, list, tuple, str, int, float, bool, None"
                    f"{', tensors' if tensors is not None else ''}){hint}")


def _decode(obj: Any, path: str, tensor: Callable[[str], Any], depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise ValueError(f"{path}: nested deeper than {MAX_DEPTH} levels")
    if obj is None or type(obj) in (bool, int, float, str):
        return obj
    if isinstance(obj, list):
        return [_decode(v, f"{path}/{i}", tensor, depth + 1) for i, v in enumerate(obj)]
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: unexpected {type(obj).__name__}")
    special = [k for k in obj if k.startswith("$")]
    if not special:
        return {k: _decode(v, f"{path}/{k}", tensor, depth + 1) for k, v in obj.items()}
    if len(obj) != 1:
        raise ValueError(f"{path}: an object mixing ${special[0][1:]} with other keys")
    (key, value), = obj.items()
    if key == "$tensor" and isinstance(value, str):
        return tensor(value)
    if key == "$tuple" and isinstance(value, list):
        return tuple(_decode(v, f"{path}/{i}", tensor, depth + 1) for i, v in enumerate(value))
    if key == "$float" and value in ("nan", "inf", "-inf"):
        return float(value)
    if key == "$dict" and isinstance(value, list):
        out = {}
        for item in value:
            if not (isinstance(item, list) and len(item) == 2 and type(item[0]) in (str, int)):
                raise ValueError(f"{path}: $dict items are [key, value] pairs with str or int keys")
            if item[0] in out:
                raise ValueError(f"{path}: key {item[0]!r} appears twice")
            out[item[0]] = _decode(item[1], f"{path}/{item[0]}", tensor, depth + 1)
        return out
    raise ValueError(f"{path}: unknown or malformed {key!r}")


def _plain(obj: Any, what: str) -> Any:
    """Plain JSON (tuples become lists); non-finite floats and tensors are refused."""
    if obj is None or type(obj) in (bool, int, str):
        return obj
    if type(obj) is float:
        if not math.isfinite(obj):
            raise ValueError(f"{what}: non-finite float {obj}")
        return obj
    if isinstance(obj, dict):
        if not all(type(k) is str for k in obj):
            raise TypeError(f"{what}: keys must be str")
        return {k: _plain(v, f"{what}/{k}") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v, f"{what}/{i}") for i, v in enumerate(obj)]
    raise TypeError(f"{what}: a {type(obj).__name__} cannot be stored here (plain JSON values only)")


# ---------------------------------------------------------------------------------------------- saving


def encode_snapshot(snapshot: Snapshot) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(tensors by name, manifest)`` of ``snapshot`` (see the module docstring); nothing is written."""
    if not isinstance(snapshot, Snapshot):
        raise TypeError(f"expected a Snapshot, got {type(snapshot).__name__}")
    tensors: dict[str, torch.Tensor] = {}
    for name, sd in snapshot.modules.items():
        if name in TREE_ROOTS:
            raise ValueError(f"module name {name!r} is reserved")
        for key, t in sd.items():
            tensors[f"{name}/{key}"] = t
    trees = {root: _encode(getattr(snapshot, root), root, tensors) for root in TREE_ROOTS}
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "kind": snapshot.kind,
        "generator_config": _plain(snapshot.generator_config, "generator_config"),
        "modules": list(snapshot.modules), **trees,
        "metadata": _plain(snapshot.metadata, "metadata"),
    }
    return tensors, manifest


def save_snapshot(path: str | os.PathLike, snapshot: Snapshot, *, max_part_bytes: int | None = None) -> Path:
    """Write ``snapshot`` to ``path`` (``NAME.safetensors``) atomically; returns the file to open again:
    ``path``, or ``NAME.safetensors.index.json`` when it was split into parts of at most ``max_part_bytes``.

    Every value is checked before the file system is touched (``TypeError``/``ValueError`` name the path of
    the first bad value). ``OSError`` (ENOSPC, ...) leaves nothing of this write and an older file intact.
    """
    tensors, manifest = encode_snapshot(snapshot)
    return write_tensor_file(path, tensors, manifest, max_part_bytes=max_part_bytes)


# ---------------------------------------------------------------------------------------------- loading


@dataclass(frozen=True, eq=False)
class SnapshotFile:
    """A snapshot file whose headers and manifest were checked; no tensor data has been read yet.

    Attributes:
        file: the checked headers (``file.tensors``: dtype and shape of every tensor).
        kind, generator_config, modules, metadata: from the manifest.
    """

    file: TensorFile
    kind: str
    generator_config: dict[str, Any]
    modules: tuple[str, ...]
    metadata: dict[str, Any]

    @property
    def path(self) -> Path:
        return self.file.path

    @property
    def generator_module(self) -> str:
        """``"G_ema"`` when present, else ``"G"``."""
        for name in ("G_ema", "G"):
            if name in self.modules:
                return name
        raise CorruptCheckpointError(self.path, f"no generator weights (modules: {list(self.modules)})")

    def module_table(self, name: str) -> dict[str, TensorInfo]:
        """``{state-dict key: TensorInfo}`` of module ``name`` (headers only)."""
        prefix = name + "/"
        return {k[len(prefix):]: v for k, v in self.file.tensors.items() if k.startswith(prefix)}

    def check_module(self, name: str, expected: dict[str, tuple[tuple[int, ...], torch.dtype]]) -> None:
        """Refuse (CorruptCheckpointError) unless module ``name`` has exactly the keys of ``expected``, each
        with the expected shape and a dtype that converts to the expected one (any float to float)."""
        table = self.module_table(name)
        missing, extra = sorted(set(expected) - set(table)), sorted(set(table) - set(expected))
        if missing or extra:
            raise CorruptCheckpointError(self.path, (
                f"{name} does not fit its config: missing {missing[:5]}{' ...' if len(missing) > 5 else ''}, "
                f"unexpected {extra[:5]}{' ...' if len(extra) > 5 else ''}"))
        for key, (shape, dtype) in expected.items():
            info = table[key]
            if info.shape != tuple(shape):
                raise CorruptCheckpointError(self.path, (
                    f"{name}/{key} has shape {list(info.shape)} in the file, {list(shape)} in the config"))
            if info.torch_dtype.is_floating_point != dtype.is_floating_point or (
                    info.torch_dtype == torch.bool) != (dtype == torch.bool):
                raise CorruptCheckpointError(self.path, f"{name}/{key} is {info.dtype}, expected {dtype}")

    def peek(self, root: str) -> Any:
        """The tree ``root`` (``"optimizers"`` or ``"training"``) with :class:`TensorInfo` in place of tensors
        (headers only), e.g. to check optimizer state shapes before reading."""
        return _decode(self._trees[root], root, lambda name: self.file.tensors[name])

    def read(self, modules: list[str] | None = None, trees: bool = True,
             map_location: torch.device | str = "cpu") -> Snapshot:
        """Read the tensors of ``modules`` (default: all) and, with ``trees``, the optimizer states and the
        training dict; returns the :class:`Snapshot`."""
        modules = list(self.modules) if modules is None else modules
        names = [f"{m}/{k}" for m in modules for k in self.module_table(m)]
        if trees:
            names += [n for n in self.file.tensors if n.split("/", 1)[0] in TREE_ROOTS]
        data = self.file.read(names, device=map_location)
        decoded = {root: _decode(self._trees[root], root, data.__getitem__) if trees else {}
                   for root in TREE_ROOTS}
        return Snapshot(kind=self.kind, generator_config=self.generator_config,
                        modules={m: {k: data[f"{m}/{k}"] for k in self.module_table(m)} for m in modules},
                        optimizers=decoded["optimizers"], training=decoded["training"], metadata=self.metadata)

    @property
    def _trees(self) -> dict[str, Any]:
        return self.file.manifest


def open_snapshot(path: str | os.PathLike) -> SnapshotFile:
    """Check the headers and the manifest of a snapshot in our safetensors layout (no tensor is read).

    Raises FileNotFoundError / IsADirectoryError, CheckpointVersionError (a newer format) or
    CorruptCheckpointError (anything else that is wrong, with the reason).
    """
    tf = open_tensor_file(path)
    m = tf.manifest

    def bad(problem: str) -> CorruptCheckpointError:
        return CorruptCheckpointError(tf.path, problem)

    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise bad(f"its manifest is not a {FORMAT!r} manifest")
    version = m.get("format_version")
    if type(version) is not int or version < 2:
        raise bad(f"format_version {version!r} in a safetensors manifest (expected {FORMAT_VERSION})")
    if version > FORMAT_VERSION:
        raise CheckpointVersionError(tf.path, (
            f"written by a newer version of splathead (format_version {version}; this code reads up to "
            f"{FORMAT_VERSION}): update the code"))
    expected_keys = {"format", "format_version", "kind", "generator_config", "modules", *TREE_ROOTS, "metadata"}
    if set(m) != expected_keys:
        raise bad(f"malformed manifest: missing {sorted(expected_keys - set(m))}, unexpected "
                  f"{sorted(set(m) - expected_keys)[:5]}")
    if m["kind"] not in KINDS:
        raise bad(f"kind is {m['kind']!r}, not one of {KINDS}")
    if not isinstance(m["generator_config"], dict) or not isinstance(m["metadata"], dict):
        raise bad("generator_config and metadata must be JSON objects")
    modules = m["modules"]
    if (not isinstance(modules, list) or not all(isinstance(x, str) and x and "/" not in x for x in modules)
            or len(set(modules)) != len(modules) or set(modules) & set(TREE_ROOTS)):
        raise bad(f"modules must be distinct names, got {str(modules)[:200]}")
    if m["kind"] == "generator" and not ({"G_ema", "G"} & set(modules)):
        raise bad(f"a generator file needs module G_ema or G, has {modules}")
    used: list[str] = []
    try:
        for root in TREE_ROOTS:
            _decode(m[root], root, lambda name: used.append(name))
    except ValueError as exc:
        raise bad(f"malformed manifest: {exc}") from None
    owners = {name.split("/", 1)[0] for name in tf.tensors}
    unknown = sorted(owners - set(modules) - set(TREE_ROOTS))
    tree_names = [n for n in tf.tensors if n.split("/", 1)[0] in TREE_ROOTS]
    if unknown:
        raise bad(f"tensors outside the manifest's modules: prefixes {unknown[:5]}")
    if sorted(used) != sorted(tree_names) or len(set(used)) != len(used):
        stray = sorted(set(tree_names) ^ set(used))[:5]
        raise bad(f"the manifest's trees and the file's tensors do not match one to one: {stray}")
    if not isinstance(m["optimizers"], dict) or (not isinstance(m["training"], dict)):
        raise bad("optimizers and training must be JSON objects")
    return SnapshotFile(tf, m["kind"], m["generator_config"], tuple(modules), m["metadata"])


def load_snapshot(path: str | os.PathLike, map_location: torch.device | str = "cpu") -> Snapshot:
    """Read a whole snapshot: our safetensors layout (single file or index), or a format-1 ``.pkl``.

    Raises FileNotFoundError / IsADirectoryError and the ``core.checkpoint`` errors (no code from a file runs).
    """
    kind = _kind(path)
    if kind == "pickle":
        from core.snapshot_pickle import load_pickle_snapshot

        return load_pickle_snapshot(path, map_location)
    return open_snapshot(path).read(map_location=map_location)


def _kind(path: str | os.PathLike) -> str:
    import stat

    st = os.stat(path)
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(21, "Is a directory (expected a snapshot file)", os.fspath(path))
    if not stat.S_ISREG(st.st_mode):
        raise CorruptCheckpointError(path, "not a regular file")
    if st.st_size == 0:
        raise CorruptCheckpointError(path, "empty file (not a splathead snapshot)")
    return sniff(path)
