"""A pickled ``torch.nn.Module`` tree, read as data (:mod:`core.legacy_pickle`'s records), flattened into what
``state_dict()`` would give: the one walker behind the official CGS-GAN and GGHead loaders.

Order and names follow ``nn.Module.state_dict``: a module's parameters, then its persistent buffers, then its
children, recursively, names joined by dots. Every step is checked (types, names, depth, cycles) and a
failure raises :class:`core.legacy_pickle.LegacyPickleError` naming the path in the tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from core.legacy_pickle import LegacyPickleError, ModuleRecord, PersistentRecord

MAX_DEPTH = 64  # nesting of modules (the official trees are under 10 deep)


@dataclass(frozen=True, eq=False)
class ModuleTree:
    """Attributes:
        tensors: state_dict name -> tensor (parameters and persistent buffers), in state_dict order.
        modules: dotted path -> module record ("" is the root).
        params: the names in ``tensors`` that are parameters (the rest are buffers).
    """

    tensors: dict[str, torch.Tensor]
    modules: dict[str, Any]
    params: frozenset[str]


def flatten_module_tree(root: Any, source: str) -> ModuleTree:
    """The state_dict and module records of the record tree ``root`` (``source``: the file, for messages)."""
    tensors: dict[str, torch.Tensor] = {}
    modules: dict[str, Any] = {}
    params: set[str] = set()
    active: set[int] = set()

    def walk(node: Any, prefix: str, depth: int) -> None:
        path = prefix[:-1] or "<root>"
        if depth > MAX_DEPTH or id(node) in active:
            raise LegacyPickleError(source, f"module tree too deep or cyclic at {path}")
        if not isinstance(node, (PersistentRecord, ModuleRecord)):
            raise LegacyPickleError(source, f"{path} is a {type(node).__name__}, not a module")
        active.add(id(node))
        modules[prefix[:-1]] = node
        st = node.state
        skip = st.get("_non_persistent_buffers_set") or set()
        for group in ("_parameters", "_buffers"):
            entries = st.get(group, {})
            if not isinstance(entries, dict):
                raise LegacyPickleError(source, f"{path}.{group} is a {type(entries).__name__}, not a dict")
            for key, t in entries.items():
                if t is None or (group == "_buffers" and key in skip):
                    continue
                if type(key) is not str or not isinstance(t, torch.Tensor):
                    raise LegacyPickleError(source, f"{prefix}{key!s:.60} in {group} is not a named tensor")
                tensors[prefix + key] = t
                if group == "_parameters":
                    params.add(prefix + key)
        children = st.get("_modules", {})
        if not isinstance(children, dict):
            raise LegacyPickleError(source, f"{path}._modules is a {type(children).__name__}, not a dict")
        for key, child in children.items():
            if child is None:
                continue
            if type(key) is not str or not key or "." in key:
                raise LegacyPickleError(source, f"{path} has a child named {key!r:.60}")
            walk(child, f"{prefix}{key}.", depth + 1)
        active.discard(id(node))

    walk(root, "", 0)
    return ModuleTree(tensors, modules, frozenset(params))
