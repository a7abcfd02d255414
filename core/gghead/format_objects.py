"""The objects of a GGHead checkpoint as upstream's code leaves them, for :mod:`core.gghead.format_writer`:
stand-ins for upstream's classes (importable by pickle only while writing) and the object tree of one
``GGHeadModel`` / ``GaussianDiscriminator`` built from upstream-named tensors. Never used when loading.

The attribute layout follows upstream's ``__init__`` code (gghead @6043d2b, eg3d fork @2dfe002): every
``nn.Module.__dict__`` entry a real object has, the persistent layers' ``_init_args`` / ``_init_kwargs`` and
numpy-float gains, the model's elias config dataclasses, ``GaussianAttribute`` members as dict keys, and the
3DGS ``GaussianModel`` whose ``opacity_activation`` is a bound method of the model.
"""

from __future__ import annotations

import contextlib
import enum
import math
import sys
import types
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import torch
from torch import nn

from core.gghead.config import GGHeadConfig

MODULES = ("eg3d", "eg3d.torch_utils", "eg3d.torch_utils.persistence", "gghead", "gghead.models",
           "gghead.models.gghead_model", "gghead.models.stylegan2", "gghead.models.gaussian_discriminator",
           "gghead.config", "gghead.config.gaussian_attribute", "gaussian_splatting", "gaussian_splatting.scene",
           "gaussian_splatting.scene.gaussian_model", "gaussian_splatting.utils",
           "gaussian_splatting.utils.general_utils", "eg3d.training", "eg3d.training.networks_stylegan2",
           "eg3d.training.augment")
FIR = torch.outer(torch.tensor([1.0, 3.0, 3.0, 1.0]), torch.tensor([1.0, 3.0, 3.0, 1.0])) / 64.0


class _Omit:
    def __repr__(self) -> str:
        return "<omit>"


OMIT = _Omit()  # a model_overrides value: delete that attribute (an older pickle lacking it)


@contextlib.contextmanager
def upstream_modules(marker: Path) -> Iterator[types.SimpleNamespace]:
    """Stand-ins for the upstream classes and functions a checkpoint references, importable by pickle while
    writing; ``sys.modules`` is restored afterwards. Executing any embedded source writes ``marker``."""
    mods = {name: types.ModuleType(name) for name in MODULES}
    boom = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('module_src was executed')\n"

    def place(obj: Any, module: str, name: str | None = None) -> Any:
        name = name or obj.__name__
        obj.__module__, obj.__qualname__, obj.__name__ = module, name, name
        setattr(mods[module], name, obj)
        return obj

    def _reconstruct_persistent_obj(meta):  # noqa: ANN001
        raise AssertionError("write-time stand-in, never called")

    place(_reconstruct_persistent_obj, "eg3d.torch_utils.persistence")

    def persistent(name: str, src_module: str) -> type:
        src = boom + f"# placeholder for eg3d/training/{src_module}.py\nclass {name}:\n    pass\n"

        def __reduce__(self):  # noqa: N807  as eg3d.torch_utils.persistence does
            meta = dict(type="class", version=6, module_src=src, class_name=name, state=dict(self.__dict__))
            return (_reconstruct_persistent_obj, (meta,))

        return place(type(name, (nn.Module,), {"__reduce__": __reduce__}), f"eg3d.training.{src_module}")

    def plain(name: str, module: str, base: type = nn.Module, body: dict | None = None) -> type:
        return place(type(name, (base,), dict(body or {})), module)

    def _apply_opacity_activation(self, value):  # noqa: ANN001
        raise AssertionError("write-time stand-in, never called")

    def build_covariance_from_scaling_rotation(scaling, scaling_modifier, rotation):  # noqa: ANN001
        raise AssertionError("never called")

    def inverse_sigmoid(x):  # noqa: ANN001
        raise AssertionError("never called")

    place(build_covariance_from_scaling_rotation, "gaussian_splatting.scene.gaussian_model")
    place(inverse_sigmoid, "gaussian_splatting.utils.general_utils")
    attribute = enum.Enum("GaussianAttribute", [(m, m) for m in ("POSITION", "SCALE", "ROTATION", "OPACITY",
                                                                 "COLOR")], type=str)
    attribute.__reduce_ex__ = lambda self, proto: (type(self), (self._value_,))  # Enum's by-value rule
    place(attribute, "gghead.config.gaussian_attribute", "GaussianAttribute")
    ns = types.SimpleNamespace(
        reconstruct=_reconstruct_persistent_obj, GaussianAttribute=attribute,
        build_cov=build_covariance_from_scaling_rotation, inverse_sigmoid=inverse_sigmoid,
        GGHeadModel=plain("GGHeadModel", "gghead.models.gghead_model",
                          body={"_apply_opacity_activation": _apply_opacity_activation}),
        GGHGenerator=plain("GGHGenerator", "gghead.models.stylegan2"),
        GGHSynthesisNetwork=plain("GGHSynthesisNetwork", "gghead.models.stylegan2"),
        GGHSynthesisBlock=plain("GGHSynthesisBlock", "gghead.models.stylegan2"),
        GaussianDiscriminator=plain("GaussianDiscriminator", "gghead.models.gaussian_discriminator"),
        GaussianModel=plain("GaussianModel", "gaussian_splatting.scene.gaussian_model", object),
        **{n: plain(n, "gghead.models.gghead_model", object) for n in (
            "GGHeadConfig", "MappingNetworkConfig", "SynthesisNetworkConfig", "RenderingConfig",
            "SuperResolutionConfig")},
        GaussianAttributeConfig=plain("GaussianAttributeConfig", "gghead.config.gaussian_attribute", object),
        **{n: persistent(n, "networks_stylegan2") for n in (
            "FullyConnectedLayer", "MappingNetwork", "SynthesisLayer", "ToRGBLayer", "Conv2dLayer",
            "DiscriminatorBlock", "DiscriminatorEpilogue", "MinibatchStdLayer")},
        AugmentPipe=persistent("AugmentPipe", "augment"),
    )
    saved = {k: sys.modules.get(k) for k in mods}
    sys.modules.update(mods)
    try:
        yield ns
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def _init(obj: nn.Module, **attrs: Any) -> nn.Module:
    nn.Module.__init__(obj)
    obj.train(False)
    for k, v in attrs.items():
        object.__setattr__(obj, k, v) if not isinstance(v, nn.Module) else setattr(obj, k, v)
    return obj


def _new(cls: type, **attrs: Any) -> Any:
    obj = cls.__new__(cls)
    if isinstance(obj, nn.Module):
        return _init(obj, **attrs)
    obj.__dict__.update(attrs)
    return obj


class Tree:
    """Builds the upstream objects for one generator from ``tensors`` (upstream names; absent ones left out)."""

    def __init__(self, ns: types.SimpleNamespace, config: GGHeadConfig, tensors: dict[str, torch.Tensor],
                 ) -> None:
        self.ns, self.c, self.T = ns, config, tensors

    def _tensors(self, mod: nn.Module, prefix: str, names: Iterable[str], kind: str = "param") -> None:
        for n in names:
            t = self.T.get(f"{prefix}.{n}")
            if t is None:
                continue
            if kind == "param":
                mod._parameters[n] = nn.Parameter(t.clone(), requires_grad=False)
            else:
                mod._buffers[n] = t.clone()

    def persistent(self, cls: str, prefix: str, init_args: tuple = (), init_kwargs: dict | None = None,
                   **attrs: Any) -> nn.Module:
        return _new(getattr(self.ns, cls), _init_args=init_args, _init_kwargs=dict(init_kwargs or {}), **attrs)

    def fc(self, prefix: str, i: int, o: int, activation: str = "linear", lr: float = 1.0,
           bias_init: float = 0.0) -> nn.Module:
        m = self.persistent("FullyConnectedLayer", prefix, (i, o), dict(
            activation=activation, lr_multiplier=lr, bias_init=bias_init) if activation != "linear" or bias_init
            else {}, in_features=i, out_features=o, activation=activation,
            weight_gain=np.float64(lr / np.sqrt(i)), bias_gain=lr)
        self._tensors(m, prefix, ("weight", "bias"))
        return m

    def mapping(self) -> nn.Module:
        c, p = self.c, "backbone.mapping"
        m = self.persistent("MappingNetwork", p, (), dict(z_dim=c.z_dim, c_dim=c.c_dim, w_dim=c.w_dim,
                                                          num_ws=c.num_ws, num_layers=c.mapping_layers,
                                                          embed_features=None, layer_features=None,
                                                          activation="lrelu", lr_multiplier=c.mapping_lr_mul),
                            z_dim=c.z_dim, c_dim=c.c_dim, w_dim=c.w_dim, num_ws=c.num_ws,
                            num_layers=c.mapping_layers, w_avg_beta=c.w_avg_beta)
        embed = c.w_dim if c.c_dim else 0
        if c.c_dim:
            m._modules["embed"] = self.fc(f"{p}.embed", c.c_dim, embed)
        for i in range(c.mapping_layers):
            m._modules[f"fc{i}"] = self.fc(f"{p}.fc{i}", (c.z_dim + embed) if i == 0 else c.w_dim, c.w_dim,
                                           "lrelu", c.mapping_lr_mul)
        self._tensors(m, p, ("w_avg",), "buffer")
        return m

    def layer(self, prefix: str, cin: int, cout: int, res: int, up: int) -> nn.Module:
        c = self.c
        kwargs = dict(w_dim=c.w_dim, resolution=res, kernel_size=c.kernel_size, use_noise=c.use_noise,
                      activation="lrelu", resample_filter=[1, 3, 3, 1], conv_clamp=c.conv_clamp,
                      channels_last=False)
        if up != 1:
            kwargs["up"] = up
        m = self.persistent("SynthesisLayer", prefix, (cin, cout), kwargs, in_channels=cin, out_channels=cout,
                            w_dim=c.w_dim, resolution=res, up=up, use_noise=c.use_noise, activation="lrelu",
                            conv_clamp=c.conv_clamp, padding=c.kernel_size // 2, act_gain=np.float64(np.sqrt(2)))
        m._modules["affine"] = self.fc(f"{prefix}.affine", c.w_dim, cin, bias_init=1)
        self._tensors(m, prefix, ("weight", "noise_strength", "bias"))
        self._tensors(m, prefix, ("resample_filter", "noise_const"), "buffer")
        return m

    def synthesis(self) -> nn.Module:
        c, ns, p = self.c, self.ns, "backbone.synthesis"
        log2 = int(math.log2(c.plane_resolution))
        ch = {2 ** i: min(c.channel_base // 2 ** i, c.channel_max) for i in range(2, log2 + 1)}
        s = _new(ns.GGHSynthesisNetwork, w_dim=c.w_dim, img_resolution=c.plane_resolution,
                 pretrained_plane_resolution=None, img_resolution_log2=log2, img_resolution_log2_pretrained=log2,
                 img_channels=c.map_channels, num_fp16_res=0, block_resolutions=list(ch), num_ws=0)
        for res in ch:
            b = f"{p}.b{res}"
            cin, cout = (ch[res // 2] if res > 4 else 0), ch[res]
            blk = _new(ns.GGHSynthesisBlock, in_channels=cin, w_dim=c.w_dim, resolution=res,
                       img_channels=c.map_channels, is_last=res == c.plane_resolution, architecture="skip",
                       use_fp16=False, channels_last=False, fused_modconv_default="inference_only",
                       num_conv=0, num_torgb=0)
            self._tensors(blk, b, ("resample_filter",), "buffer")
            self._tensors(blk, b, ("const",))
            if cin:
                blk._modules["conv0"] = self.layer(f"{b}.conv0", cin, cout, res, 2)
                blk.num_conv += 1
            blk._modules["conv1"] = self.layer(f"{b}.conv1", cout, cout, res, 1)
            blk.num_conv += 1
            rgb = self.persistent("ToRGBLayer", f"{b}.torgb", (cout, c.map_channels), dict(
                w_dim=c.w_dim, conv_clamp=c.conv_clamp, channels_last=False), in_channels=cout,
                out_channels=c.map_channels, w_dim=c.w_dim, conv_clamp=c.conv_clamp,
                weight_gain=np.float64(1 / np.sqrt(cout)))
            rgb._modules["affine"] = self.fc(f"{b}.torgb.affine", c.w_dim, cout, bias_init=1)
            self._tensors(rgb, f"{b}.torgb", ("weight", "bias"))
            blk._modules["torgb"] = rgb
            blk.num_torgb += 1
            s.num_ws += blk.num_conv + (blk.num_torgb if res == c.plane_resolution else 0)
            s._modules[f"b{res}"] = blk
        return s

    def gaussian_model(self, model: nn.Module, count: int, forwarded: bool) -> Any:
        """The 3DGS GaussianModel as upstream leaves it: after a forward pass it holds the last scene."""
        c, gen = self.c, torch.Generator().manual_seed(1)

        def t(*shape: int) -> torch.Tensor:
            return torch.randn(shape, generator=gen) if forwarded else torch.empty(0)

        k = (c.sh_degree + 1) ** 2
        return _new(self.ns.GaussianModel, active_sh_degree=c.sh_degree, max_sh_degree=c.sh_degree,
                    _xyz=t(count, 3), _features_dc=t(count, 1, 3), _features_rest=t(count, k - 1, 3),
                    _scaling=t(count, 3), _rotation=t(count, 4), _opacity=t(count, 1),
                    max_radii2D=torch.empty(0),
                    xyz_gradient_accum=torch.empty(0), denom=torch.empty(0), optimizer=None, percent_dense=0,
                    spatial_lr_scale=0, scaling_activation=torch.exp, scaling_inverse_activation=torch.log,
                    covariance_activation=self.ns.build_cov, opacity_activation=model._apply_opacity_activation,
                    inverse_opacity_activation=self.ns.inverse_sigmoid,
                    rotation_activation=torch.nn.functional.normalize)

    def config_record(self, omit: set[str], overrides: dict[str, Any]) -> Any:
        """The pickled elias ``GGHeadConfig`` (with the fields the training script sets), minus ``omit``."""
        c, ns = self.c, self.ns
        A = ns.GaussianAttribute
        nested = {
            "mapping_network_config": (ns.MappingNetworkConfig, dict(
                num_layers=c.mapping_layers, embed_features=None, layer_features=None, activation="lrelu",
                lr_multiplier=c.mapping_lr_mul)),
            "synthesis_network_config": (ns.SynthesisNetworkConfig, dict(
                channel_base=c.channel_base, channel_max=c.channel_max, num_fp16_res=0, architecture="skip",
                resample_filter=[1, 3, 3, 1], conv_clamp=c.conv_clamp, fp16_channels_last=False,
                fused_modconv_default="inference_only", kernel_size=c.kernel_size, use_noise=c.use_noise,
                activation="lrelu")),
            "rendering_config": (ns.RenderingConfig, dict(c_gen_conditioning_zero=c.c_gen_conditioning_zero,
                                                          c_scale=c.c_scale, box_warp=1)),
            "super_resolution_config": (ns.SuperResolutionConfig, dict(
                use_superresolution=False, superresolution_version=1, n_channels=32, n_downsampling_layers=1,
                use_skip=True, cbase=32768, cmax=512, fused_modconv_default="inference_only", sr_num_fp16_res=4,
                sr_antialias=True, noise_mode="none")),
            "gaussian_attribute_config": (ns.GaussianAttributeConfig, dict(
                use_rodriguez_rotation=c.use_rodriguez_rotation, sh_degree=c.sh_degree, n_color_channels=3)),
        }
        top = dict(
            z_dim=c.z_dim, w_dim=c.w_dim, c_dim=c.c_dim,
            uv_attributes=[A(a.upper()) for a in c.uv_attributes], n_triplane_channels=16,
            disable_position_offsets=False, use_align_corners=c.use_align_corners,
            interpolation_mode=c.interpolation_mode, n_flame_subdivisions=0, use_uniform_flame_vertices=True,
            n_uniform_flame_vertices=c.uv_grid_size, n_shells=1, shell_distance=0.05,
            use_gsm_flame_template=True, use_flame_template_v2=False, use_sphere_template=False,
            use_plane_template=False, plane_resolution=c.plane_resolution, effective_plane_resolution=None,
            pretrained_plane_resolution=None, pretrained_resolution=256 if c.resolution > 256 else None,
            use_position_activation=c.use_position_activation, use_color_activation=c.use_color_activation,
            use_scale_activation=True, center_scale_activation=c.center_scale_activation,
            use_initial_scales=False,
            use_rotation_activation=c.use_rotation_activation, use_periodic_rotation_activation=False,
            normalize_quaternions=c.normalize_quaternions, position_attenuation=c.position_attenuation,
            position_range=c.position_range, color_attenuation=1, scale_attenuation=1,
            rotation_attenuation=c.rotation_attenuation, scale_offset=c.scale_offset, additional_scale_offset=0,
            max_scale=c.max_scale, use_softplus_scale_activation=False, no_exp_scale_activation=False,
            scale_overshoot=0.001, color_overshoot=c.color_overshoot, opacity_overshoot=c.opacity_overshoot,
            clamp_opacity=c.clamp_opacity, use_zero_conv_position=c.use_zero_conv_position,
            use_zero_conv_scale=False, use_background_cnn=c.n_background_channels > 0,
            n_background_channels=c.n_background_channels or 3, use_masks=False,
            use_flame_to_bfm_registration=True,
            img_resolution=c.resolution, neural_rendering_resolution=c.resolution, n_persons=None,
            random_background=False, return_background=False, background_color=(255, 255, 255))
        for path, value in overrides.items():
            head, _, leaf = path.rpartition(".")
            (nested[head][1] if head else top)[leaf] = value
        for path in omit:
            head, _, leaf = path.rpartition(".")
            (nested[head][1] if head else top).pop(leaf, None)
        for name, (cls, fields) in nested.items():
            if name not in omit:
                top[name] = _new(cls, **fields)
        return _new(ns.GGHeadConfig, **{k: v for k, v in top.items() if k not in omit})

    def model(self, count: int, omit_config: set[str], config_overrides: dict[str, Any],
              model_overrides: dict[str, Any], forwarded: bool) -> nn.Module:
        c, ns = self.c, self.ns
        A = ns.GaussianAttribute
        cfg = self.config_record(omit_config, config_overrides)
        names = [A(a.upper()) for a in c.uv_attributes]
        sizes = c.attribute_channels
        start, acc = {}, 0
        for a in c.uv_attributes:
            start[A(a.upper())] = acc
            acc += sizes[a]
        m = _new(ns.GGHeadModel)
        m._config = cfg
        m._all_gaussian_attribute_names = [A.POSITION, A.SCALE, A.ROTATION, A.OPACITY, A.COLOR]
        m._uv_attribute_names = names
        m._n_uv_channels = c.uv_channels
        m.z_dim, m.c_dim, m.w_dim = c.z_dim, c.c_dim, c.w_dim
        backbone = _new(ns.GGHGenerator, z_dim=c.z_dim, c_dim=c.c_dim, w_dim=c.w_dim,
                        img_resolution=c.plane_resolution, img_channels=c.map_channels)
        backbone._modules["synthesis"] = self.synthesis()
        backbone.num_ws = c.num_ws
        backbone._modules["mapping"] = self.mapping()
        m._modules["backbone"] = backbone
        m._uv_attribute_start_channel = start
        m._uv_attribute_n_channels = {A(a.upper()): sizes[a] for a in c.uv_attributes}
        if c.use_zero_conv_position:
            m._position_start_channel = start[A.POSITION]
            m._n_position_channels = 3
            conv = nn.Conv2d(3, 3, 1).requires_grad_(False)
            conv._parameters = {}
            self._tensors(conv, "_zero_conv_position", ("weight", "bias"))
            m._modules["_zero_conv_position"] = conv
        m.neural_rendering_resolution = c.resolution
        m.rendering_config = cfg.__dict__.get("rendering_config")
        self._tensors(m, "", ())
        for n in ("_uv_grid", "_uv_position_map", "_flame_vertices"):
            if n in self.T:
                m._buffers[n] = self.T[n].clone()
        m._gaussian_model = self.gaussian_model(m, count, forwarded)
        m._buffers["_gaussian_bg"] = torch.ones(3)
        m._buffers["_gaussian_bg_train"] = torch.ones(3)
        m._non_persistent_buffers_set = {"_gaussian_bg", "_gaussian_bg_train"}
        m._last_planes = None
        m.img_resolution = c.resolution
        m.rendering_kwargs = {"depth_resolution": 48, "depth_resolution_importance": 48}
        m._logger_bundle = None
        for k, v in model_overrides.items():
            if v is OMIT:
                m.__dict__.pop(k, None)
            else:
                object.__setattr__(m, k, v)
        return m

    def discriminator(self) -> nn.Module:
        """Structurally like GaussianDiscriminator (resnet blocks, mapping, epilogue), 8 channels wide."""
        ns, c, gen = self.ns, self.c, torch.Generator().manual_seed(2)

        def conv(prefix: str, i: int, o: int, k: int, **kw: Any) -> nn.Module:
            m = self.persistent("Conv2dLayer", prefix, (i, o), dict(kernel_size=k, **kw), in_channels=i,
                                out_channels=o, activation=kw.get("activation", "linear"), up=1,
                                down=kw.get("down", 1), conv_clamp=256, padding=k // 2,
                                weight_gain=np.float64(1 / np.sqrt(i * k * k)), act_gain=np.float64(1.0))
            m._parameters["weight"] = nn.Parameter(torch.randn(o, i, k, k, generator=gen), requires_grad=False)
            if kw.get("bias", True):
                m._parameters["bias"] = nn.Parameter(torch.zeros(o), requires_grad=False)
            m._buffers["resample_filter"] = FIR.clone()
            return m

        d = _new(ns.GaussianDiscriminator, c_dim=c.c_dim, img_resolution=8, pretrained_resolution=None,
                 img_resolution_log2=3, img_channels=3, use_dual_discrimination=False, block_resolutions=[8],
                 disc_c_noise=0)
        blk = self.persistent("DiscriminatorBlock", "<D>.b8", (0, 8, 8), dict(resolution=8, first_layer_idx=0),
                              in_channels=0, resolution=8, img_channels=3, first_layer_idx=0,
                              architecture="resnet", use_fp16=False, channels_last=False, num_layers=3)
        blk._modules.update(fromrgb=conv("b8.fromrgb", 3, 8, 1, activation="lrelu"),
                            conv0=conv("b8.conv0", 8, 8, 3, activation="lrelu"),
                            conv1=conv("b8.conv1", 8, 8, 3, activation="lrelu", down=2),
                            skip=conv("b8.skip", 8, 8, 1, bias=False, down=2))
        d._modules["b8"] = blk
        mp = self.persistent("MappingNetwork", "<D>.mapping", (),
                             dict(z_dim=0, c_dim=c.c_dim, w_dim=8, num_ws=None, w_avg_beta=None), z_dim=0,
                             c_dim=c.c_dim, w_dim=8, num_ws=None, num_layers=2, w_avg_beta=None)
        for name, (i, o) in (("embed", (c.c_dim, 8)), ("fc0", (8, 8)), ("fc1", (8, 8))):
            f = self.persistent("FullyConnectedLayer", name, (i, o), {}, in_features=i, out_features=o,
                                activation="linear" if name == "embed" else "lrelu",
                                weight_gain=np.float64(1 / np.sqrt(i)), bias_gain=1)
            f._parameters.update(weight=nn.Parameter(torch.randn(o, i, generator=gen), requires_grad=False),
                                 bias=nn.Parameter(torch.zeros(o), requires_grad=False))
            mp._modules[name] = f
        d._modules["mapping"] = mp
        epi = self.persistent("DiscriminatorEpilogue", "<D>.b4", (8,), dict(cmap_dim=8, resolution=4),
                              in_channels=8, cmap_dim=8, resolution=4, img_channels=3, architecture="resnet")
        epi._modules["mbstd"] = self.persistent("MinibatchStdLayer", "mbstd", (),
                                                dict(group_size=4, num_channels=1), group_size=4, num_channels=1)
        epi._modules["conv"] = conv("b4.conv", 9, 8, 3, activation="lrelu")
        d._modules["b4"] = epi
        d._buffers["resample_filter"] = FIR.clone()
        return d
