"""The architecture of an official CGS-GAN generator, read from its pickled records (part of
:mod:`core.legacy_cgsgan`): the record tree flattened into official ``state_dict`` names, a
:class:`GeneratorConfig` derived from init kwargs, plain attributes and tensor shapes, the release recognised
from state values and embedded source text (data only), and the layer conventions compared with ours.

Every size read from the file comes from a tensor whose bytes are in the file (:mod:`core.legacy_pickle`
refuses views that repeat storage elements); empty shapes are refused here, and the config is validated
against :mod:`core.generator_limits` before anything is built.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import torch

from core.generator import LEVELS_BY_RESOLUTION, Generator, GeneratorConfig, official_preset
from core.legacy_cgsgan_mapping import _fmt, official_to_ours
from core.legacy_pickle import LegacyPickleError, ModuleRecord, PersistentRecord

INITIAL_LOG_SCALE_DEFAULT = -5.0
INITIAL_LOG_SCALE_CANDIDATES = (-5.0, -7.0)


# ---------------------------------------------------------------------------------------------- records


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


# ---------------------------------------------------------------------------------------------- architecture


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


def _as_float(v: Any, what: str, source: str) -> float:
    if type(v) is bool or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise LegacyPickleError(source, f"{what} is {v!r:.60}, expected a finite number")
    return float(v)


def _as_int(v: Any, what: str, source: str) -> int:
    if type(v) is bool or not isinstance(v, (int, float)) or not math.isfinite(v) or v != int(v):
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

    def shape(name: str, ndim: int) -> list[int]:
        if name not in tensors:
            raise LegacyPickleError(source, f"missing tensors: {name} (needed to read the architecture)")
        if tensors[name].dim() != ndim or tensors[name].numel() == 0:  # no size without bytes behind it
            raise LegacyPickleError(source, f"{name} has shape {list(tensors[name].shape)}; expected a "
                                            f"non-empty {ndim}-d tensor")
        return list(tensors[name].shape)

    res_candidates = {k: v for k, v in (("img_resolution", G.init_kwargs.get("img_resolution")),
                                         ("resolution", G.state.get("resolution"))) if v is not None}
    if not res_candidates:
        raise LegacyPickleError(source, "CGSGenerator has neither img_resolution nor resolution")
    resolution = _as_int(next(iter(res_candidates.values())), "img_resolution", source)
    if len({int(v) for v in res_candidates.values()}) > 1:
        warn.append(f"resolution attributes disagree: {res_candidates}; using {resolution}")

    num_points, _ = shape("_xyz", 2)
    _, pe_dim, _, pe_res = shape("point_gen.conv_in.const_pe.const_pe", 4)
    width = shape("point_gen.transformer.first_layers.0.attn.c_qkv.weight", 2)[1]
    mlp_hidden = shape("point_gen.transformer.first_layers.0.mlp.c_fc.weight", 2)[0]
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
        c = shape(f"point_gen.gaussians.xyz.{i}.weight", 2)[1]
        out = shape(f"point_gen.upsample_layers.{i}.subpixel.weight", 2)[0]
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

    w_dim, fc0_in = shape("mapping_network.fc0.weight", 2)
    embed_features = shape("mapping_network.embed.bias", 1)[0]
    z_dim = fc0_in - embed_features
    if embed_features != w_dim:
        raise LegacyPickleError(source, f"mapping embed width {embed_features} differs from w_dim {w_dim}")
    mapping_layers = 0
    while f"mapping_network.fc{mapping_layers}.weight" in tensors:
        mapping_layers += 1
    fc0 = modules.get("mapping_network.fc0")
    lr_mul = _as_float(_attr(fc0, "bias_gain", 0.01), "mapping_network.fc0.bias_gain", source)
    w_avg_beta = _as_float(_attr(mapping, "w_avg_beta", 0.998), "mapping_network.w_avg_beta", source)
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
        wg = None if wg is None else _as_float(wg, f"{path}.weight_gain", source)
        bg = None if bg is None else _as_float(bg, f"{path}.bias_gain", source)
        if wg is not None and not math.isclose(wg, ours.weight_gain, rel_tol=1e-6):
            problems.append(f"{path}: weight_gain {wg:.6g}, ours {ours.weight_gain:.6g}")
        if bg is not None and not math.isclose(bg, ours.lr_mul, rel_tol=1e-6):
            problems.append(f"{path}: bias_gain {bg:.6g}, ours {ours.lr_mul:.6g}")
        checked += 1
    if problems:
        raise LegacyPickleError(source, f"layer conventions differ from ours: {_fmt(problems)}")
    return checked
