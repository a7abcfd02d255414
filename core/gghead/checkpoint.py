"""Load GGHead ``checkpoint-<kimg>.pkl`` files into :class:`~core.gghead.generator.GGHeadGenerator`, executing
nothing from the file and without gghead / eg3d / elias / 3DGS installed.

1. :func:`core.legacy_pickle.read_official_pickle` with :data:`~core.gghead.pickle_format.EXTRA_GLOBALS` turns the
   file into inert records (see :mod:`core.gghead.pickle_format`).
2. ``G_ema`` (else ``G``) must be a ``GGHeadModel`` record. Its module tree is flattened into upstream's
   ``state_dict`` names (``backbone.synthesis.b64.conv0.affine.weight``, ``_uv_grid``, ...).
3. The configuration: the network sizes from the records and tensor shapes; the decoding settings from the
   pickled ``_config`` (an elias dataclass) - a value stored in the file wins, an absent one (older pickles lack
   later fields) takes upstream's class default (:data:`~core.gghead.config.UPSTREAM_DEFAULTS`), and every
   default used is listed in :class:`GGHeadLoadInfo`. The channel order is the model's ``_uv_attribute_names``.
4. Every tensor is mapped onto our names (:func:`upstream_to_ours`) with its shape checked; the template (UV
   grid, UV position map, template positions) comes from the checkpoint's buffers.

Refused with a message: other generators (an EG3D tri-plane model of the same fork is named), settings the
upstream forward cannot run either (no position offsets, ``no_exp_scale_activation``), a progressive-growing
synthesis (``pretrained_plane_resolution``), non-"skip" architectures, unexpected filters, missing or
mis-shaped tensors (all listed by their upstream names).
"""

from __future__ import annotations

import io
import math
import os
import pickletools
import re
from dataclasses import dataclass, field
from typing import Any

import torch

from core.gghead.config import UPSTREAM_DEFAULTS, GGHeadConfig
from core.gghead.generator import GGHeadGenerator
from core.gghead.pickle_format import EXTRA_GLOBALS, FORMAT_NAME, GGHEAD_MODEL, EnumRecord, ObjectRecord
from core.gghead.stylegan2 import fir_filter_2d
from core.gghead.template import UVTemplate
from core.legacy_pickle import (
    MAX_PICKLE_BYTES,
    LegacyPickleError,
    ModuleRecord,
    PersistentRecord,
    read_official_pickle,
)

MAX_DEPTH = 32
_CKPT_RE = re.compile(r"checkpoint-(\d+)\.pkl$")
_FIXED = {"_uv_grid": "uv_grid", "_uv_position_map": "uv_position_map", "_flame_vertices": "template_positions",
          "_zero_conv_position.weight": "position_conv.weight", "_zero_conv_position.bias": "position_conv.bias",
          "backbone.mapping.embed.weight": "mapping.embed.weight", "backbone.mapping.embed.bias": "mapping.embed.bias",
          "backbone.mapping.w_avg": "mapping.w_avg"}
_RE_FC = re.compile(r"backbone\.mapping\.fc(\d+)\.(weight|bias)")
_RE_SYN = re.compile(r"backbone\.synthesis\.b(\d+)\.(.+)")
_BLOCK_LEAVES = {"const", "resample_filter"} | {
    f"{layer}.{leaf}" for layer in ("conv0", "conv1") for leaf in
    ("affine.weight", "affine.bias", "weight", "bias", "noise_const", "noise_strength", "resample_filter")} | {
    f"torgb.{leaf}" for leaf in ("affine.weight", "affine.bias", "weight", "bias")}

# our GGHeadConfig field -> attribute path in the pickled upstream config
CONFIG_PATHS = {
    "resolution": "img_resolution", "uv_grid_size": "n_uniform_flame_vertices",
    "sh_degree": "gaussian_attribute_config.sh_degree",
    "use_rodriguez_rotation": "gaussian_attribute_config.use_rodriguez_rotation",
    "c_gen_conditioning_zero": "rendering_config.c_gen_conditioning_zero", "c_scale": "rendering_config.c_scale",
    **{k: k for k in ("use_zero_conv_position", "use_align_corners", "interpolation_mode",
                      "use_position_activation", "position_range", "position_attenuation", "scale_offset",
                      "max_scale", "center_scale_activation", "use_rotation_activation", "rotation_attenuation",
                      "normalize_quaternions", "use_color_activation", "color_overshoot", "opacity_overshoot",
                      "clamp_opacity")},
}


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


@dataclass(frozen=True)
class GGHeadLoadInfo:
    """What :func:`load_gghead_checkpoint` found. ``defaults_used``: upstream config attributes absent from the
    file and the default that was used; ``ignored_tensors``: upstream tensors our generator does not use."""

    path: str
    source_key: str
    kimg: int | None
    config: GGHeadConfig
    parameters: int
    defaults_used: dict[str, Any] = field(default_factory=dict)
    ignored_tensors: tuple[str, ...] = ()
    ignored_entries: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def summary(self) -> str:
        c = self.config
        lines = [f"{self.path} [{self.source_key}]: GGHead"
                 + (f", {self.kimg:,} kimg" if self.kimg is not None else ""),
                 f"  {c.num_gaussians:,} Gaussians from a {c.plane_resolution}^2 UV map, SH degree {c.sh_degree}, "
                 f"{c.num_ws} ws, images {c.resolution}^2, {self.parameters:,} parameters",
                 f"  ignored entries: {', '.join(self.ignored_entries) or 'none'}"]
        if self.defaults_used:
            lines.append("  absent from the file, upstream defaults used: "
                         + ", ".join(f"{k}={v!r}" for k, v in sorted(self.defaults_used.items())))
        if self.ignored_tensors:
            lines.append(f"  unused tensors: {', '.join(self.ignored_tensors[:20])}"
                         + (" ..." if len(self.ignored_tensors) > 20 else ""))
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- detection


def is_gghead_pickle(path: str | os.PathLike, *, max_bytes: int = 1 << 20, max_ops: int = 20_000) -> bool:
    """Cheap check on the first opcodes (never executed): does the pickle reference ``gghead.*`` modules or the
    EG3D fork's ``eg3d.torch_utils.persistence``? The loader then says whether it is a GGHead generator."""
    try:
        with open(path, "rb") as f:
            raw = f.read(max_bytes)
    except OSError:
        return False
    try:
        for n, (op, arg, _) in enumerate(pickletools.genops(io.BytesIO(raw))):
            if n >= max_ops or op.name == "STOP":
                break
            if isinstance(arg, str) and (arg.startswith("gghead.") or arg == "eg3d.torch_utils.persistence"
                                         or arg.startswith("eg3d.torch_utils.persistence ")):
                return True
    except Exception:  # truncated by max_bytes, or not a pickle
        pass
    return False


# ---------------------------------------------------------------------------------------------- records


def _flatten(root: Any, source: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
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


def _identify(record: Any) -> str:
    name = getattr(record, "class_name", type(record).__name__)
    if "TriPlaneGenerator" in name:
        return "an EG3D tri-plane generator (TriPlaneGenerator)"
    return f"a {name}"


class _ConfigReader:
    """Attribute lookup in the pickled upstream config: the stored value, else upstream's class default."""

    def __init__(self, record: Any, source: str) -> None:
        if not isinstance(record, ObjectRecord) or not record.class_name.endswith(".GGHeadConfig"):
            raise LegacyPickleError(source, f"GGHeadModel._config is {_identify(record)}, not a GGHeadConfig")
        self.record, self.source = record, source
        self.defaults_used: dict[str, Any] = {}

    def get(self, path: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        node: Any = self.record
        for part in path.split("."):
            state = node.state if isinstance(node, ObjectRecord) else None
            if state is None or part not in state:
                value = UPSTREAM_DEFAULTS.get(path, default)
                self.defaults_used[path] = value
                return value
            node = state[part]
        ok = isinstance(node, kind) and not (isinstance(node, bool) and bool not in _as_tuple(kind))
        if not ok:
            raise LegacyPickleError(self.source, f"config attribute {path} is {node!r:.60}, expected "
                                                 f"{' or '.join(k.__name__ for k in _as_tuple(kind))}")
        return node


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _state(record: Any, name: str, default: Any = None) -> Any:
    if record is None:
        return default
    if name in record.state:
        return record.state[name]
    return getattr(record, "init_kwargs", {}).get(name, default)


# ---------------------------------------------------------------------------------------------- config


def _derive_config(model: ObjectRecord, tensors: dict[str, torch.Tensor], modules: dict[str, Any], source: str,
                   ) -> tuple[GGHeadConfig, dict[str, Any], list[str]]:
    warn: list[str] = []
    cfg = _ConfigReader(model.state.get("_config"), source)
    mapping, synthesis = modules.get("backbone.mapping"), modules.get("backbone.synthesis")
    if mapping is None or synthesis is None:
        raise LegacyPickleError(source, "GGHeadModel without backbone.mapping / backbone.synthesis")

    def shape(name: str) -> list[int]:
        if name not in tensors:
            raise LegacyPickleError(source, f"missing tensors: {name} (needed to read the architecture)")
        return list(tensors[name].shape)

    # ---- network sizes, from the records and the tensors
    num_layers = 0
    while f"backbone.mapping.fc{num_layers}.weight" in tensors:
        num_layers += 1
    if num_layers == 0:
        raise LegacyPickleError(source, "missing tensors: backbone.mapping.fc0.weight")
    w_dim = shape(f"backbone.mapping.fc{num_layers - 1}.weight")[0]
    c_dim = shape("backbone.mapping.embed.weight")[1] if "backbone.mapping.embed.weight" in tensors else 0
    embed = shape("backbone.mapping.embed.weight")[0] if c_dim else 0
    z_dim = shape("backbone.mapping.fc0.weight")[1] - embed
    if embed not in (0, w_dim) or any(shape(f"backbone.mapping.fc{i}.weight")[0] != w_dim for i in range(num_layers)):
        raise LegacyPickleError(source, "mapping layers narrower or wider than w_dim are not supported")
    for k, v in (("z_dim", z_dim), ("c_dim", c_dim), ("w_dim", w_dim), ("num_layers", num_layers)):
        stored = _state(mapping, k)
        if stored is not None and stored != v:
            raise LegacyPickleError(source, f"backbone.mapping.{k} = {stored!r}, but the tensors say {v}")
    fc0 = modules.get("backbone.mapping.fc0")
    lr_mul = float(_state(fc0, "bias_gain", 0.01))
    if _state(fc0, "activation", "lrelu") != "lrelu":
        raise LegacyPickleError(source, f"mapping activation {_state(fc0, 'activation')!r}; only 'lrelu' is supported")
    w_avg_beta = _state(mapping, "w_avg_beta", 0.998)

    plane = _state(synthesis, "img_resolution")
    if not isinstance(plane, int) or plane < 4 or plane & (plane - 1):
        raise LegacyPickleError(source, f"backbone.synthesis.img_resolution is {plane!r}, not a power of two")
    if _state(synthesis, "pretrained_plane_resolution") is not None:
        raise LegacyPickleError(source, "a progressive-growing synthesis network (pretrained_plane_resolution "
                                        "set) is not supported")
    res_list = [2 ** i for i in range(2, int(math.log2(plane)) + 1)]
    conv_clamps, noise, kernel = set(), set(), set()
    for res in res_list:
        block = modules.get(f"backbone.synthesis.b{res}")
        if block is None:
            raise LegacyPickleError(source, f"missing module backbone.synthesis.b{res}")
        arch = _state(block, "architecture", "skip")
        if arch != "skip":
            raise LegacyPickleError(source, f"synthesis architecture {arch!r}; only 'skip' (GGHead's) is supported")
        if _state(block, "use_fp16", False):
            warn.append(f"backbone.synthesis.b{res} ran in float16 upstream on CUDA; it runs in float32 here")
        for layer in ("conv0", "conv1"):
            rec = modules.get(f"backbone.synthesis.b{res}.{layer}")
            if rec is None:
                continue
            if _state(rec, "activation", "lrelu") != "lrelu":
                raise LegacyPickleError(source, f"backbone.synthesis.b{res}.{layer}: activation "
                                                f"{_state(rec, 'activation')!r}; only 'lrelu' is supported")
            conv_clamps.add(_state(rec, "conv_clamp"))
            noise.add(bool(_state(rec, "use_noise", True)))
            kernel.add(shape(f"backbone.synthesis.b{res}.{layer}.weight")[-1])
    conv_clamps.add(_state(modules.get(f"backbone.synthesis.b{plane}.torgb"), "conv_clamp"))
    if len(conv_clamps) > 1 or len(noise) != 1 or len(kernel) != 1:
        raise LegacyPickleError(source, f"synthesis layers differ in conv_clamp {conv_clamps}, use_noise {noise} "
                                        f"or kernel size {kernel}; not supported")
    for name, t in tensors.items():
        if name.endswith("resample_filter") and not torch.allclose(t.float(), fir_filter_2d(), atol=1e-6):
            raise LegacyPickleError(source, f"{name} is not the [1, 3, 3, 1] low-pass filter; not supported")
    channel_base = cfg.get("synthesis_network_config.channel_base", int, 32768)
    channel_max = cfg.get("synthesis_network_config.channel_max", int, 512)

    # ---- decoding, from the stored config (file wins, else upstream's class default)
    kinds = {bool: bool, float: (int, float), int: int, str: str}
    values = {}
    for ours, path in CONFIG_PATHS.items():
        default = getattr(GGHeadConfig, ours)
        values[ours] = cfg.get(path, kinds[type(default)], UPSTREAM_DEFAULTS.get(path))
    for flag, why in (("disable_position_offsets", "predicts no position offsets"),
                      ("no_exp_scale_activation", "replaces 3DGS's exp() scale activation")):
        if cfg.get(flag, bool):
            raise LegacyPickleError(source, f"the model {why} ({flag}); upstream's forward cannot run that "
                                            "either, so it is not supported")
    if cfg.get("gaussian_attribute_config.n_color_channels", int) != 3:
        raise LegacyPickleError(source, "the model predicts feature channels for a super-resolution network "
                                        "(n_color_channels != 3); not supported")
    n_bg = cfg.get("n_background_channels", int) if cfg.get("use_background_cnn", bool) else 0
    if n_bg:
        warn.append(f"the model's background CNN ({n_bg} channels) is not rendered: heads are shown on the "
                    "viewer's background")
    names = model.state.get("_uv_attribute_names")
    if names is None:
        names = cfg.get("uv_attributes", list, [EnumRecord("POSITION")])
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, EnumRecord) for n in names):
        raise LegacyPickleError(source, f"_uv_attribute_names is {names!r:.100}, not a list of GaussianAttribute")
    uv_attributes = tuple(n.name.lower() for n in names)
    try:
        config = GGHeadConfig(
            z_dim=z_dim, w_dim=w_dim, c_dim=c_dim, mapping_layers=num_layers, mapping_lr_mul=lr_mul,
            w_avg_beta=float(w_avg_beta) if w_avg_beta is not None else 0.998, plane_resolution=plane,
            channel_base=channel_base, channel_max=channel_max, kernel_size=kernel.pop(), use_noise=noise.pop(),
            conv_clamp=conv_clamps.pop(), uv_attributes=uv_attributes, n_background_channels=n_bg,
            **{k: (float(v) if isinstance(getattr(GGHeadConfig, k), float) else v) for k, v in values.items()})
    except ValueError as e:
        raise LegacyPickleError(source, f"the configuration read from the file is not supported: {e}") from None
    n_uv = model.state.get("_n_uv_channels")
    if n_uv is not None and n_uv != config.uv_channels:
        raise LegacyPickleError(source, f"GGHeadModel._n_uv_channels = {n_uv}, but its attributes need "
                                        f"{config.uv_channels} channels")
    img_channels = _state(synthesis, "img_channels")
    if img_channels is not None and img_channels != config.map_channels:
        raise LegacyPickleError(source, f"the synthesis network outputs {img_channels} channels; the decoding "
                                        f"needs {config.map_channels}")
    gm = model.state.get("_gaussian_model")
    max_sh = _state(gm, "max_sh_degree") if isinstance(gm, ObjectRecord) else None
    if max_sh is not None and max_sh != config.sh_degree:
        warn.append(f"_gaussian_model.max_sh_degree = {max_sh}, config sh_degree = {config.sh_degree}; "
                    "the config's was used")
    if config.use_zero_conv_position and "_zero_conv_position.weight" not in tensors:
        raise LegacyPickleError(source, "use_zero_conv_position is set but _zero_conv_position is missing")
    return config, cfg.defaults_used, warn


# ---------------------------------------------------------------------------------------------- loading


def load_gghead_checkpoint(path: str | os.PathLike, device: torch.device | str = "cpu", *,
                           max_bytes: int = MAX_PICKLE_BYTES) -> tuple[GGHeadGenerator, GGHeadLoadInfo]:
    """``G_ema`` (else ``G``) of a GGHead checkpoint as a :class:`GGHeadGenerator` in eval mode on ``device``.

    Raises:
        UnsafeLegacyPickleError: a global outside the GGHead format; nothing ran.
        LegacyPickleError: not a GGHead generator, unsupported settings, corrupt, or tensors that do not fit
            (every missing / mis-shaped one listed by its upstream name).
    """
    src = os.fspath(path)
    top = read_official_pickle(path, max_bytes=max_bytes, extra_globals=EXTRA_GLOBALS, format_name=FORMAT_NAME)
    if isinstance(top, ObjectRecord):
        top = {"G_ema": top}
    if not isinstance(top, dict):
        raise LegacyPickleError(src, f"the pickle holds a {type(top).__name__}, not a GGHead checkpoint dict")
    key = "G_ema" if "G_ema" in top else "G" if "G" in top else None
    if key is None:
        raise LegacyPickleError(src, f"no generator in the checkpoint (entries: {sorted(map(str, top))[:20]})")
    model = top[key]
    if not isinstance(model, ObjectRecord) or model.class_name != GGHEAD_MODEL:
        raise LegacyPickleError(src, f"{key} is {_identify(model)}, not GGHead's GGHeadModel: not supported")
    tensors, modules = _flatten(model, src)
    config, defaults_used, warn = _derive_config(model, tensors, modules, src)
    for name in ("_uv_grid", "_uv_position_map", "_flame_vertices"):
        if name not in tensors:
            raise LegacyPickleError(src, f"missing tensors: {name} (the UV template is stored in the checkpoint)")
    try:
        template = UVTemplate(tensors["_uv_grid"], tensors["_uv_position_map"], tensors["_flame_vertices"])
    except ValueError as e:
        raise LegacyPickleError(src, f"the UV template buffers do not fit together: {e}") from None
    with torch.device("meta"):
        expected = GGHeadGenerator(config, UVTemplate(torch.empty(template.uv_grid.shape),
                                                      torch.empty(template.uv_position_map.shape),
                                                      torch.empty(template.template_positions.shape))).state_dict()
    state, ignored, problems = {}, [], {"shape": [], "dtype": [], "missing": []}
    for name, t in tensors.items():
        ours = upstream_to_ours(name)
        if ours is None or ours not in expected:
            ignored.append(name)
            continue
        if list(t.shape) != list(expected[ours].shape):
            problems["shape"].append(f"{name} has shape {list(t.shape)}, expected {list(expected[ours].shape)}")
        elif not t.is_floating_point():
            problems["dtype"].append(f"{name} is {t.dtype}, expected floating point")
        else:
            state[ours] = t.detach().float()
    inverse = {upstream_name: ours for ours, upstream_name in _ours_to_upstream(config).items()}
    problems["missing"] = sorted(u for u, ours in inverse.items() if ours in expected and ours not in state
                                 and u not in tensors)
    if any(problems.values()):
        text = " | ".join(f"{k}: {'; '.join(v[:30])}" for k, v in problems.items() if v)
        raise LegacyPickleError(src, f"the generator tensors do not fit the architecture read from the file: {text}")
    if not config.use_zero_conv_position and any(n.startswith("_zero_conv_position.") for n in tensors):
        warn.append("_zero_conv_position is stored but use_zero_conv_position is off: it is not applied "
                    "(as upstream)")
    G = GGHeadGenerator(config, template)
    G.load_state_dict(state, strict=True)
    G = G.eval().to(device)
    m = _CKPT_RE.search(os.path.basename(src))
    info = GGHeadLoadInfo(path=src, source_key=key, kimg=int(m[1]) if m else None, config=G.config,
                          parameters=sum(p.numel() for p in G.parameters()), defaults_used=defaults_used,
                          ignored_tensors=tuple(ignored), ignored_entries=tuple(str(k) for k in top if k != key),
                          warnings=tuple(warn))
    return G, info


def _ours_to_upstream(config: GGHeadConfig) -> dict[str, str]:
    """Our state-dict name -> upstream name, for every tensor of ``GGHeadGenerator(config)``."""
    out = {v: k for k, v in _FIXED.items()}
    out.update({f"mapping.layers.{i}.{leaf}": f"backbone.mapping.fc{i}.{leaf}"
                for i in range(config.mapping_layers) for leaf in ("weight", "bias")})
    for i, res in enumerate(config.block_resolutions):
        for leaf in _BLOCK_LEAVES:
            out[f"synthesis_network.blocks.{i}.{leaf}"] = f"backbone.synthesis.b{res}.{leaf}"
    return out
