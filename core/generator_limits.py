"""Sane ranges for every :class:`core.generator.GeneratorConfig` field, and the size of the generator a config
describes, computed from the config alone (nothing is built).

A config comes from files (our snapshots, official pickles, JSON): a 566-byte file whose config says width
4096 or ``mapping_layers`` 10**6 would otherwise make the loader build a multi-GB network, stall for minutes
or fail with a raw ``ZeroDivisionError`` before the weights are even compared. :func:`config_problems` checks
types first, then each field against :data:`INT_RANGES` / :data:`FLOAT_RANGES`, then the totals
(:data:`MAX_PARAMETERS`, :data:`MAX_GAUSSIANS`); each problem names its field.

The ranges are generous bounds around the published architectures (CGS-GAN 64..2048: width 512, 512
points, 3..8 levels, 41-79 M parameters, at most 1.03 M Gaussians), not a list of supported sizes.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["FLOAT_RANGES", "INT_RANGES", "MAX_GAUSSIANS", "MAX_LEVELS", "MAX_PARAMETERS", "config_problems",
           "parameter_count", "state_bytes"]

INT_RANGES: dict[str, tuple[int, int]] = {  # field: (min, max), inclusive
    "resolution": (32, 4096),
    "num_points": (1, 16384),
    "width": (2, 2048),
    "heads": (1, 64),
    "num_first_blocks": (1, 64),
    "mlp_ratio": (1, 16),
    "z_dim": (1, 4096),
    "w_dim": (1, 4096),
    "mapping_layers": (1, 16),
    "pe_table_res": (1, 4096),
}
TUPLE_RANGES: dict[str, tuple[int, int]] = {  # every entry of these int tuples
    "level_channels": (1, 4096),
    "upsample_ratios": (1, 16),
}
MAX_LEVELS = 10
FLOAT_RANGES: dict[str, tuple[float, float]] = {  # field: (min, max), inclusive, finite; None where noted
    "mapping_lr_mul": (1e-6, 1e3),
    "w_avg_beta": (0.0, 1.0),
    "initial_anchor_log_scale": (-50.0, 10.0),
    "level0_max_log_scale": (-50.0, 10.0),  # or None
    "split_min_scale_value": (1e-12, 1e3),  # or None
    "split_ratio_value": (1e-6, 1e6),  # or None
}
OPTIONAL = frozenset({"level0_max_log_scale", "split_min_scale_value", "split_ratio_value"})
CHOICES: dict[str, tuple[Any, ...]] = {"ws_layout": ("single", "per_block"),
                                       "official_pe_lookup": (False, True)}
MAX_PARAMETERS = 400_000_000  # 1.6 GB in float32; the largest published CGS-GAN (2048) has 79.5 M
MAX_GAUSSIANS = 1 << 24  # 16.8 M per scene; CGS-GAN 2048 has 1.03 M
_HEAD_SIZE = 14  # xyz 3, scale 3, rotation 4, colour 3, opacity 1 (core.point_hierarchy.HEAD_FIELDS)


def _linear(i: int, o: int) -> int:
    return i * o + o


def parameter_count(c: Any) -> int:
    """Trainable parameters of ``Generator(c)`` (equals ``count_parameters(Generator(c))``; a test keeps the
    two in step). ``c`` must have passed the type and range checks."""
    blocks = c.num_first_blocks + len(c.level_channels) - 1
    W, wd = c.width, c.w_dim
    mapping = wd + _linear(c.z_dim + wd, wd) + (c.mapping_layers - 1) * _linear(wd, wd)
    encoding = _linear(3, W // 2) + 3 * (W // 2) * c.pe_table_res
    block = (4 * _linear(wd, W) + 2 * _linear(wd, W)  # two adaptive norms (gamma, beta), two layer scales
             + _linear(W, 3 * W) + _linear(W, W) + _linear(W, c.mlp_ratio * W) + _linear(c.mlp_ratio * W, W))
    ppt = [math.prod(c.upsample_ratios[: i + 1]) for i in range(len(c.upsample_ratios))]
    upsample = sum(_linear(W, ch * r) + (_linear(W, ch) if ch != W else 0)
                   for ch, r in zip(c.level_channels, ppt))
    heads = sum(_linear(ch, _HEAD_SIZE) for ch in c.level_channels[:-1]) + sum(
        _linear(ch, _HEAD_SIZE) for ch in c.level_channels)
    return mapping + c.num_points * 3 + encoding + blocks * block + upsample + heads


def state_bytes(c: Any) -> int:
    """Bytes of ``Generator(c)``'s parameters and buffers in float32 (what loading it needs at least)."""
    return 4 * (parameter_count(c) + c.w_dim + _HEAD_SIZE)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def config_problems(c: Any) -> list[str]:
    """Every problem with a config's fields (empty: valid), each naming its field. Checks types, then
    ranges, then the relations between fields, then the totals; later stages run only when the earlier ones
    passed (so no check ever divides by zero or multiplies absurd sizes)."""
    problems = []
    for name, (lo, hi) in INT_RANGES.items():
        v = getattr(c, name)
        if not _is_int(v):
            problems.append(f"{name} must be an integer, got {type(v).__name__} {v!r:.40}")
        elif not lo <= v <= hi:
            problems.append(f"{name} {v} is out of range [{lo}, {hi}]")
    for name, (lo, hi) in TUPLE_RANGES.items():
        v = getattr(c, name)
        if not isinstance(v, tuple) or not all(_is_int(x) for x in v):
            problems.append(f"{name} must be a list of integers, got {v!r:.60}")
        elif not 1 <= len(v) <= MAX_LEVELS:
            problems.append(f"{name} has {len(v)} levels; 1 to {MAX_LEVELS} are supported")
        elif not all(lo <= x <= hi for x in v):
            problems.append(f"{name} {list(v)} has entries out of range [{lo}, {hi}]")
    for name, (lo, hi) in FLOAT_RANGES.items():
        v = getattr(c, name)
        if v is None and name in OPTIONAL:
            continue
        if not _is_number(v):
            problems.append(f"{name} must be a number, got {type(v).__name__} {v!r:.40}")
        elif not (math.isfinite(v) and lo <= v <= hi):
            problems.append(f"{name} {v!r} is out of range [{lo:g}, {hi:g}]")
    for name, allowed in CHOICES.items():
        v = getattr(c, name)
        if type(v) not in {type(a) for a in allowed} or v not in allowed:
            problems.append(f"{name} must be one of {', '.join(map(repr, allowed))}, got {v!r:.40}")
    if problems:
        return problems
    if c.resolution & (c.resolution - 1):
        problems.append(f"resolution must be a power of two, got {c.resolution}")
    if c.width % 2 or c.width % c.heads:
        problems.append(f"width {c.width} must be even and divisible by heads {c.heads}")
    if len(c.level_channels) != len(c.upsample_ratios):
        problems.append(f"level_channels ({len(c.level_channels)} levels) and upsample_ratios "
                        f"({len(c.upsample_ratios)}) need the same length")
    elif c.upsample_ratios[0] != 1:
        problems.append("the first level's upsample ratio (upsample_ratios[0]) must be 1")
    if problems:
        return problems
    ratios = c.upsample_ratios
    gaussians = c.num_points * sum(math.prod(ratios[: i + 1]) for i in range(len(ratios)))
    if gaussians > MAX_GAUSSIANS:
        problems.append(f"num_points {c.num_points} x upsample_ratios {list(c.upsample_ratios)} give "
                        f"{gaussians:,} Gaussians, over the limit of {MAX_GAUSSIANS:,}")
    params = parameter_count(c)
    if params > MAX_PARAMETERS:
        problems.append(f"the config describes {params:,} parameters ({4 * params / 1e9:.1f} GB), over the "
                        f"limit of {MAX_PARAMETERS:,} (width {c.width}, {c.num_first_blocks} first blocks, "
                        f"mlp_ratio {c.mlp_ratio}, level_channels {list(c.level_channels)})")
    return problems
