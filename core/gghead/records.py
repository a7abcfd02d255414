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

from core.gghead.config import GGHeadConfig

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

