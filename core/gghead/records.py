"""A GGHead checkpoint's records in upstream's terms: the module tree flattened into upstream's ``state_dict``
names, and the mapping of those names onto :class:`~core.gghead.generator.GGHeadGenerator`'s.

    backbone.mapping.embed.*                  -> mapping.embed.*
    backbone.mapping.fc{i}.*                  -> mapping.layers.{i}.*
    backbone.mapping.w_avg                    -> mapping.w_avg
    backbone.synthesis.b{R}.{const,conv0,conv1,torgb,resample_filter}...
                                              -> synthesis_network.blocks.{log2 R - 2}....
    _zero_conv_position.*                     -> position_conv.*
    _uv_grid, _uv_position_map, _flame_vertices -> uv_grid, uv_position_map, template_positions
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch

from core.gghead.config import GGHeadConfig
from core.legacy_pickle import LegacyPickleError, ModuleRecord, PersistentRecord

MAX_DEPTH = 32
_FIXED = {"_uv_grid": "uv_grid", "_uv_position_map": "uv_position_map", "_flame_vertices": "template_positions",
          "_zero_conv_position.weight": "position_conv.weight", "_zero_conv_position.bias": "position_conv.bias",
          "backbone.mapping.embed.weight": "mapping.embed.weight",
          "backbone.mapping.embed.bias": "mapping.embed.bias", "backbone.mapping.w_avg": "mapping.w_avg"}
_RE_FC = re.compile(r"backbone\.mapping\.fc(\d+)\.(weight|bias)")
_RE_SYN = re.compile(r"backbone\.synthesis\.b(\d+)\.(.+)")
_BLOCK_LEAVES = {"const", "resample_filter"} | {
    f"{layer}.{leaf}" for layer in ("conv0", "conv1") for leaf in
    ("affine.weight", "affine.bias", "weight", "bias", "noise_const", "noise_strength", "resample_filter")} | {
    f"torgb.{leaf}" for leaf in ("affine.weight", "affine.bias", "weight", "bias")}


def upstream_to_ours(name: str) -> str | None:
    """Upstream ``GGHeadModel.state_dict()`` name -> ours, or None for a name our generator does not use.

    Examples: ``backbone.mapping.fc1.bias -> mapping.layers.1.bias``,
    ``backbone.synthesis.b8.conv0.affine.weight -> synthesis_network.blocks.1.conv0.affine.weight``."""
    if name in _FIXED:
        return _FIXED[name]
    if m := _RE_FC.fullmatch(name):
        return f"mapping.layers.{m[1]}.{m[2]}"
    if (m := _RE_SYN.fullmatch(name)) and m[2] in _BLOCK_LEAVES:
        res = int(m[1])
        if res >= 4 and res & (res - 1) == 0:
            return f"synthesis_network.blocks.{int(math.log2(res)) - 2}.{m[2]}"
    return None


def ours_to_upstream(config: GGHeadConfig) -> dict[str, str]:
    """Our state-dict name -> upstream name, for every tensor ``GGHeadGenerator(config)`` may have."""
    out = {v: k for k, v in _FIXED.items()}
    out.update({f"mapping.layers.{i}.{leaf}": f"backbone.mapping.fc{i}.{leaf}"
                for i in range(config.mapping_layers) for leaf in ("weight", "bias")})
    for i, res in enumerate(config.block_resolutions):
        for leaf in _BLOCK_LEAVES:
            out[f"synthesis_network.blocks.{i}.{leaf}"] = f"backbone.synthesis.b{res}.{leaf}"
    return out


def flatten_records(root: Any, source: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Upstream state_dict (persistent parameters and buffers, recursively) and module records by path."""
    tensors: dict[str, torch.Tensor] = {}
    modules: dict[str, Any] = {}
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
    return tensors, modules


def identify(record: Any) -> str:
    name = getattr(record, "class_name", type(record).__name__)
    if "TriPlaneGenerator" in name:
        return "an EG3D tri-plane generator (TriPlaneGenerator)"
    return f"a {name}"


def record_attr(record: Any, name: str, default: Any = None) -> Any:
    if record is None:
        return default
    if name in record.state:
        return record.state[name]
    return getattr(record, "init_kwargs", {}).get(name, default)

