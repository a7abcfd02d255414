"""core.legacy_cgsgan: loading official CGS-GAN pickles without running their code.

No official file is available offline, so the FIXTURE WRITER below re-creates the official format as
docs/official-pickle-notes.md describes it (sections 1 and 2): a plain ``pickle.dump`` (protocol 4) of the
snapshot dict, every network module an object whose ``__reduce__`` returns
``(torch_utils.persistence._reconstruct_persistent_obj, (meta,))`` with meta {type 'class', version 6,
module_src, class_name, state}, the state being an ``nn.Module.__dict__`` with real tensors (pickled by torch
itself: ``_rebuild_parameter`` / ``_rebuild_tensor_v2`` / ``_load_from_bytes``), numpy float64 attributes,
``dnnlib.util.EasyDict`` kwargs, real ``nn.ModuleList/ModuleDict/GELU/Linear`` containers and a Renderer
with ``torch.exp``-style attributes. The official modules are only importable AT WRITE TIME, as fake
modules in ``sys.modules`` that are removed afterwards; their embedded "source" would create a marker file
if anything executed it.

The writer is generic over sizes: ``SMALL`` (width 32, 16 points, 3 levels, 8 blocks) for fast tests and
``REAL512`` (the official 512 layout) for the name/shape table and one slow full-size round trip.
``reference_forward`` re-states the official forward from the notes (section 5) on the official tensor
names, independently of core.generator, and the loaded generator is compared against it in float64.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.abc
import io
import math
import pickle
import sys
import types
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from core.generator import Generator, count_parameters, official_preset
from core.legacy_cgsgan import (
    LegacyPickleError,
    UnsafeLegacyPickleError,
    is_official_pickle,
    load_official_pickle,
    official_state_to_ours,
    official_to_ours,
    ours_to_official,
    read_official_pickle,
)

FIELDS = (("xyz", 3), ("scale", 3), ("rotation", 4), ("color", 3), ("opacity", 1))
OFFICIAL_PACKAGES = ("torch_utils", "dnnlib")
OFFICIAL_MODULES = ("training.cgs_generator", "training.point_generator", "training.transformer_inter",
                    "training.networks_stylegan2", "training.discriminator", "training.gaussian3d_splatting")


# ================================================================================== the fixture writer


@dataclass(frozen=True)
class OfficialSizes:
    """Sizes of an official-format generator (the official code fixes them per resolution; the writer is
    generic so that the tests can use a small one). The last three are the values stored in the pickle;
    they differ from what our config would derive, so a test can see they were read from the file."""

    resolution: int = 64
    points: int = 16
    width: int = 32
    heads: int = 2
    pe_res: int = 16
    channels: tuple[int, ...] = (32, 16, 8)
    ratios: tuple[int, ...] = (1, 4, 4)
    num_first: int = 6
    z_dim: int = 32
    w_dim: int = 32
    c_dim: int = 25
    mapping_layers: int = 2
    mlp_ratio: int = 4
    release: str = "head"  # "head": per-block w; "june": one w
    log_scale_src: str = "-5."  # written into the point_generator source as torch.tensor(<this>, ...)
    split_ratio: float = 1.7531
    percent_dense: float = 0.0123
    scale_threshold: float = -2.9

    @property
    def levels(self) -> int:
        return len(self.channels)

    @property
    def acc(self) -> list[int]:
        return [math.prod(self.ratios[: i + 1]) for i in range(self.levels)]

    @property
    def blocks(self) -> int:
        return self.num_first + self.levels - 1

    @property
    def num_ws(self) -> int:
        return 1 if self.release == "june" else self.blocks

    @property
    def init_log_scale(self) -> float:
        return float(self.log_scale_src) if self.log_scale_src else -5.0


SMALL = OfficialSizes()
REAL512 = OfficialSizes(resolution=512, points=512, width=512, heads=8, pe_res=512,
                        channels=(512, 256, 128, 64, 32, 16), ratios=(1, 4, 4, 4, 2, 2), z_dim=512, w_dim=512,
                        split_ratio=math.exp((math.log(0.5 / math.sqrt(512)) - math.log(0.5 / 512)) / 3),
                        percent_dense=0.5 / 512, scale_threshold=math.log(0.5 / math.sqrt(512)))


@contextlib.contextmanager
def fake_official_modules():
    """The official globals a snapshot references, importable by pickle while writing; removed after."""
    persistence = types.ModuleType("torch_utils.persistence")
    util = types.ModuleType("dnnlib.util")
    renderer = types.ModuleType("training.gaussian3d_splatting.renderer")

    def _reconstruct_persistent_obj(meta):
        raise AssertionError("write-time stand-in, never called")

    class EasyDict(dict):
        pass

    class Renderer:
        pass

    def build_covariance_from_scaling_rotation(scaling, scaling_modifier, rotation):
        raise AssertionError("never called")

    def inverse_sigmoid(x):
        raise AssertionError("never called")

    for obj, mod in ((_reconstruct_persistent_obj, persistence), (EasyDict, util), (Renderer, renderer),
                     (build_covariance_from_scaling_rotation, renderer), (inverse_sigmoid, renderer)):
        obj.__module__, obj.__qualname__ = mod.__name__, obj.__name__
        setattr(mod, obj.__name__, obj)
    fakes = {"torch_utils": types.ModuleType("torch_utils"), "torch_utils.persistence": persistence,
             "dnnlib": types.ModuleType("dnnlib"), "dnnlib.util": util,
             "training.gaussian3d_splatting.renderer": renderer}
    saved = {k: sys.modules.get(k) for k in fakes}
    sys.modules.update(fakes)
    try:
        yield types.SimpleNamespace(reconstruct=_reconstruct_persistent_obj, EasyDict=EasyDict,
                                    Renderer=Renderer, build_cov=build_covariance_from_scaling_rotation,
                                    inverse_sigmoid=inverse_sigmoid)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def official_sources(s: OfficialSizes, marker: Path) -> dict[str, str]:
    """Placeholder module texts (one str per official module). Executing any of them creates ``marker``."""
    boom = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('module_src was executed')\n"
    june = s.release == "june"
    scale = (f"torch.tensor({s.log_scale_src}, device=ws.device)" if s.log_scale_src
             else "torch.full((1,), self.initial_scale, device=ws.device)")
    return {
        "cgs_generator": boom + "# test placeholder for training/cgs_generator.py\nclass CGSGenerator:\n" + (
            "    self.mapping_network = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, "
            "num_ws=self.point_gen.num_ws + 1, **mapping_kwargs)\n" if june else
            "    self.num_ws = self.mapping_network.num_ws\n"
            "    return {'image': img, 'features': features}\n"),
        "point_generator": boom + "class PointGenerator:\n    def forward(self, ws):\n"
                                  f"        prev = dict(xyz=0, scale={scale}, rotation=self.rotation_init)\n",
        "transformer_inter": boom + "class Transformer:\n    def forward(self, x, ws):\n" + (
            "        for block in self.resblocks: x = block(x, ws)\n" if june else
            "        for i, block in enumerate(self.first_layers): x = block(x, ws[:, i:i+1, :])\n"),
        "networks_stylegan2": boom + "class FullyConnectedLayer:\n    pass\n"
                                     "class MappingNetwork:\n    pass\n",
        "discriminator": boom + "class Discriminator:\n    pass\n",
    }


class PersistentNode:
    """Write-time stand-in of one persistent module; pickles exactly as torch_utils.persistence does."""

    def __init__(self, w: Writer, class_name: str, module: str, path: str, attrs: dict | None = None,
                 init_args: tuple = (), init_kwargs: dict | None = None) -> None:
        self.w, self.class_name, self.src = w, class_name, w.sources[module]
        self.params: dict = {}
        self.buffers: dict = {}
        self.children: dict = {}
        self.attrs = dict(attrs or {})
        self.init_args, self.init_kwargs = init_args, dict(init_kwargs or {})
        w.nodes[path] = self
        self.path = path

    def tensor(self, key: str, shape, kind: str = "param", dtype=torch.float32) -> None:
        t = self.w.get(f"{self.path}.{key}" if self.path else key, tuple(shape), kind, dtype)
        if t is None:
            return
        if kind == "param":
            self.params[key] = nn.Parameter(t, requires_grad=False) if isinstance(t, torch.Tensor) else t
        else:
            self.buffers[key] = t

    def __reduce__(self):
        template = nn.Module()
        template.train(self.w.training)
        state = dict(template.__dict__)
        state.update(_parameters=dict(self.params), _buffers=dict(self.buffers), _modules=dict(self.children))
        state.update(self.attrs)
        state.update(_init_args=self.init_args, _init_kwargs=self.init_kwargs)
        meta = dict(type="class", version=6, module_src=self.src, class_name=self.class_name, state=state)
        return (self.w.ns.reconstruct, (meta,))


class Writer:
    """Builds one official module tree (CGSGenerator) for ``sizes``; ``get(name, shape, kind, dtype)``
    returns the tensor for an official state_dict name (None: leave it out)."""

    def __init__(self, s: OfficialSizes, get, ns, marker: Path, training: bool = False) -> None:
        self.s, self.get, self.ns, self.training = s, get, ns, training
        self.sources = official_sources(s, marker)
        self.nodes: dict[str, PersistentNode] = {}

    def node(self, *args, **kwargs) -> PersistentNode:
        return PersistentNode(self, *args, **kwargs)

    def fc(self, path, in_f, out_f, act="linear", lr=1, init_args=None, init_kwargs=None) -> PersistentNode:
        n = self.node("FullyConnectedLayer", "networks_stylegan2", path, dict(
            in_features=in_f, out_features=out_f, activation=act, weight_gain=np.float64(lr / np.sqrt(in_f)),
            bias_gain=lr), (in_f, out_f) if init_args is None else init_args, init_kwargs)
        n.tensor("weight", (out_f, in_f))
        n.tensor("bias", (out_f,))
        return n

    @staticmethod
    def module_list(children: dict) -> nn.Module:
        ml = nn.ModuleList()
        ml._modules.update(children)
        return ml

    def block(self, path: str) -> PersistentNode:
        s, W = self.s, self.s.width
        b = self.node("ResidualAttentionBlock", "transformer_inter", path,
                      init_kwargs=dict(width=W, heads=s.heads, w_dim=s.w_dim))
        attn = self.node("MultiheadAttention", "transformer_inter", f"{path}.attn",
                         dict(width=W, heads=s.heads), init_kwargs=dict(width=W, heads=s.heads))
        attn.children = {"c_qkv": self.fc(f"{path}.attn.c_qkv", W, 3 * W),
                         "c_proj": self.fc(f"{path}.attn.c_proj", W, W),
                         "attention": self.node("QKVMultiheadAttention", "transformer_inter",
                                                f"{path}.attn.attention", dict(heads=s.heads))}
        mlp = self.node("MLP", "transformer_inter", f"{path}.mlp", dict(out_channels=W),
                        init_kwargs=dict(width=W))
        mlp.children = {"c_fc": self.fc(f"{path}.mlp.c_fc", W, s.mlp_ratio * W), "gelu": nn.GELU(),
                        "c_proj": self.fc(f"{path}.mlp.c_proj", s.mlp_ratio * W, W)}
        b.children = {"attn": attn, "mlp": mlp}
        for k in ("ln_1", "ln_2"):
            ln = self.node("AdaptiveNorm", "transformer_inter", f"{path}.{k}", init_args=(W,),
                           init_kwargs=dict(w_dim=s.w_dim))
            ln.children = {"norm": self.node("InstanceNorm1d", "transformer_inter", f"{path}.{k}.norm"),
                           "gamma": self.fc(f"{path}.{k}.gamma", s.w_dim, W, init_kwargs=dict(
                               activation="linear", weight_init=1.0, bias_init=1.0)),
                           "beta": self.fc(f"{path}.{k}.beta", s.w_dim, W, init_kwargs=dict(
                               activation="linear", weight_init=1.0, bias_init=0.0))}
            b.children[k] = ln
        for k in ("ls_1", "ls_2"):
            b.children[k] = self.fc(f"{path}.{k}", s.w_dim, W, init_kwargs=dict(activation="linear",
                                                                                 weight_init=0.0))
        return b

    def build(self) -> PersistentNode:
        s, ns, W, june = self.s, self.ns, self.s.width, self.s.release == "june"
        E = ns.EasyDict
        R, pe_dim = s.resolution, s.width // 2
        thr = np.float64(s.scale_threshold)
        options = dict(scale_init=thr, scale_threshold=thr,
                       scale_end=np.float64(math.log(s.percent_dense)), xyz_output_scale=0.1, res_end=R // 4,
                       num_pts=s.points, use_start_pe=True, n_transformer=s.levels)
        rendering = dict(image_resolution=R, custom_options=options)
        G = self.node("CGSGenerator", "cgs_generator", "", init_kwargs=dict(
            z_dim=s.z_dim, w_dim=s.w_dim, mapping_kwargs=E(num_layers=s.mapping_layers), channel_base=32768,
            channel_max=512, fused_modconv_default="inference_only", rendering_kwargs=rendering,
            c_dim=s.c_dim, img_resolution=R, img_channels=3))
        G.tensor("_xyz", (s.points, 3))
        G.tensor("dataset_label_std", (s.c_dim,), "buffer")

        pg = self.node("PointGenerator", "point_generator", "point_gen",
                       init_kwargs=dict(w_dim=s.w_dim, options=options))
        pg.tensor("scale_init", (3,), "buffer")
        pg.tensor("scale_threshold", (3,), "buffer")
        pg.tensor("rotation_init", (4,), "buffer", torch.int64)
        pg.tensor("color_init", (3,), "buffer")
        pg.tensor("opacity_init", (1,), "buffer")
        conv_in = self.node("CoordInjection_const", "point_generator", "point_gen.conv_in",
                            init_kwargs=dict(pe_dim=pe_dim, pe_res=s.pe_res))
        lff = self.node("LFF", "point_generator", "point_gen.conv_in.learnable_pe", init_args=(pe_dim,))
        ffm = self.node("LinLinear", "point_generator", "point_gen.conv_in.learnable_pe.ffm",
                        init_args=(3, pe_dim), init_kwargs=dict(is_first=True))
        linear = nn.Linear(3, pe_dim)
        for key, shape in (("weight", (pe_dim, 3)), ("bias", (pe_dim,))):
            t = self.get(f"point_gen.conv_in.learnable_pe.ffm.linear.{key}", shape, "param", torch.float32)
            if t is None:
                del linear._parameters[key]
            else:
                linear._parameters[key] = nn.Parameter(t, requires_grad=False)
        ffm.children = {"linear": linear}
        lff.children = {"ffm": ffm, "activation": self.node("SinActivation", "point_generator",
                                                            "point_gen.conv_in.learnable_pe.activation")}
        const_pe = self.node("constant_PE", "point_generator", "point_gen.conv_in.const_pe",
                             dict(pe_dim=pe_dim), init_args=(pe_dim, s.pe_res))
        const_pe.tensor("const_pe", (3, pe_dim, 1, s.pe_res))
        conv_in.children = {"learnable_pe": lff, "const_pe": const_pe}

        tr = self.node("Transformer", "transformer_inter", "point_gen.transformer",
                       dict(width=W, layers=s.levels, num_first_layers=s.num_first, **({} if june else {
                           "num_ws": s.num_ws})), init_kwargs=dict(width=W, layers=s.levels, w_dim=s.w_dim))
        first = {"first_layers": self.module_list(
            {str(j): self.block(f"point_gen.transformer.first_layers.{j}") for j in range(s.num_first)})}
        rest = {"resblocks": self.module_list(
            {str(j): self.block(f"point_gen.transformer.resblocks.{j}") for j in range(s.levels - 1)})}
        tr.children = {**rest, **first} if june else {**first, **rest}  # June registers resblocks first

        ups = {}
        for i, (c, a) in enumerate(zip(s.channels, s.acc)):
            p = f"point_gen.upsample_layers.{i}"
            u = self.node("PointUpsample_subpixel", "point_generator", p,
                          dict(in_features=W, out_features=c, upsample_ratio=a),
                          init_kwargs=dict(in_features=W, out_features=c, upsample_ratio=a))
            res_fc = (self.node("Identity", "point_generator", f"{p}.res_fc") if c == W else
                      self.fc(f"{p}.res_fc", W, c, init_kwargs=dict(activation="linear")))
            u.children = {"subpixel": self.fc(f"{p}.subpixel", W, c * a, "lrelu",
                                              init_kwargs=dict(activation="lrelu")), "res_fc": res_fc}
            ups[str(i)] = u
        heads = {}
        out_keys = E()
        for kind in ("anchors", "gaussians"):
            md = nn.ModuleDict()
            for f, d in FIELDS:
                w_init = {"scale": 0.1, "rotation": 0.1}.get(f, 1.0)
                b_init = -1.0 if f == "scale" else 0.0
                out_keys[f] = E(out_dim=d, weight_init=w_init, lr_mult=1.0, bias_init=b_init)
                md._modules[f] = self.module_list({str(i): self.fc(
                    f"point_gen.{kind}.{f}.{i}", c, d, lr=1.0, init_args=(), init_kwargs=dict(
                        in_features=c, out_features=d, lr_multiplier=1.0, activation="linear",
                        weight_init=w_init, bias_init=b_init)) for i, c in enumerate(s.channels)})
            heads[kind] = md
        pg.children = {"conv_in": conv_in, "transformer": tr, "upsample_layers": self.module_list(ups),
                       **heads}
        pg.attrs = dict(n_transformer=s.levels, upsample_ratio=[1, 4, 4, 4, 2, 2, 2, 2],
                        upsample_ratio_accum=[1, 4, 16, 64, 128, 256, 512, 1024],
                        num_ws=0 if june else s.num_ws, _out_keys=out_keys,
                        **({"xyz_output_scale": 0.1} if june else {}),
                        percent_dense=np.float64(s.percent_dense), split_ratio=np.float64(s.split_ratio))
        pg.attrs["upsample_ratio"] = list(s.ratios) + [2] * (8 - s.levels)

        mp = self.node("MappingNetwork", "networks_stylegan2", "mapping_network", dict(
            z_dim=s.z_dim, c_dim=s.c_dim, w_dim=s.w_dim, num_ws=s.num_ws, num_layers=s.mapping_layers,
            w_avg_beta=0.998), init_kwargs=dict(z_dim=s.z_dim, c_dim=s.c_dim, w_dim=s.w_dim, num_ws=s.num_ws,
                                                num_layers=s.mapping_layers))
        mp.tensor("w_avg", (s.w_dim,), "buffer")
        mp.children = {"embed": self.fc("mapping_network.embed", s.c_dim, s.w_dim)}
        dims = [s.z_dim + s.w_dim] + [s.w_dim] * s.mapping_layers
        for k in range(s.mapping_layers):
            mp.children[f"fc{k}"] = self.fc(f"mapping_network.fc{k}", dims[k], dims[k + 1], "lrelu", lr=0.01,
                                             init_kwargs=dict(activation="lrelu", lr_multiplier=0.01))
        G.children = {"point_gen": pg, "mapping_network": mp}

        renderer = ns.Renderer()
        renderer.__dict__.update(
            sh_degree=0, white_background=True, radius=1, bg_color=torch.ones(3),
            scaling_activation=torch.exp, scaling_inverse_activation=torch.log,
            covariance_activation=ns.build_cov,
            opacity_activation=torch.sigmoid, inverse_opacity_activation=ns.inverse_sigmoid,
            rotation_activation=F.normalize, active_sh_degree=0, max_sh_degree=0)
        G.attrs = dict(z_dim=s.z_dim, c_dim=s.c_dim, w_dim=s.w_dim, img_channels=3, resolution=R,
                       rendering_kwargs=rendering, custom_options=options, num_pts=s.points,
                       renderer_gaussian3d=renderer, **({} if june else {"num_ws": s.num_ws}))
        return G


def official_spec(s: OfficialSizes) -> dict[str, tuple[tuple[int, ...], str, torch.dtype]]:
    """Official G_ema state_dict names (in state_dict order) -> (shape, 'param'|'buffer', dtype)."""
    spec = {}

    def get(name, shape, kind, dtype):
        spec[name] = (shape, kind, dtype)

    ns = types.SimpleNamespace(EasyDict=dict, Renderer=types.SimpleNamespace, build_cov=None,
                               inverse_sigmoid=None)
    Writer(s, get, ns, Path("/nonexistent")).build()
    return spec


def official_values(s: OfficialSizes, seed: int = 0) -> dict[str, torch.Tensor]:
    """Plausible random values for every official tensor (trained-looking, not init: layer scales on)."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(shape, generator=g)

    out = {}
    for name, (shape, _, dtype) in official_spec(s).items():
        if name == "_xyz":
            t = randn(*shape) * 0.6
        elif name == "dataset_label_std":
            t = torch.rand(shape, generator=g)
        elif name.endswith(("scale_init", "scale_threshold")):
            t = torch.full(shape, s.scale_threshold)
        elif name.endswith("rotation_init"):
            t = torch.tensor([1, 0, 0, 0], dtype=torch.int64)
        elif name.endswith("color_init"):
            t = torch.zeros(shape)
        elif name.endswith("opacity_init"):
            x = torch.tensor([0.1])
            t = torch.log(x / (1 - x))  # the official inverse_sigmoid, in float32
        elif name.endswith("ffm.linear.weight"):
            t = (torch.rand(shape, generator=g) * 2 - 1) * math.sqrt(3)
        elif name == "mapping_network.w_avg":
            t = randn(*shape) * 0.5
        elif name.startswith("mapping_network.fc"):
            t = randn(*shape) * (100.0 if name.endswith("weight") else 10.0)  # stored / lr_mul 0.01
        elif name.endswith("gamma.bias"):
            t = 1 + 0.1 * randn(*shape)
        elif name.endswith("bias"):
            t = 0.1 * randn(*shape)
        elif ".ls_" in name or ".anchors." in name or ".gaussians." in name:
            t = 0.4 * randn(*shape)
        else:
            t = randn(*shape)
        out[name] = t.to(dtype).reshape(shape)
    return out


def write_official_pickle(path: Path, s: OfficialSizes = SMALL, tensors: dict | None = None, *,
                          marker: Path | None = None, entries: str = "full",
                          extra_tensors: dict | None = None, attr_overrides: dict | None = None,
                          source_overrides: dict | None = None) -> dict:
    """Write an official-format snapshot; returns the tensors used (official names).

    entries: "full" (training_set_kwargs, G, D, G_ema, optimizer triples) or "G_ema" (training_set_kwargs +
    G_ema only). extra_tensors: {official name: tensor} added as parameters of the named module;
    attr_overrides: {module path: {attr: value}} ('' = the generator itself); source_overrides: {official
    module (e.g. "transformer_inter"): source text}.
    """
    tensors = official_values(s) if tensors is None else tensors
    marker = marker or path.with_name("EXECUTED")

    with fake_official_modules() as ns:
        def tree(training):
            w = Writer(s, lambda name, shape, kind, dtype: tensors.get(name), ns, marker, training)
            w.sources.update(source_overrides or {})
            root = w.build()
            for name, t in (extra_tensors or {}).items():
                mod, _, key = name.rpartition(".")
                w.nodes[mod].params[key] = t
            for mod, attrs in (attr_overrides or {}).items():
                w.nodes[mod].attrs.update(attrs)
            return root, w

        G_ema, w = tree(False)
        top = {"training_set_kwargs": dict(
            class_name="training.dataset.ImageFolderDataset", path="/data/FFHQC/512",
            camera_sample_mode="smile_pose_rebalancing", resolution=s.resolution, use_labels=True,
            max_size=119955, xflip=True, random_seed=0)}
        if entries == "full":
            G, _ = tree(True)
            D = w.node("Discriminator", "discriminator", "<D>", dict(img_resolution=s.resolution),
                       init_kwargs=dict(c_dim=25, img_resolution=s.resolution, img_channels=3))
            D.children = {"out": w.fc("<D>.out", 8, 1)}
            D.children["out"].params = {"weight": nn.Parameter(torch.randn(1, 8), requires_grad=False),
                                        "bias": nn.Parameter(torch.zeros(1), requires_grad=False)}

            def adam(n):
                return {"state": {0: {"step": torch.tensor(10.0), "exp_avg": torch.randn(n),
                                      "exp_avg_sq": torch.rand(n)}},
                        "param_groups": [{"lr": 0.0025, "betas": [0, 0.99], "eps": 1e-8, "weight_decay": 0,
                                          "amsgrad": False, "maximize": False, "foreach": None,
                                          "capturable": False, "differentiable": False, "fused": None,
                                          "params": [0]}]}

            top.update(G=G, D=D, G_ema=G_ema, Gboth_opt=adam(3), Gboth_interval=None, Gboth_module=G,
                       Dmain_opt=adam(2), Dmain_interval=None, Dmain_module=D, Dreg_opt=adam(2),
                       Dreg_interval=16, Dreg_module=D)
        else:
            top["G_ema"] = G_ema
        with open(path, "wb") as f:
            pickle.dump(top, f)  # the official writer: plain pickle.dump, default protocol
    return tensors


# ================================================================================== the reference forward


def _fc(T, name, x, act="linear", lr=1.0):
    """Official FullyConnectedLayer: w * lr/sqrt(in); bias * lr; lrelu = leaky 0.2 times sqrt 2."""
    w = T[name + ".weight"] * (lr / math.sqrt(T[name + ".weight"].shape[1]))
    y = x @ w.T + T[name + ".bias"] * lr
    return y if act == "linear" else F.leaky_relu(y, 0.2) * math.sqrt(2)


def _norm2(x):
    return x * (x.square().mean(1, keepdim=True) + 1e-8).rsqrt()


def reference_mapping(T, s: OfficialSizes, z, psi=1.0):
    B = z.shape[0]
    y = _norm2(_fc(T, "mapping_network.embed", torch.zeros(B, s.c_dim, dtype=z.dtype)))  # c is always zero
    x = torch.cat([_norm2(z), y], 1)
    for k in range(s.mapping_layers):
        x = _fc(T, f"mapping_network.fc{k}", x, "lrelu", 0.01)
    ws = x[:, None].repeat(1, s.num_ws, 1)
    return ws if psi == 1 else T["mapping_network.w_avg"].lerp(ws, psi)


def reference_pe(T, p):
    """LFF first, then the constant PE in its closed form: the official grid (x=0, y=p) reads the two middle
    columns of the table with weight (1 - |p|/2) each half, per axis; summed over axes / sqrt 3."""
    lff = torch.sin(p @ T["point_gen.conv_in.learnable_pe.ffm.linear.weight"].T
                    + T["point_gen.conv_in.learnable_pe.ffm.linear.bias"])
    table = T["point_gen.conv_in.const_pe.const_pe"]  # [3, D, 1, R]
    mid = table.shape[-1] // 2
    col = 0.5 * (table[:, :, 0, mid - 1] + table[:, :, 0, mid])  # [3, D]
    const = sum((1 - p[..., a : a + 1].abs() / 2) * col[a] for a in range(3)) / math.sqrt(3)
    return torch.cat([lff, const], -1)


def official_grid_sample_pe(table, p):
    """The official constant-PE call, step by step (notes section 5)."""
    B, L, _ = p.shape
    coord = p.permute(0, 2, 1).reshape(3 * B, 1, L, 1)
    grid = torch.cat([torch.zeros_like(coord), coord], -1)
    out = F.grid_sample(table.repeat(B, 1, 1, 1), grid, mode="bilinear", align_corners=False)
    return out.reshape(B, 3, table.shape[1], 1, L).sum(1)[:, :, 0].permute(0, 2, 1) / math.sqrt(3)


def _block(T, pre, x, w, heads):
    def adanorm(k, x):
        mean = x.mean(1, keepdim=True)
        std = x.std(1, keepdim=True, unbiased=False)
        return _fc(T, f"{pre}.{k}.gamma", w) * ((x - mean) / (std + 1e-8)) + _fc(T, f"{pre}.{k}.beta", w)

    def attn(h):
        B, L, C = h.shape
        d = C // heads
        qkv = _fc(T, f"{pre}.attn.c_qkv", h).view(B, L, heads, 3 * d)
        q, k, v = qkv[..., :d] * d**-0.25, qkv[..., d : 2 * d] * d**-0.25, qkv[..., 2 * d :]
        a = torch.einsum("blhd,bmhd->bhlm", q, k).softmax(-1)
        return _fc(T, f"{pre}.attn.c_proj", torch.einsum("bhlm,bmhd->blhd", a, v).reshape(B, L, C))

    def mlp(h):
        return _fc(T, f"{pre}.mlp.c_proj", F.gelu(_fc(T, f"{pre}.mlp.c_fc", h)) * math.sqrt(2))

    x = x + attn(adanorm("ln_1", x)) * _fc(T, f"{pre}.ls_1", w)
    return x + mlp(adanorm("ln_2", x)) * _fc(T, f"{pre}.ls_2", w)


def _soft(v):
    return 20 * torch.tanh(0.05 * v)


def _rotation_matrix(q):
    r, x, y, z = q.unbind(-1)
    return torch.stack([
        torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - r * z), 2 * (x * z + r * y)], -1),
        torch.stack([2 * (x * y + r * z), 1 - 2 * (x * x + z * z), 2 * (y * z - r * x)], -1),
        torch.stack([2 * (x * z - r * y), 2 * (y * z + r * x), 1 - 2 * (x * x + y * y)], -1)], -2)


def _child(raw, prev, s: OfficialSizes):
    q = prev["rotation"]
    M = _rotation_matrix(q / (q.norm(dim=-1, keepdim=True) + 1e-3)) * torch.exp(prev["scale"])[..., None, :]
    xyz = torch.einsum("...ij,...j->...i", M, torch.tanh(raw["xyz"])) + prev["xyz"]
    split = torch.log(torch.exp(prev["scale"]) / s.split_ratio).clamp(-100, 0)
    big = torch.exp(prev["scale"]).amax(-1, keepdim=True) > s.percent_dense
    base = torch.where(big, split, prev["scale"])
    return {"xyz": xyz, "scale": _soft(base - F.softplus(-raw["scale"])),
            **{k: _soft(raw[k] + prev[k]) for k in ("rotation", "color", "opacity")}}


def reference_synthesis(T, s: OfficialSizes, ws):
    """Official synthesis (notes section 5) on official tensor names; returns (Gaussians dict, anchor xyz)."""
    B, dt = ws.shape[0], ws.dtype
    x = reference_pe(T, torch.tanh(T["_xyz"])[None].repeat(B, 1, 1))
    blocks = [f"point_gen.transformer.first_layers.{j}" for j in range(s.num_first)] + [
        f"point_gen.transformer.resblocks.{j}" for j in range(s.levels - 1)]
    feats = []
    for k, pre in enumerate(blocks):
        x = _block(T, pre, x, ws if s.release == "june" else ws[:, k : k + 1], s.heads)
        if k >= s.num_first - 1:
            feats.append(x)
    prev = {"xyz": torch.zeros(B, 1, 3, dtype=dt), "scale": torch.full((B, 1, 3), s.init_log_scale, dtype=dt),
            "rotation": T["point_gen.rotation_init"].to(dt).expand(B, 1, 4),
            "color": T["point_gen.color_init"].expand(B, 1, 3),
            "opacity": T["point_gen.opacity_init"].expand(B, 1, 1)}
    L, gaussians, first_anchors = s.points, [], None
    for i, (c, acc) in enumerate(zip(s.channels, s.acc)):
        t = feats[i]
        res = t if i == 0 else _fc(T, f"point_gen.upsample_layers.{i}.res_fc", t)
        sub = _fc(T, f"point_gen.upsample_layers.{i}.subpixel", t, "lrelu").reshape(B, L * acc, c)
        f = (res.repeat_interleave(acc, 1) + sub) / math.sqrt(2)
        if i > 0:
            prev = {k: v.repeat_interleave(s.ratios[i], 1) for k, v in prev.items()}
        if i < s.levels - 1:
            raw = {k: _fc(T, f"point_gen.anchors.{k}.{i}", f) for k, _ in FIELDS}
            if i == 0:
                thr = s.scale_threshold
                sc = prev["scale"] + raw["scale"]
                anchors = {"xyz": 0.2 * raw["xyz"], "scale": _soft(thr - F.softplus(thr - sc)),
                           **{k: _soft(raw[k] + prev[k]) for k in ("rotation", "color", "opacity")}}
                first_anchors = anchors["xyz"]
                prev = anchors
            else:
                anchors = _child(raw, prev, s)
        gaussians.append(_child({k: _fc(T, f"point_gen.gaussians.{k}.{i}", f) for k, _ in FIELDS}, prev, s))
        if i < s.levels - 1:
            prev = anchors
    g = {k: torch.cat([p[k] for p in gaussians], 1) for k, _ in FIELDS}
    g["xyz"] = g["xyz"].clamp(-0.5, 0.5)
    return g, first_anchors


def assert_matches_reference(out, ref, anchors, atol=5e-5):
    """float64 on both sides except our AdaptiveNorm, which (like the official one) runs in float32."""
    got = {"xyz": out.gaussians.means, "scale": out.gaussians.log_scales, "rotation": out.gaussians.quats,
           "color": out.gaussians.sh[..., 0, :], "opacity": out.gaussians.opacity_logits[..., None]}
    for k, v in ref.items():
        torch.testing.assert_close(got[k], v, atol=atol, rtol=atol, msg=lambda m, k=k: f"{k}: {m}")
    torch.testing.assert_close(out.anchors, anchors, atol=atol, rtol=atol)


# ================================================================================== tests


@pytest.fixture(scope="module")
def small_pickles(tmp_path_factory) -> dict:
    """One fixture file per release variant (written once per module)."""
    d = tmp_path_factory.mktemp("official")
    out = {}
    for key, sizes in {"head": SMALL, "june": dataclasses.replace(SMALL, release="june"),
                       "minus7": dataclasses.replace(SMALL, release="june", log_scale_src="-7.")}.items():
        path = d / f"{key}.pkl"
        out[key] = (path, sizes, write_official_pickle(path, sizes, marker=d / "EXECUTED"))
    out["marker"] = d / "EXECUTED"
    return out


class _ImportBlocker(importlib.abc.MetaPathFinder):
    def __init__(self):
        self.attempts = []

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in OFFICIAL_PACKAGES or name.startswith(OFFICIAL_MODULES):
            self.attempts.append(name)
            raise ImportError(f"test: importing {name} is forbidden")
        return None


@contextlib.contextmanager
def no_official_imports():
    """Fails the test if anything imports the official packages (or finds them in sys.modules). Our own
    ``training.discriminator`` shares a name with an official module; only modules from outside this
    repository (or imported during the test) count."""
    ours = str(Path(__file__).resolve().parents[2])

    def official(name: str) -> bool:
        return name.startswith(OFFICIAL_PACKAGES + OFFICIAL_MODULES) and not str(
            getattr(sys.modules.get(name), "__file__", "") or "").startswith(ours)

    before = set(sys.modules)
    for name in before:
        assert not official(name), f"{name} already imported"
    blocker = _ImportBlocker()
    sys.meta_path.insert(0, blocker)
    try:
        yield blocker
    finally:
        sys.meta_path.remove(blocker)
    assert not blocker.attempts, f"tried to import {blocker.attempts}"
    leaked = [n for n in set(sys.modules) - before if n.startswith(OFFICIAL_PACKAGES + OFFICIAL_MODULES)]
    assert not leaked, f"{leaked} in sys.modules"


def _state_of(T: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.double() if v.is_floating_point() else v for k, v in T.items()}


@pytest.mark.parametrize("variant", ["head", "june"])
def test_fixture_loads_and_every_tensor_lands_where_the_mapping_says(small_pickles, variant):
    path, sizes, T = small_pickles[variant]
    with no_official_imports():
        G, info = load_official_pickle(path)
    assert not small_pickles["marker"].exists(), "embedded module_src was executed"
    assert not G.training and next(G.parameters()).device.type == "cpu"
    cfg = G.config
    assert info.source_key == "G_ema" and info.resolution == 64 and cfg.official_pe_lookup
    got = (cfg.width, cfg.num_points, cfg.heads, cfg.level_channels, cfg.num_blocks)
    assert got == (32, 16, 2, (32, 16, 8), 8)
    # the constants come from the file (they differ from what the config would derive)
    assert cfg.split_ratio == sizes.split_ratio and cfg.split_min_scale == sizes.percent_dense
    assert cfg.scale_threshold == pytest.approx(sizes.scale_threshold, abs=1e-6)
    ours = G.state_dict()
    seen = set()
    for name, t in T.items():
        m = official_to_ours(name, cfg.num_first_blocks, cfg.num_levels)
        assert m.kind != "unknown", name
        if m.kind != "tensor":
            continue
        got = ours[m.ours] if m.rows is None else ours[m.ours][m.rows[0] : m.rows[1]]
        assert torch.equal(got, t), name
        seen.add(m.ours)
    assert seen == set(ours), f"never filled: {set(ours) - seen}"
    dropped = set(info.dropped)
    assert {"mapping_network.embed.weight", "dataset_label_std", "point_gen.scale_init"} <= dropped
    assert {f"point_gen.anchors.{f}.2.{p}" for f, _ in FIELDS for p in ("weight", "bias")} <= dropped
    assert {"D", "G", "Gboth_opt", "Dreg_opt"} <= set(info.ignored_entries)
    spec = official_spec(sizes)
    assert info.official_parameters == sum(t.numel() for n, t in T.items() if spec[n][1] == "param")
    assert info.fc_layers_checked > 0 and info.training_set_kwargs["resolution"] == 64


@pytest.mark.parametrize("variant", ["head", "june", "minus7"])
def test_loaded_generator_matches_an_independent_reference_forward(small_pickles, variant):
    path, sizes, T = small_pickles[variant]
    G, info = load_official_pickle(path)
    G = G.double()
    T = _state_of(T)
    z = torch.randn(3, sizes.z_dim, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    for psi in (1.0, 0.7):
        with torch.no_grad():
            out = G(z, truncation_psi=psi)
        ws = reference_mapping(T, sizes, z, psi)
        torch.testing.assert_close(out.ws, ws, atol=1e-10, rtol=1e-10)
        ref, anchors = reference_synthesis(T, sizes, ws)
        assert_matches_reference(out, ref, anchors)
    assert out.gaussians.num_gaussians == 16 * (1 + 4 + 16)


def test_per_block_ws_reach_the_official_blocks(small_pickles):
    """first_layers.j read ws[:, j], resblocks.j read ws[:, 6 + j] (HEAD layout)."""
    path, sizes, T = small_pickles["head"]
    G, info = load_official_pickle(path)
    G, T = G.double(), _state_of(T)
    ws = torch.randn(2, sizes.blocks, sizes.w_dim, generator=torch.Generator().manual_seed(2),
                     dtype=torch.float64)
    with torch.no_grad():
        out = G.synthesis(ws)
    ref, anchors = reference_synthesis(T, sizes, ws)
    assert_matches_reference(out, ref, anchors)


def test_official_pe_lookup_equals_the_official_formula(small_pickles):
    path, sizes, T = small_pickles["head"]
    G, _ = load_official_pickle(path)
    p = torch.rand(2, sizes.points, 3, generator=torch.Generator().manual_seed(3)) * 1.98 - 0.99
    with torch.no_grad():
        ours = G.encoding(p)
    table = T["point_gen.conv_in.const_pe.const_pe"]
    mid = sizes.pe_res // 2
    closed = sum((1 - p[..., a : a + 1].abs() / 2) * table[a, :, 0, mid - 1 : mid + 1].mean(-1)
                 for a in range(3)) / math.sqrt(3)
    torch.testing.assert_close(ours[..., sizes.width // 2 :], closed, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(official_grid_sample_pe(table, p), closed, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours, reference_pe(T, p), atol=1e-5, rtol=1e-5)


def test_release_detection_june_vs_per_block(small_pickles):
    _, june = load_official_pickle(small_pickles["june"][0])
    _, head = load_official_pickle(small_pickles["head"][0])
    assert (june.num_ws, june.ws_layout, june.config.ws_layout, june.config.num_ws) == (1, "single", "single",
                                                                                           1)
    assert "June 2025" in june.release and "xyz_output_scale" in june.release
    assert (head.num_ws, head.ws_layout, head.config.num_ws) == (8, "per_block", 8)
    assert "per transformer block" in head.release
    for info in (june, head):
        assert info.initial_anchor_log_scale == -5.0 and info.log_scale_from_source and not info.warnings
        assert "\n" in info.summary()


def test_initial_log_scale_read_from_the_embedded_source(small_pickles, tmp_path):
    _, info = load_official_pickle(small_pickles["minus7"][0])
    assert info.initial_anchor_log_scale == -7.0 and info.config.initial_anchor_log_scale == -7.0
    assert "-7" in info.release and info.log_scale_from_source
    path = tmp_path / "nosrc.pkl"
    write_official_pickle(path, dataclasses.replace(SMALL, log_scale_src=""), entries="G_ema")
    _, info = load_official_pickle(path)
    assert info.initial_anchor_log_scale == -5.0 and not info.log_scale_from_source
    assert any("log-scale not recognised" in w for w in info.warnings)


def test_disagreeing_source_hint_is_a_warning(tmp_path):
    """A per-block transformer source with num_ws = 1 in the state: the state wins, with a warning."""
    path = tmp_path / "mixed.pkl"
    per_block_src = official_sources(SMALL, tmp_path / "EXECUTED")["transformer_inter"]
    write_official_pickle(path, dataclasses.replace(SMALL, release="june"), entries="G_ema",
                          source_overrides={"transformer_inter": per_block_src})
    _, info = load_official_pickle(path)
    assert info.ws_layout == "single" and any("per-block" in w for w in info.warnings)


# ---------------------------------------------------------------------------------------- clear refusals


def _small_state():
    return official_values(SMALL), dataclasses.replace(
        official_preset(64, "per_block"), num_points=16, width=32, heads=2, level_channels=(32, 16, 8),
        z_dim=32, w_dim=32, pe_table_res=16, official_pe_lookup=True,
        level0_max_log_scale=SMALL.scale_threshold, split_min_scale_value=SMALL.percent_dense,
        split_ratio_value=SMALL.split_ratio)


def test_state_conversion_lists_missing_misshaped_and_unknown_tensors_by_name():
    T, cfg = _small_state()
    ours, dropped = official_state_to_ours(T, cfg)
    Generator(cfg).load_state_dict(ours, strict=True)
    assert "mapping_network.embed.weight" in dropped

    bad = dict(T)
    del bad["point_gen.transformer.resblocks.1.mlp.c_fc.bias"]
    del bad["point_gen.gaussians.opacity.2.weight"]
    bad["point_gen.transformer.first_layers.3.ls_1.weight"] = torch.zeros(32, 33)
    bad["point_gen.upsample_layers.1.subpixel.bias"] = torch.zeros(5)
    bad["point_gen.extra_head.weight"] = torch.zeros(3)
    bad["point_gen.upsample_layers.7.res_fc.weight"] = torch.zeros(8, 32)
    with pytest.raises(LegacyPickleError) as e:
        official_state_to_ours(bad, cfg)
    msg = str(e.value)
    for name in ("point_gen.transformer.resblocks.1.mlp.c_fc.bias", "point_gen.gaussians.opacity.2.weight",
                 "point_gen.transformer.first_layers.3.ls_1.weight has shape [32, 33], expected [32, 32]",
                 "point_gen.upsample_layers.1.subpixel.bias has shape [5], expected [64]",
                 "point_gen.extra_head.weight", "point_gen.upsample_layers.7.res_fc.weight"):
        assert name in msg, (name, msg)
    assert "missing tensors" in msg and "wrong shapes" in msg and "unexpected tensors" in msg


def test_constants_our_generator_cannot_represent_are_refused():
    T, cfg = _small_state()
    bad = dict(T, **{"point_gen.opacity_init": torch.tensor([0.5])})
    with pytest.raises(LegacyPickleError, match=r"point_gen\.opacity_init = \[0\.5\]"):
        official_state_to_ours(bad, cfg)


def test_missing_tensor_in_a_pickle_is_named(tmp_path):
    T = official_values(SMALL)
    del T["point_gen.transformer.first_layers.4.attn.c_proj.weight"]
    path = tmp_path / "missing.pkl"
    write_official_pickle(path, SMALL, T, entries="G_ema")
    missing = r"missing tensors: point_gen\.transformer\.first_layers\.4\.attn\.c_proj\.weight"
    with pytest.raises(LegacyPickleError, match=missing):
        load_official_pickle(path)


def test_extra_unknown_tensor_in_a_pickle_is_named(tmp_path):
    path = tmp_path / "extra.pkl"
    write_official_pickle(path, SMALL, entries="G_ema",
                          extra_tensors={"point_gen.transformer.mystery": nn.Parameter(torch.zeros(4))})
    with pytest.raises(LegacyPickleError, match=r"unexpected tensors.*point_gen\.transformer\.mystery"):
        load_official_pickle(path)


def test_layer_convention_mismatch_is_refused(tmp_path):
    path = tmp_path / "act.pkl"
    write_official_pickle(path, SMALL, entries="G_ema",
                          attr_overrides={"point_gen.transformer.resblocks.0.ls_2": {"activation": "lrelu"}})
    with pytest.raises(LegacyPickleError, match=r"resblocks\.0\.ls_2: activation 'lrelu'"):
        load_official_pickle(path)


@pytest.mark.parametrize("class_name, src, expect", [
    ("TriPlaneGenerator", "class TriPlaneGenerator(torch.nn.Module): ...", "EG3D"),
    ("Generator", "class SynthesisNetwork(torch.nn.Module): ...\nclass Generator: ...",
     "StyleGAN2/StyleGAN3"),
    ("GaussianGenerator", "# gaussian splatting GAN", "other than CGS-GAN"),
])
def test_other_persistence_generators_are_named_and_refused(tmp_path, class_name, src, expect):
    path = tmp_path / "other.pkl"
    with fake_official_modules() as ns:
        class Other:
            def __reduce__(self):
                state = dict(nn.Module().__dict__, _init_args=(), _init_kwargs={})
                return (ns.reconstruct, (dict(type="class", version=6, module_src=src, class_name=class_name,
                                              state=state),))

        path.write_bytes(pickle.dumps({"G_ema": Other(), "G": Other()}))
    assert is_official_pickle(path)
    with pytest.raises(LegacyPickleError, match=f"{expect}.*not supported"):
        load_official_pickle(path)


def test_unsupported_persistence_version_is_refused(tmp_path):
    path = tmp_path / "v5.pkl"
    with fake_official_modules() as ns:
        class V5:
            def __reduce__(self):
                return (ns.reconstruct, (dict(type="class", version=5, module_src="",
                                              class_name="CGSGenerator", state={}),))

        path.write_bytes(pickle.dumps({"G_ema": V5()}))
    with pytest.raises(LegacyPickleError, match="version 5"):
        load_official_pickle(path)


# ---------------------------------------------------------------------------------------- hostile files


class _Hostile:
    def __init__(self, reduce):
        self.reduce = reduce

    def __reduce__(self):
        return self.reduce


@pytest.mark.parametrize("what", ["os.system", "eval", "exec", "getattr_other_object", "getattr_other_name",
                                  "numpy_object_dtype", "torch_load", "subclass_rebuild"])
def test_hostile_globals_are_refused_and_never_run(tmp_path, what):
    import os

    marker = tmp_path / "PWNED"
    cmd = f"open({str(marker)!r}, 'w').write('x')"
    reduce = {
        "os.system": (os.system, (f"touch {marker}",)),
        "eval": (eval, (cmd,)),
        "exec": (exec, (cmd,)),
        "getattr_other_object": (getattr, (OrderedDict, "fromkeys")),
        "getattr_other_name": (getattr, (torch._C._VariableFunctionsClass, "ones")),
        "numpy_object_dtype": (np.dtype, ("O", False, True)),
        "torch_load": (torch.load, (str(marker),)),
        "subclass_rebuild": (torch._tensor._rebuild_from_type_v2, (torch.zeros, torch.Tensor, (1,), {})),
    }[what]
    path = tmp_path / "hostile.pkl"
    write_official_pickle(path, SMALL, entries="G_ema", marker=tmp_path / "EXECUTED",
                          attr_overrides={"point_gen": {"payload": _Hostile(reduce)}})
    assert is_official_pickle(path)  # it looks official
    with no_official_imports(), pytest.raises(UnsafeLegacyPickleError) as e:
        load_official_pickle(path)
    assert not marker.exists() and not (tmp_path / "EXECUTED").exists()
    msg = str(e.value)
    assert "refused" in msg and "nothing" in msg.lower()
    expected = {"os.system": f"{os.system.__module__}.system", "eval": "builtins.eval",
                "exec": "builtins.exec",
                "getattr_other_object": "builtins.getattr(type, 'fromkeys')",
                "getattr_other_name": "builtins.getattr(torch._C._VariableFunctionsClass, 'ones')",
                "numpy_object_dtype": "numpy.dtype('O')", "torch_load": "torch.serialization.load",
                "subclass_rebuild": "torch._tensor._rebuild_from_type_v2"}[what]
    assert expected in msg


def test_hostile_storage_blob_is_refused_by_the_weights_only_loader(tmp_path):
    import os

    marker = tmp_path / "PWNED"
    buf = io.BytesIO()
    torch.save(_Hostile((os.system, (f"touch {marker}",))), buf, _use_new_zipfile_serialization=False)
    path = tmp_path / "blob.pkl"
    write_official_pickle(path, SMALL, entries="G_ema", attr_overrides={
        "": {"payload": _Hostile((torch.storage._load_from_bytes, (buf.getvalue(),)))}})
    with pytest.raises(UnsafeLegacyPickleError, match="weights_only"):
        load_official_pickle(path)
    assert not marker.exists()


def test_cuda_tagged_storages_load_on_a_cpu_only_machine(tmp_path):
    """Official snapshots are written on the GPU: every storage blob says 'cuda:0'."""
    t = torch.randn(4, 3)

    class CudaTagged:
        def __reduce__(self):
            b = _legacy_blob(t)
            assert b.count(b"X\x03\x00\x00\x00cpu") == 1
            b = b.replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
            storage = _Hostile((torch.storage._load_from_bytes, (b,)))
            return (torch._utils._rebuild_tensor_v2, (storage, 0, (4, 3), (3, 1), False, OrderedDict()))

    path = tmp_path / "cuda.pkl"
    path.write_bytes(pickle.dumps({"t": CudaTagged()}))
    got = read_official_pickle(path)["t"]
    assert got.device.type == "cpu" and torch.equal(got, t)


def _legacy_blob(t: torch.Tensor) -> bytes:
    """The bytes torch's own TypedStorage.__reduce__ gives for ``_load_from_bytes`` (a legacy torch.save)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "TypedStorage is deprecated"
        fn, (blob,) = t.storage().__reduce__()
    assert fn is torch.storage._load_from_bytes
    return blob


def test_tensor_views_outside_their_storage_are_refused(tmp_path):
    class OutOfBounds:
        def __reduce__(self):
            storage = _Hostile((torch.storage._load_from_bytes, (_legacy_blob(torch.zeros(6)),)))
            return (torch._utils._rebuild_tensor_v2, (storage, 4, (2, 3), (3, 1), False, OrderedDict()))

    path = tmp_path / "oob.pkl"
    path.write_bytes(pickle.dumps({"t": OutOfBounds()}))
    with pytest.raises(LegacyPickleError, match="runs past its storage"):
        read_official_pickle(path)


@pytest.mark.parametrize("numpy_module", ["numpy._core.multiarray", "numpy.core.multiarray"])
def test_numpy_scalars_of_either_numpy_major_version(tmp_path, numpy_module):
    """numpy 2 writers name numpy._core.multiarray.scalar, numpy 1 writers numpy.core.multiarray.scalar."""
    values = {"f8": np.float64(0.25), "i8": np.int64(-3), "b1": np.bool_(True), "f4": np.float32(1.5)}
    raw = pickle.dumps(values, protocol=3)  # GLOBAL opcodes (protocol < 4) hold the module name as text
    path = tmp_path / "scalars.pkl"
    raw = raw.replace(b"cnumpy._core.multiarray\n", f"c{numpy_module}\n".encode())
    assert f"c{numpy_module}\nscalar\n".encode() in raw
    path.write_bytes(raw)
    got = read_official_pickle(path)
    assert got == {"f8": 0.25, "i8": -3, "b1": True, "f4": 1.5}
    assert [type(v) for v in got.values()] == [float, int, bool, float]


def test_is_official_pickle(small_pickles, tmp_path):
    assert is_official_pickle(small_pickles["head"][0])
    cases = {"plain.pkl": pickle.dumps({"G_ema": {"w": 1}}), "empty.pkl": b"",
             "junk.pkl": b"\x80\x04junk" * 1000, "text.pkl": b"hello world\n" * 100}
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buf)
    cases["torchsave.pt"] = buf.getvalue()
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        assert not is_official_pickle(tmp_path / name), name
    assert not is_official_pickle(tmp_path / "does-not-exist.pkl")
    with pytest.raises(LegacyPickleError):
        load_official_pickle(tmp_path / "plain.pkl")
    with pytest.raises(LegacyPickleError, match="empty"):
        load_official_pickle(tmp_path / "empty.pkl")


# ---------------------------------------------------------------------------------------- the real 512 layout


def test_official_512_name_and_shape_table_maps_completely(capsys):
    spec = official_spec(REAL512)
    params = {n: v for n, v in spec.items() if v[1] == "param"}
    buffers = {n: v for n, v in spec.items() if v[1] == "buffer"}
    # the notes' table (section 2): 379 entries = 372 parameters + 7 buffers; 61,610,712 (+551) elements
    assert (len(spec), len(params), len(buffers)) == (379, 372, 7)
    n_official = sum(math.prod(v[0]) for v in params.values())
    assert n_official == 61_610_712 and sum(math.prod(v[0]) for v in buffers.values()) == 551
    assert spec["point_gen.rotation_init"][2] == torch.int64
    assert spec["point_gen.upsample_layers.5.subpixel.weight"][0] == (4096, 512)
    assert "point_gen.upsample_layers.0.res_fc.weight" not in spec

    cfg = dataclasses.replace(official_preset(512, "per_block"), official_pe_lookup=True)
    kinds = {}
    for name in spec:
        m = official_to_ours(name, cfg.num_first_blocks, cfg.num_levels)
        assert m.kind != "unknown", name
        kinds.setdefault(m.kind, []).append(name)
    state = {n: torch.empty(shape, dtype=dt, device="meta") for n, (shape, _, dt) in spec.items()}
    ours, dropped = official_state_to_ours(state, cfg)
    with torch.device("meta"):
        G = Generator(cfg)
    shapes = {k: tuple(v.shape) for k, v in ours.items()}
    assert shapes == {k: tuple(v.shape) for k, v in G.state_dict().items()}
    G.load_state_dict(ours, strict=True, assign=True)
    assert set(dropped) == set(kinds["dropped"]) and len(kinds["config"]) == 4

    for name in G.state_dict():  # inverse mapping round-trips
        for official in ours_to_official(name):
            assert official_to_ours(official, 6, 6).ours == name
    n_ours = count_parameters(G)
    n_dropped = sum(math.prod(spec[n][0]) for n in kinds["dropped"] if spec[n][1] == "param")
    n_config = sum(math.prod(spec[n][0]) for n in kinds["config"] if spec[n][1] == "param")
    assert n_ours == n_official - n_dropped - n_config == 61_597_674
    dropped_params = [n for n in kinds["dropped"] if spec[n][1] == "param"]
    with capsys.disabled():
        print(f"\n512 reconciliation: official {n_official:,} parameters in {len(params)} tensors = ours "
              f"{n_ours:,} + dropped {n_dropped:,} ({', '.join(dropped_params)})")


def test_official_to_ours_examples():
    cases = {
        "point_gen.transformer.resblocks.2.ln_1.gamma.weight": ("transformer.blocks.8.norm1.gamma.weight",
                                                                None),
        "point_gen.transformer.first_layers.5.attn.c_qkv.bias": ("transformer.blocks.5.attn.qkv.bias", None),
        "point_gen.transformer.first_layers.0.mlp.c_proj.weight": ("transformer.blocks.0.mlp.fc2.weight",
                                                                   None),
        "point_gen.transformer.resblocks.0.ls_2.bias": ("transformer.blocks.6.scale2.bias", None),
        "point_gen.anchors.scale.1.weight": ("anchor_heads.1.fc.weight", (3, 6)),
        "point_gen.gaussians.opacity.5.bias": ("gaussian_heads.5.fc.bias", (13, 14)),
        "point_gen.upsample_layers.3.res_fc.weight": ("upsample.3.residual.weight", None),
        "point_gen.conv_in.const_pe.const_pe": ("encoding.table", None),
        "mapping_network.fc1.bias": ("mapping.layers.1.bias", None),
        "mapping_network.embed.bias": ("mapping.const", None),
        "_xyz": ("xyz_const", None),
    }
    for name, (ours, rows) in cases.items():
        m = official_to_ours(name, 6, 6)
        assert (m.kind, m.ours, m.rows) == ("tensor", ours, rows), name
    assert official_to_ours("point_gen.anchors.xyz.5.weight", 6, 6).kind == "dropped"
    assert official_to_ours("point_gen.anchors.xyz.5.weight", 6, 7).kind == "tensor"
    assert official_to_ours("point_gen.transformer.first_layers.6.ls_1.weight", 6, 6).kind == "unknown"
    assert official_to_ours("point_gen.scale_threshold").kind == "config"
    assert official_to_ours("D.b4.fc.weight").kind == "unknown"


@pytest.mark.gpu
def test_loads_onto_cuda_with_the_same_output(small_pickles):
    path, sizes, _ = small_pickles["head"]
    G, _ = load_official_pickle(path, device="cuda")
    assert all(t.is_cuda for t in (*G.parameters(), *G.buffers()))
    cpu, _ = load_official_pickle(path)
    z = torch.randn(2, sizes.z_dim, generator=torch.Generator().manual_seed(0))
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.no_grad():
            a, b = G(z.cuda()), cpu(z)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.testing.assert_close(a.gaussians.means.cpu(), b.gaussians.means, atol=1e-4, rtol=0)
    torch.testing.assert_close(a.gaussians.log_scales.cpu(), b.gaussians.log_scales, atol=1e-4, rtol=0)


@pytest.mark.slow
def test_real_512_pickle_round_trip(tmp_path):
    """The full-size official layout (G_ema only, ~250 MB on disk) loads and runs."""
    T = official_values(REAL512)
    path = tmp_path / "network-snapshot-512.pkl"
    write_official_pickle(path, REAL512, T, entries="G_ema")
    with no_official_imports():
        G, info = load_official_pickle(path)
    assert info.size_overrides == {} and info.config.num_gaussians == 240_128
    assert info.ws_layout == "per_block"
    assert info.official_parameters == 61_610_712 and info.loaded_parameters == 61_597_674
    assert torch.equal(G.transformer.blocks[10].norm2.beta.weight,
                       T["point_gen.transformer.resblocks.4.ln_2.beta.weight"])
    z = torch.randn(1, 512, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = G(z, truncation_psi=0.8)
    out.gaussians.validate()
    torch.testing.assert_close(out.ws, reference_mapping(T, REAL512, z, 0.8), atol=1e-4, rtol=1e-4)
    # the full official forward at the real sizes (8 heads x 64, 6 levels), in float64
    G, T = G.double(), _state_of(T)
    with torch.no_grad():
        out = G(z.double(), truncation_psi=0.8)
    ref, anchors = reference_synthesis(T, REAL512, reference_mapping(T, REAL512, z.double(), 0.8))
    assert_matches_reference(out, ref, anchors)
