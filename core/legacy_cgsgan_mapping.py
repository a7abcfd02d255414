"""Official CGS-GAN ``state_dict`` names <-> ours, and the conversion of an official generator state into
our :class:`core.generator.Generator` state, every name and shape checked (part of :mod:`core.legacy_cgsgan`).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch

from core.generator import Generator, GeneratorConfig
from core.legacy_pickle import LegacyPickleError
from core.point_hierarchy import HEAD_FIELDS

__all__ = ["Mapped", "official_state_to_ours", "official_to_ours", "ours_to_official"]

_STATE = "<official state>"


# ---------------------------------------------------------------------------------------------- name mapping


@dataclass(frozen=True)
class Mapped:
    """Where one official ``state_dict`` entry goes.

    Attributes:
        kind: ``"tensor"`` (copied into ``ours``), ``"config"`` (a value read into the GeneratorConfig or
            checked against our fixed constants), ``"dropped"`` (not used by the official forward either), or
            ``"unknown"`` (not an official CGS-GAN name: loading refuses it).
        ours: our ``state_dict`` name for kind ``"tensor"``, else None.
        rows: ``(start, stop)`` rows inside our fused 14-output head for the official per-field heads.
        note: why, for kinds other than ``"tensor"``.
    """

    kind: Literal["tensor", "config", "dropped", "unknown"]
    ours: str | None = None
    rows: tuple[int, int] | None = None
    note: str = ""


_BLOCK_PARTS = {
    "attn.c_qkv": "attn.qkv", "attn.c_proj": "attn.proj", "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2",
    "ln_1.gamma": "norm1.gamma", "ln_1.beta": "norm1.beta", "ln_2.gamma": "norm2.gamma",
    "ln_2.beta": "norm2.beta", "ls_1": "scale1", "ls_2": "scale2",
}
_BLOCK_PARTS_INV = {v: k for k, v in _BLOCK_PARTS.items()}
_FIXED = {
    "_xyz": "xyz_const",
    "point_gen.conv_in.learnable_pe.ffm.linear.weight": "encoding.fourier.weight",
    "point_gen.conv_in.learnable_pe.ffm.linear.bias": "encoding.fourier.bias",
    "point_gen.conv_in.const_pe.const_pe": "encoding.table",
    "mapping_network.w_avg": "mapping.w_avg",
    "mapping_network.embed.bias": "mapping.const",  # times the embed layer's bias_gain (1)
}
_FIXED_INV = {v: k for k, v in _FIXED.items()}
_CONFIG = {
    "point_gen.scale_threshold": "read into GeneratorConfig.level0_max_log_scale",
    "point_gen.rotation_init": "initial parent rotation; checked to be (1, 0, 0, 0)",
    "point_gen.color_init": "initial parent colour; checked to be 0",
    "point_gen.opacity_init": "initial parent opacity logit; checked to be logit(0.1)",
}
_DROPPED = {
    "dataset_label_std": "label statistics added by the training loop; not used by the generator",
    "mapping_network.embed.weight": "label-embedding weight: CGS-GAN always embeds an all-zero label, so "
                                    "only the bias (our mapping.const) reaches the output",
    "point_gen.scale_init": "computed by the official code but never read by its forward",
}
_HEAD_ROWS = {}
_row = 0
for _name, _size, _, _ in HEAD_FIELDS:
    _HEAD_ROWS[_name] = (_row, _row + _size)
    _row += _size
del _row, _name, _size

_RE_BLOCK = re.compile(r"point_gen\.transformer\.(first_layers|resblocks)\.(\d+)\.(.+)\.(weight|bias)")
_RE_UPSAMPLE = re.compile(r"point_gen\.upsample_layers\.(\d+)\.(subpixel|res_fc)\.(weight|bias)")
_RE_HEAD = re.compile(
    r"point_gen\.(anchors|gaussians)\.(xyz|scale|rotation|color|opacity)\.(\d+)\.(weight|bias)")
_RE_MAPPING_FC = re.compile(r"mapping_network\.fc(\d+)\.(weight|bias)")


def official_to_ours(name: str, num_first_blocks: int = 6, num_levels: int | None = None) -> Mapped:
    """Map an official ``G_ema.state_dict()`` name onto ours (see :class:`Mapped`).

    ``num_first_blocks`` (official ``num_first_layers``, 6) places ``resblocks.j`` at our block ``6 + j``;
    ``num_levels`` marks the last level's anchor heads (dead in the official code) as dropped and names of
    levels beyond it as unknown. Examples::

        point_gen.transformer.resblocks.2.ln_1.gamma.weight -> transformer.blocks.8.norm1.gamma.weight
        point_gen.anchors.scale.1.weight                     -> anchor_heads.1.fc.weight rows 3:6
    """
    if name in _FIXED:
        return Mapped("tensor", _FIXED[name])
    if name in _CONFIG:
        return Mapped("config", note=_CONFIG[name])
    if name in _DROPPED:
        return Mapped("dropped", note=_DROPPED[name])
    if m := _RE_BLOCK.fullmatch(name):
        group, j, part, leaf = m[1], int(m[2]), m[3], m[4]
        if part not in _BLOCK_PARTS or (group == "first_layers" and j >= num_first_blocks):
            return Mapped("unknown", note="not a tensor of an official transformer block")
        k = j if group == "first_layers" else num_first_blocks + j
        return Mapped("tensor", f"transformer.blocks.{k}.{_BLOCK_PARTS[part]}.{leaf}")
    if m := _RE_UPSAMPLE.fullmatch(name):
        i = int(m[1])
        if num_levels is not None and i >= num_levels:
            return Mapped("unknown", note=f"level {i} beyond the {num_levels} levels")
        return Mapped("tensor", f"upsample.{i}.{'subpixel' if m[2] == 'subpixel' else 'residual'}.{m[3]}")
    if m := _RE_HEAD.fullmatch(name):
        kind, fname, i, leaf = m[1], m[2], int(m[3]), m[4]
        if num_levels is not None and i >= num_levels:
            return Mapped("unknown", note=f"level {i} beyond the {num_levels} levels")
        if kind == "anchors" and num_levels is not None and i == num_levels - 1:
            return Mapped("dropped", note="last-level anchor head: the official forward never uses it")
        prefix = "anchor_heads" if kind == "anchors" else "gaussian_heads"
        return Mapped("tensor", f"{prefix}.{i}.fc.{leaf}", rows=_HEAD_ROWS[fname])
    if m := _RE_MAPPING_FC.fullmatch(name):
        return Mapped("tensor", f"mapping.layers.{int(m[1])}.{m[2]}")
    return Mapped("unknown", note="not an official CGS-GAN generator tensor")


def ours_to_official(name: str, num_first_blocks: int = 6) -> list[str]:
    """The official name(s) that fill our ``state_dict`` entry ``name`` (five for a fused head, in row
    order); the inverse of :func:`official_to_ours`. Empty for a name we do not know."""
    if name in _FIXED_INV:
        return [_FIXED_INV[name]]
    if m := re.fullmatch(r"transformer\.blocks\.(\d+)\.(.+)\.(weight|bias)", name):
        k, part = int(m[1]), m[2]
        if part not in _BLOCK_PARTS_INV:
            return []
        group = f"first_layers.{k}" if k < num_first_blocks else f"resblocks.{k - num_first_blocks}"
        return [f"point_gen.transformer.{group}.{_BLOCK_PARTS_INV[part]}.{m[3]}"]
    if m := re.fullmatch(r"upsample\.(\d+)\.(subpixel|residual)\.(weight|bias)", name):
        return [f"point_gen.upsample_layers.{m[1]}.{'subpixel' if m[2] == 'subpixel' else 'res_fc'}.{m[3]}"]
    if m := re.fullmatch(r"(anchor|gaussian)_heads\.(\d+)\.fc\.(weight|bias)", name):
        kind = "anchors" if m[1] == "anchor" else "gaussians"
        return [f"point_gen.{kind}.{f}.{m[2]}.{m[3]}" for f, _, _, _ in HEAD_FIELDS]
    if m := re.fullmatch(r"mapping\.layers\.(\d+)\.(weight|bias)", name):
        return [f"mapping_network.fc{m[1]}.{m[2]}"]
    return []


# ---------------------------------------------------------------------------------------------- conversion


def _meta_generator(config: GeneratorConfig) -> Generator:
    with torch.device("meta"):
        return Generator(config)


def _fmt(problems: list[str], limit: int = 40) -> str:
    more = f"; ... and {len(problems) - limit} more" if len(problems) > limit else ""
    return "; ".join(problems[:limit]) + more


def official_state_to_ours(state: Mapping[str, torch.Tensor], config: GeneratorConfig, *,
                           embed_bias_gain: float = 1.0, source: str | os.PathLike = _STATE,
                           ) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Official ``G_ema`` state dict (official names) -> our ``Generator(config)`` state dict.

    Every shape is checked against ``Generator(config)`` (built on the meta device); unknown names, missing
    tensors (by their official names) and mis-shaped tensors are all listed in one
    :class:`LegacyPickleError`. The initial-parent buffers are checked against our fixed constants and
    ``scale_threshold`` against ``config.scale_threshold`` (values are skipped for meta tensors, so a
    shapes-only state can be checked). Returns ``(our_state_dict, dropped)``, ``dropped`` mapping each
    official name that was not copied to the reason.
    """
    expected = {k: v for k, v in _meta_generator(config).state_dict().items()}
    n_first, n_levels = config.num_first_blocks, config.num_levels
    problems: dict[str, list[str]] = {"unknown": [], "shape": [], "dtype": [], "missing": [], "value": []}
    dropped: dict[str, str] = {}
    plan: list[tuple[str, str, tuple[int, int] | None]] = []
    covered: dict[str, set[tuple[int, int] | None]] = {}
    for name, t in state.items():
        if not isinstance(t, torch.Tensor):
            problems["unknown"].append(f"{name} (a {type(t).__name__}, not a tensor)")
            continue
        m = official_to_ours(name, n_first, n_levels)
        if m.kind in ("dropped", "config"):
            if m.kind == "dropped":
                dropped[name] = m.note
            continue
        if m.kind == "unknown" or m.ours not in expected:
            lacks = f" (-> {m.ours}, which this architecture lacks)" if m.ours else ""
            problems["unknown"].append(name + lacks)
            continue
        want = list(expected[m.ours].shape)
        if m.rows is not None:
            want[0] = m.rows[1] - m.rows[0]
        if list(t.shape) != want:
            problems["shape"].append(f"{name} has shape {list(t.shape)}, expected {want} (for our {m.ours})")
            continue
        if not t.is_floating_point():
            problems["dtype"].append(f"{name} is {t.dtype}, expected a floating-point tensor")
            continue
        plan.append((name, m.ours, m.rows))
        covered.setdefault(m.ours, set()).add(m.rows)
    for ours in expected:
        wanted = ours_to_official(ours, n_first)
        have = covered.get(ours, set())
        if ours.startswith(("anchor_heads.", "gaussian_heads.")):
            missing = [w for w, (f, _, _, _) in zip(wanted, HEAD_FIELDS) if _HEAD_ROWS[f] not in have]
        else:
            missing = [] if have else (wanted or [f"<the tensor for our {ours}>"])
        problems["missing"] += [m for m in missing if m not in state]  # present but refused: listed above
    for name in _CONFIG:
        if name not in state:
            problems["missing"].append(name)
    problems["value"] += _check_constant_buffers(state, config)
    if any(problems.values()):
        titles = {"unknown": "unexpected tensors (not in the official CGS-GAN generator)",
                  "shape": "wrong shapes", "dtype": "wrong dtypes", "missing": "missing tensors",
                  "value": "values our generator cannot represent"}
        text = " | ".join(f"{titles[k]}: {_fmt(v)}" for k, v in problems.items() if v)
        raise LegacyPickleError(source, f"the generator state does not fit {_describe(config)}: {text}")

    ours: dict[str, torch.Tensor] = {}
    for name, target, rows in plan:
        t = state[name]
        ref = expected[target]
        if rows is None:
            value = t.detach().to(dtype=ref.dtype)
            if name == "mapping_network.embed.bias" and embed_bias_gain != 1:
                value = value * embed_bias_gain
            ours[target] = value
        else:
            if target not in ours:
                ours[target] = torch.empty(ref.shape, dtype=ref.dtype, device=t.device)
            ours[target][rows[0]:rows[1]] = t.detach()
    return ours, dropped


def _check_constant_buffers(state: Mapping[str, Any], config: GeneratorConfig) -> list[str]:
    """Our initial parent is fixed: rotation (1,0,0,0), colour 0, opacity logit(0.1); the level-0 scale cap is
    ``config.scale_threshold``. Refuse official values that differ (they would change the output)."""
    want = {"point_gen.rotation_init": [1.0, 0.0, 0.0, 0.0], "point_gen.color_init": [0.0, 0.0, 0.0],
            "point_gen.opacity_init": [math.log(0.1 / 0.9)],
            "point_gen.scale_threshold": [config.scale_threshold] * 3}
    problems = []
    for name, values in want.items():
        t = state.get(name)
        if not isinstance(t, torch.Tensor):
            continue
        if list(t.shape) != [len(values)]:
            problems.append(f"{name} has shape {list(t.shape)}, expected {[len(values)]}")
        elif not t.is_meta and not torch.allclose(t.detach().double().cpu(), torch.tensor(values,
                                                  dtype=torch.float64), atol=1e-5, rtol=0):
            problems.append(f"{name} = {t.tolist()}, expected {[round(v, 6) for v in values]}")
    return problems


def _describe(config: GeneratorConfig) -> str:
    return (f"a CGS-GAN generator with {config.num_levels} levels (channels {list(config.level_channels)}), "
            f"{config.num_blocks} blocks, width {config.width}, {config.num_points} points")
