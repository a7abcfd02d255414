"""Load official CGS-GAN ``network-snapshot-*.pkl`` files into our :class:`core.generator.Generator`,
without executing anything from the file and without the official repository on ``sys.path``.

The official pickles are StyleGAN3 ``torch_utils.persistence`` pickles; :mod:`core.legacy_pickle` reads them
with a restricted unpickler into inert records (:class:`PersistentRecord` with the embedded module source kept
as text, :class:`ModuleRecord`, plain tensors and numbers) and refuses any global outside the official
format with :class:`UnsafeLegacyPickleError`. This module gives the records their CGS-GAN meaning.

The record tree of ``G_ema`` (else ``G``) is flattened into the official ``state_dict`` names,
the architecture is read from the records (init kwargs, plain attributes, tensor shapes), the release is
recognised (mapping ``num_ws`` 1 = June 2025 single w, else per-block w; the initial anchor log-scale -5 or
-7 found as *text* in the embedded source), a :class:`GeneratorConfig` is built from
:func:`official_preset` plus what the file says, and every official tensor is mapped by
:func:`official_to_ours` onto our state dict with its shape checked. Unknown, missing and mis-shaped
tensors are all listed by name; pickles of other generators (EG3D, StyleGAN2/3, other Gaussian GANs) are
named and refused.

Verified (tests/core/test_legacy_cgsgan.py): a fixture writer re-creates the official format as the notes
describe it (see :mod:`core.legacy_pickle` for what the reading side verifies), for a small and for
the real 512 layout; the 512 name/shape table (379 entries, 61,610,712 parameters) maps completely; a loaded
small generator reproduces a reference forward written in the test from the official formulas in the
notes (mapping, PE, blocks with June and per-block w, upsampling, heads, placement rules) to 5e-5 in
float64 (the normalisation runs in float32 on our side, as officially) and the mapping to 1e-10.

Not verified (no real official file is available offline): the exact wording of the embedded sources that
the release detection searches (unrecognised text falls back to -5 with a warning); and numerical parity
with the official generator itself: the reference forward re-states the notes, not the upstream code.
(What is not verified about the file format itself is listed in :mod:`core.legacy_pickle`.)
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch

from core.generator import LEVELS_BY_RESOLUTION, Generator, GeneratorConfig, official_preset
from core.legacy_pickle import (
    MAX_PICKLE_BYTES,
    LegacyPickleError,
    ModuleRecord,
    PersistentRecord,
    UnsafeLegacyPickleError,
    is_official_pickle,
    read_official_pickle,
)
from core.point_hierarchy import HEAD_FIELDS

__all__ = [
    "LegacyInfo", "LegacyPickleError", "Mapped", "ModuleRecord", "PersistentRecord",
    "UnsafeLegacyPickleError",
    "is_official_pickle", "load_official_pickle", "official_state_to_ours", "official_to_ours",
    "ours_to_official", "read_official_pickle",
]

MAX_DEPTH = 64
INITIAL_LOG_SCALE_DEFAULT = -5.0
INITIAL_LOG_SCALE_CANDIDATES = (-5.0, -7.0)
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


# ---------------------------------------------------------------------------------------------- records


def _flatten(record: Any, source: str) -> tuple[dict[str, torch.Tensor], dict[str, Any], set[str]]:
    """Official state_dict (params then buffers, then children, recursively) and module records by path."""
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

    walk(record, "", 0)
    return tensors, modules, params


def _attr(record: Any, name: str, default: Any = None) -> Any:
    """A plain attribute of a record, else its init kwarg, else ``default``."""
    if record is None:
        return default
    if name in record.state:
        return record.state[name]
    kwargs = getattr(record, "init_kwargs", {})
    return kwargs.get(name, default)


def _identify_other(record: Any) -> str:
    name = getattr(record, "class_name", type(record).__name__)
    src = getattr(record, "module_src", "")
    if name == "TriPlaneGenerator" or "class TriPlaneGenerator" in src:
        family = "an EG3D generator (TriPlaneGenerator)"
    elif name == "Generator" and "SynthesisNetwork" in src:
        family = "a StyleGAN2/StyleGAN3 generator"
    elif "gaussian" in src.lower() or "gaussian" in name.lower():
        family = f"a Gaussian-splatting generator other than CGS-GAN ({name}; e.g. GSGAN)"
    else:
        family = f"a {name}"
    return family


# ---------------------------------------------------------------------------------------------- the loader


@dataclass(frozen=True)
class LegacyInfo:
    """What :func:`load_official_pickle` found and did.

    Attributes:
        path, source_key: the file and the top-level entry loaded (``"G_ema"``, else ``"G"``).
        release: human-readable release guess (June 2025 single w / later per-block w, -7 era).
        resolution, num_ws, ws_layout, initial_anchor_log_scale: as read (log-scale from the embedded
            source text when ``log_scale_from_source``, else the default -5).
        config: the GeneratorConfig built (official_preset(resolution) + ``size_overrides`` + constants).
        size_overrides: architecture fields that differ from ``official_preset(resolution)`` (empty for
            the official architectures).
        dropped: official tensor names not copied, with the reason.
        ignored_entries: top-level entries not used (``D``, ``G``, optimizer states, ...).
        official_parameters / official_buffers: element counts in the official state; loaded_parameters:
            in our generator. fc_layers_checked: official FC layers whose activation and gains matched ours.
        warnings: anything uncertain (release hints that disagree, default log-scale, ...).
    """

    path: str
    source_key: str
    release: str
    resolution: int
    num_ws: int
    ws_layout: str
    initial_anchor_log_scale: float
    log_scale_from_source: bool
    config: GeneratorConfig
    size_overrides: dict[str, Any]
    dropped: dict[str, str]
    ignored_entries: tuple[str, ...]
    official_parameters: int
    official_buffers: int
    loaded_parameters: int
    fc_layers_checked: int
    warnings: tuple[str, ...] = ()
    training_set_kwargs: dict | None = None

    def summary(self) -> str:
        lines = [f"{self.path} [{self.source_key}]: {self.release}",
                 f"  resolution {self.resolution}, num_ws {self.num_ws} ({self.ws_layout}), initial anchor "
                 f"log-scale {self.initial_anchor_log_scale:g} "
                 f"({'from the embedded source' if self.log_scale_from_source else 'default'})",
                 f"  parameters: official {self.official_parameters:,}, loaded {self.loaded_parameters:,}; "
                 f"dropped {len(self.dropped)} tensors; ignored entries: {', '.join(self.ignored_entries)}"]
        if self.size_overrides:
            lines.append(f"  non-standard sizes: {self.size_overrides}")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


_RE_LOG_SCALE = re.compile(r"torch\.tensor\(\s*(-\s*\d+(?:\.\d*)?)")


def _initial_log_scale(src: str) -> tuple[float, bool, str | None]:
    found = {float(v.replace(" ", "")) for v in _RE_LOG_SCALE.findall(src)}
    hits = sorted(v for v in found if v in INITIAL_LOG_SCALE_CANDIDATES)
    if len(hits) == 1:
        return hits[0], True, None
    why = ("both -5 and -7 appear" if hits else "no torch.tensor(-5./-7. constant found")
    return INITIAL_LOG_SCALE_DEFAULT, False, (
        f"initial anchor log-scale not recognised in the embedded point_generator source ({why}); assumed "
        f"{INITIAL_LOG_SCALE_DEFAULT:g} (the June release and later). Pickles of 9c556b5..eb1ee5c used -7: "
        "override with dataclasses.replace(info.config, initial_anchor_log_scale=-7.0) if yours is one")


def _as_int(v: Any, what: str, source: str) -> int:
    if type(v) is bool or not isinstance(v, (int, float)) or v != int(v):
        raise LegacyPickleError(source, f"{what} is {v!r:.60}, expected an integer")
    return int(v)


def _derive_config(tensors: dict[str, torch.Tensor], modules: dict[str, Any], source: str,
                   ) -> tuple[GeneratorConfig, dict[str, Any], dict[str, Any], list[str]]:
    """GeneratorConfig from the records; returns (config, size_overrides, facts, warnings)."""
    warn: list[str] = []
    G, mapping = modules[""], modules.get("mapping_network")
    point_gen, transformer = modules.get("point_gen"), modules.get("point_gen.transformer")
    if mapping is None or point_gen is None or transformer is None:
        missing = [n for n, r in (("mapping_network", mapping), ("point_gen", point_gen),
                                  ("point_gen.transformer", transformer)) if r is None]
        raise LegacyPickleError(source, f"CGSGenerator without {', '.join(missing)}: not a CGS-GAN generator")

    def shape(name: str) -> list[int]:
        if name not in tensors:
            raise LegacyPickleError(source, f"missing tensors: {name} (needed to read the architecture)")
        return list(tensors[name].shape)

    res_candidates = {k: v for k, v in (("img_resolution", G.init_kwargs.get("img_resolution")),
                                         ("resolution", G.state.get("resolution"))) if v is not None}
    if not res_candidates:
        raise LegacyPickleError(source, "CGSGenerator has neither img_resolution nor resolution")
    resolution = _as_int(next(iter(res_candidates.values())), "img_resolution", source)
    if len({int(v) for v in res_candidates.values()}) > 1:
        warn.append(f"resolution attributes disagree: {res_candidates}; using {resolution}")

    num_points, _ = shape("_xyz")
    _, pe_dim, _, pe_res = shape("point_gen.conv_in.const_pe.const_pe")
    width = shape("point_gen.transformer.first_layers.0.attn.c_qkv.weight")[1]
    mlp_hidden = shape("point_gen.transformer.first_layers.0.mlp.c_fc.weight")[0]
    if pe_dim * 2 != width:
        raise LegacyPickleError(source, f"positional encoding width {2 * pe_dim} differs from the "
                                        f"transformer width {width}; not supported")
    heads = _attr(modules.get("point_gen.transformer.first_layers.0.attn"), "heads")
    if heads is None:
        heads = _attr(modules.get("point_gen.transformer.first_layers.0.attn.attention"), "heads")
    if heads is None:
        raise LegacyPickleError(source, "the attention record has no 'heads' attribute")
    heads = _as_int(heads, "heads", source)
    first = transformer.state.get("_modules", {}).get("first_layers")
    n_first_records = len(first.state.get("_modules", {})) if isinstance(first, ModuleRecord) else None
    num_first = _as_int(_attr(transformer, "num_first_layers", n_first_records), "num_first_layers", source)

    levels = 0
    while f"point_gen.upsample_layers.{levels}.subpixel.weight" in tensors:
        levels += 1
    if levels == 0:
        raise LegacyPickleError(source, "missing tensors: point_gen.upsample_layers.0.subpixel.weight")
    channels, acc = [], []
    for i in range(levels):
        c = shape(f"point_gen.gaussians.xyz.{i}.weight")[1]
        out = shape(f"point_gen.upsample_layers.{i}.subpixel.weight")[0]
        if out % c:
            raise LegacyPickleError(source, f"point_gen.upsample_layers.{i}.subpixel.weight has {out} "
                                            f"outputs, not a multiple of the level width {c}")
        channels.append(c)
        acc.append(out // c)
    ratios = [acc[0]] + [acc[i] // acc[i - 1] for i in range(1, levels)]
    if acc[0] != 1 or any(acc[i] != acc[i - 1] * ratios[i] for i in range(1, levels)):
        raise LegacyPickleError(source, f"cumulative upsampling {acc} is not a product of integer ratios")
    n_transformer = _attr(point_gen, "n_transformer")
    if n_transformer is not None and _as_int(n_transformer, "n_transformer", source) != levels:
        raise LegacyPickleError(source, f"point_gen.n_transformer = {n_transformer}, but {levels} levels "
                                        "found")
    stored_ratios = _attr(point_gen, "upsample_ratio")
    if isinstance(stored_ratios, (list, tuple)) and list(stored_ratios[:levels]) != ratios:
        warn.append(f"point_gen.upsample_ratio {list(stored_ratios)} differs from the shapes' {ratios}")

    w_dim, fc0_in = shape("mapping_network.fc0.weight")
    embed_features = shape("mapping_network.embed.bias")[0]
    z_dim = fc0_in - embed_features
    if embed_features != w_dim:
        raise LegacyPickleError(source, f"mapping embed width {embed_features} differs from w_dim {w_dim}")
    mapping_layers = 0
    while f"mapping_network.fc{mapping_layers}.weight" in tensors:
        mapping_layers += 1
    fc0 = modules.get("mapping_network.fc0")
    lr_mul = float(_attr(fc0, "bias_gain", 0.01))
    w_avg_beta = float(_attr(mapping, "w_avg_beta", 0.998))
    num_ws = _as_int(_attr(mapping, "num_ws", 1), "mapping_network.num_ws", source)
    num_blocks = num_first + levels - 1
    if num_ws == 1:
        ws_layout = "single"
    elif num_ws == num_blocks:
        ws_layout = "per_block"
    else:
        raise LegacyPickleError(source, f"mapping_network.num_ws = {num_ws}: neither 1 (June release) nor "
                                        f"the {num_blocks} transformer blocks (per-block release)")

    thr = tensors.get("point_gen.scale_threshold")
    if thr is None or thr.numel() == 0:
        raise LegacyPickleError(source, "missing tensors: point_gen.scale_threshold")
    thr_values = thr.double().flatten().tolist()
    if max(thr_values) - min(thr_values) > 1e-6:
        raise LegacyPickleError(source, f"point_gen.scale_threshold = {thr_values}: per-axis thresholds are "
                                        "not supported (our generator has one value)")
    percent_dense, split_ratio = _attr(point_gen, "percent_dense"), _attr(point_gen, "split_ratio")
    for n, v in (("percent_dense", percent_dense), ("split_ratio", split_ratio)):
        if type(v) is bool or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise LegacyPickleError(source, f"point_gen.{n} is {v!r:.60}, expected a positive number")

    log_scale, from_src, why = _initial_log_scale(point_gen.module_src)
    if why:
        warn.append(why)

    derived = dict(num_points=num_points, width=width, heads=heads, num_first_blocks=num_first,
                   mlp_ratio=mlp_hidden // width, level_channels=tuple(channels),
                   upsample_ratios=tuple(ratios),
                   z_dim=z_dim, w_dim=w_dim, mapping_layers=mapping_layers, mapping_lr_mul=lr_mul,
                   w_avg_beta=w_avg_beta, pe_table_res=pe_res)
    if mlp_hidden % width:
        raise LegacyPickleError(source, f"MLP hidden width {mlp_hidden} is not a multiple of the width "
                                        f"{width}")
    constants = dict(initial_anchor_log_scale=log_scale, official_pe_lookup=True,
                     level0_max_log_scale=thr_values[0], split_min_scale_value=float(percent_dense),
                     split_ratio_value=float(split_ratio))
    try:
        if resolution in LEVELS_BY_RESOLUTION:
            base = official_preset(resolution, ws_layout)
            overrides = {k: v for k, v in derived.items() if getattr(base, k) != v}
            config = dataclasses.replace(base, **overrides, **constants)
        else:
            overrides = dict(derived)
            config = GeneratorConfig(resolution=resolution, ws_layout=ws_layout, **derived, **constants)
    except ValueError as e:
        raise LegacyPickleError(source, f"the architecture read from the file is not supported: {e}"
                                ) from None
    facts = dict(num_ws=num_ws, ws_layout=ws_layout, resolution=resolution, log_scale=log_scale,
                 log_scale_from_source=from_src)
    return config, overrides, facts, warn


def _release(modules: dict[str, Any], facts: dict[str, Any], config: GeneratorConfig,
             ) -> tuple[str, list[str]]:
    """A readable release guess from state values and embedded source text (data only)."""
    warn = []
    per_block = facts["ws_layout"] == "per_block"
    if per_block:
        text = "later release (14a0537 / HEAD): one w per transformer block"
    else:
        text = "June 2025 release family (83af705 .. 9d33784): one w for every block"
    tsrc = getattr(modules.get("point_gen.transformer"), "module_src", "")
    gsrc = getattr(modules.get(""), "module_src", "")
    src_per_block = re.search(r"ws\[\s*:\s*,\s*\w+\s*:\s*\w+\s*\+\s*1", tsrc) is not None
    src_single = re.search(r"num_ws\s*=\s*self\.point_gen\.num_ws\s*\+\s*1", gsrc) is not None
    if (src_per_block and not per_block) or (src_single and per_block):
        kind = "per-block" if src_per_block else "single"
        warn.append(f"the embedded source suggests a {kind}-w release but mapping_network.num_ws = "
                    f"{facts['num_ws']}; the state value was used")
    if facts["log_scale"] == -7.0:
        text += "; initial anchor log-scale -7 (9c556b5 .. eb1ee5c)"
    if "xyz_output_scale" in modules["point_gen"].state:
        text += "; point_gen.xyz_output_scale present (83af705-era PointGenerator)"
    if config.num_levels == 8:
        text += ("; last level width 16 (83af705)" if config.level_channels[7] == 16
                 else "; last level width 8 (9c556b5 or later)")
    return text, warn


def _check_fc_layers(modules: dict[str, Any], model: Generator, config: GeneratorConfig, source: str) -> int:
    """Official FullyConnectedLayer activation / weight_gain / bias_gain must equal ours (values copy 1:1)."""
    checked, problems = 0, []
    n_first, n_levels = config.num_first_blocks, config.num_levels
    for path, rec in modules.items():
        if not isinstance(rec, PersistentRecord) or rec.class_name != "FullyConnectedLayer":
            continue
        if path == "mapping_network.embed":
            continue  # folded into mapping.const (bias * bias_gain)
        m = official_to_ours(path + ".weight", n_first, n_levels)
        if m.kind != "tensor":
            continue
        ours = model.get_submodule(m.ours.rsplit(".", 1)[0])
        act, wg, bg = rec.state.get("activation"), rec.state.get("weight_gain"), rec.state.get("bias_gain")
        if act is not None and act != ours.activation:
            problems.append(f"{path}: activation {act!r}, ours {ours.activation!r}")
        if wg is not None and not math.isclose(float(wg), ours.weight_gain, rel_tol=1e-6):
            problems.append(f"{path}: weight_gain {float(wg):.6g}, ours {ours.weight_gain:.6g}")
        if bg is not None and not math.isclose(float(bg), ours.lr_mul, rel_tol=1e-6):
            problems.append(f"{path}: bias_gain {float(bg):.6g}, ours {ours.lr_mul:.6g}")
        checked += 1
    if problems:
        raise LegacyPickleError(source, f"layer conventions differ from ours: {_fmt(problems)}")
    return checked


def load_official_pickle(path: str | os.PathLike, device: torch.device | str = "cpu", *,
                         max_bytes: int = MAX_PICKLE_BYTES) -> tuple[Generator, LegacyInfo]:
    """Load ``G_ema`` (else ``G``) of an official CGS-GAN snapshot into our :class:`Generator` (eval mode,
    on ``device``), executing nothing from the file. See the module docstring.

    Raises:
        UnsafeLegacyPickleError: a global outside the official format (e.g. ``posix.system``); nothing ran.
        LegacyPickleError: not a CGS-GAN generator (EG3D, StyleGAN, ... are named), corrupt, or tensors that
            do not fit (every unknown / missing / mis-shaped tensor listed by its official name).
    """
    src = os.fspath(path)
    top = read_official_pickle(path, max_bytes=max_bytes)
    if isinstance(top, PersistentRecord):
        top = {"G_ema": top}
    if not isinstance(top, dict):
        raise LegacyPickleError(src, f"the pickle holds a {type(top).__name__}, not an official snapshot "
                                     "dict")
    key = "G_ema" if "G_ema" in top else "G" if "G" in top else None
    if key is None:
        raise LegacyPickleError(src, f"no generator in the snapshot (entries: {sorted(map(str, top))[:20]})")
    G = top[key]
    if not isinstance(G, PersistentRecord) or G.class_name != "CGSGenerator":
        raise LegacyPickleError(src, (
            f"{key} is {_identify_other(G)}, not CGS-GAN's CGSGenerator: not supported (only official "
            "CGS-GAN generator pickles can be loaded)"))
    tensors, modules, params = _flatten(G, src)
    config, overrides, facts, warn = _derive_config(tensors, modules, src)
    release, more = _release(modules, facts, config)
    warn += more
    gain = float(_attr(modules.get("mapping_network.embed"), "bias_gain", 1.0))
    state, dropped = official_state_to_ours(tensors, config, embed_bias_gain=gain, source=src)
    fc_checked = _check_fc_layers(modules, _meta_generator(config), config, src)
    with torch.device(device):  # built for real, not to_empty(): non-persistent buffers need their values
        model = Generator(config)
    model.load_state_dict(state, strict=True)
    model.eval()
    tsk = top.get("training_set_kwargs")
    info = LegacyInfo(
        path=src, source_key=key, release=release, resolution=facts["resolution"], num_ws=facts["num_ws"],
        ws_layout=facts["ws_layout"], initial_anchor_log_scale=facts["log_scale"],
        log_scale_from_source=facts["log_scale_from_source"], config=config, size_overrides=overrides,
        dropped=dropped, ignored_entries=tuple(str(k) for k in top if k != key),
        official_parameters=sum(t.numel() for n, t in tensors.items() if n in params),
        official_buffers=sum(t.numel() for n, t in tensors.items() if n not in params),
        loaded_parameters=sum(p.numel() for p in model.parameters()), fc_layers_checked=fc_checked,
        warnings=tuple(warn), training_set_kwargs=dict(tsk) if isinstance(tsk, dict) else None)
    return model, info
