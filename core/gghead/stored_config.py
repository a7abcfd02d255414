"""The configuration a GGHead checkpoint stores -> :class:`~core.gghead.config.GGHeadConfig`.

Network sizes come from the records and tensor shapes (mapping depth and widths, synthesis resolution, layer
settings); the decoding settings from the pickled elias ``GGHeadConfig``: a value stored in the file wins, an
absent one takes upstream's class default (:data:`~core.gghead.config.UPSTREAM_DEFAULTS`) and is reported.
The channel order is the model's own ``_uv_attribute_names`` (else the stored ``uv_attributes``).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from core.gghead.config import UPSTREAM_DEFAULTS, GGHeadConfig
from core.gghead.pickle_format import EnumRecord, ObjectRecord
from core.gghead.records import identify, record_attr
from core.gghead.stylegan2 import fir_filter_2d
from core.legacy_pickle import LegacyPickleError

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


class _ConfigReader:
    """Attribute lookup in the pickled upstream config: the stored value, else upstream's class default.
    ``roots`` are model attributes upstream's forward reads instead of the config's (``rendering_config``)."""

    def __init__(self, record: Any, source: str, roots: dict[str, Any] | None = None) -> None:
        if not isinstance(record, ObjectRecord) or not record.class_name.endswith(".GGHeadConfig"):
            raise LegacyPickleError(source, f"GGHeadModel._config is {identify(record)}, not a GGHeadConfig")
        self.record, self.source = record, source
        self.roots = {k: v for k, v in (roots or {}).items() if isinstance(v, ObjectRecord)}
        self.defaults_used: dict[str, Any] = {}

    def get(self, path: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        head, _, rest = path.partition(".")
        node: Any = self.record
        if head in self.roots and rest:
            node, path_parts = self.roots[head], rest.split(".")
        else:
            path_parts = path.split(".")
        for part in path_parts:
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


def derive_config(model: ObjectRecord, tensors: dict[str, torch.Tensor], modules: dict[str, Any], source: str,
                   ) -> tuple[GGHeadConfig, dict[str, Any], list[str]]:
    warn: list[str] = []
    cfg = _ConfigReader(model.state.get("_config"), source,
                        roots={"rendering_config": model.state.get("rendering_config")})
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
    widths = {shape(f"backbone.mapping.fc{i}.weight")[0] for i in range(num_layers)}
    if embed not in (0, w_dim) or widths != {w_dim}:
        raise LegacyPickleError(source, "mapping layers narrower or wider than w_dim are not supported")
    for k, v in (("z_dim", z_dim), ("c_dim", c_dim), ("w_dim", w_dim), ("num_layers", num_layers)):
        stored = record_attr(mapping, k)
        if stored is not None and stored != v:
            raise LegacyPickleError(source, f"backbone.mapping.{k} = {stored!r}, but the tensors say {v}")
    fc0 = modules.get("backbone.mapping.fc0")
    lr_mul = float(record_attr(fc0, "bias_gain", 0.01))
    if record_attr(fc0, "activation", "lrelu") != "lrelu":
        raise LegacyPickleError(source, f"mapping activation {record_attr(fc0, 'activation')!r}; only 'lrelu' "
                                        "is supported")
    w_avg_beta = record_attr(mapping, "w_avg_beta", 0.998)

    plane = record_attr(synthesis, "img_resolution")
    if not isinstance(plane, int) or plane < 4 or plane & (plane - 1):
        raise LegacyPickleError(source, f"backbone.synthesis.img_resolution is {plane!r}, not a power of two")
    if record_attr(synthesis, "pretrained_plane_resolution") is not None:
        raise LegacyPickleError(source, "a progressive-growing synthesis network (pretrained_plane_resolution "
                                        "set) is not supported")
    res_list = [2 ** i for i in range(2, int(math.log2(plane)) + 1)]
    conv_clamps, noise, kernel = set(), set(), set()
    for res in res_list:
        block = modules.get(f"backbone.synthesis.b{res}")
        if block is None:
            raise LegacyPickleError(source, f"missing module backbone.synthesis.b{res}")
        arch = record_attr(block, "architecture", "skip")
        if arch != "skip":
            raise LegacyPickleError(source, f"synthesis architecture {arch!r}; only 'skip' (GGHead's) is "
                                            "supported")
        if record_attr(block, "use_fp16", False):
            warn.append(f"backbone.synthesis.b{res} ran in float16 upstream on CUDA; it runs in float32 here")
        for layer in ("conv0", "conv1"):
            rec = modules.get(f"backbone.synthesis.b{res}.{layer}")
            if rec is None:
                continue
            if record_attr(rec, "activation", "lrelu") != "lrelu":
                raise LegacyPickleError(source, f"backbone.synthesis.b{res}.{layer}: activation "
                                                f"{record_attr(rec, 'activation')!r}; only 'lrelu' is supported")
            conv_clamps.add(record_attr(rec, "conv_clamp"))
            noise.add(bool(record_attr(rec, "use_noise", True)))
            kernel.add(shape(f"backbone.synthesis.b{res}.{layer}.weight")[-1])
    conv_clamps.add(record_attr(modules.get(f"backbone.synthesis.b{plane}.torgb"), "conv_clamp"))
    if len(conv_clamps) > 1 or len(noise) != 1 or len(kernel) != 1:
        raise LegacyPickleError(source, f"synthesis layers differ in conv_clamp {conv_clamps}, use_noise "
                                        f"{noise} or kernel size {kernel}; not supported")
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
        raise LegacyPickleError(source, f"_uv_attribute_names is {names!r:.100}, not a list of "
                                        "GaussianAttribute")
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
    pos = model.state.get("_position_start_channel")
    want_pos = sum(config.attribute_channels[a] for a in uv_attributes[: uv_attributes.index("position")])
    if config.use_zero_conv_position and pos is not None and pos != want_pos:
        raise LegacyPickleError(source, f"GGHeadModel._position_start_channel = {pos}, but the attribute order "
                                        f"{list(uv_attributes)} puts position at channel {want_pos}")
    n_uv = model.state.get("_n_uv_channels")
    if n_uv is not None and n_uv != config.uv_channels:
        raise LegacyPickleError(source, f"GGHeadModel._n_uv_channels = {n_uv}, but its attributes need "
                                        f"{config.uv_channels} channels")
    img_channels = record_attr(synthesis, "img_channels")
    if img_channels is not None and img_channels != config.map_channels:
        raise LegacyPickleError(source, f"the synthesis network outputs {img_channels} channels; the decoding "
                                        f"needs {config.map_channels}")
    gm = model.state.get("_gaussian_model")
    max_sh = record_attr(gm, "max_sh_degree") if isinstance(gm, ObjectRecord) else None
    if max_sh is not None and max_sh != config.sh_degree:
        warn.append(f"_gaussian_model.max_sh_degree = {max_sh}, config sh_degree = {config.sh_degree}; "
                    "the config's was used")
    if config.use_zero_conv_position and "_zero_conv_position.weight" not in tensors:
        raise LegacyPickleError(source, "use_zero_conv_position is set but _zero_conv_position is missing")
    return config, cfg.defaults_used, warn


