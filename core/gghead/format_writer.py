"""Write checkpoints in GGHead's exact pickle format, with random (or given) weights: the stand-ins that tests,
GUI tests and benches load through the real entry point. Never used when loading.

No released GGHead file is available offline, so this re-creates the format from upstream's code as read
(gghead @6043d2b, eg3d fork @2dfe002; docs/gghead.md): a plain ``pickle.dump`` (default protocol) of
``{training_set_kwargs, G, D, G_ema[, augment_pipe]}`` holding whole module objects:

- ``GGHeadModel`` (plain ``nn.Module``, pickled by reference) with ``backbone`` (``GGHGenerator`` ->
  ``GGHSynthesisNetwork`` -> ``GGHSynthesisBlock`` b4 ... bP), the position ``torch.nn.Conv2d``, the template
  buffers, its ``_config`` (elias dataclasses), ``_uv_attribute_names`` (``GaussianAttribute`` enum members)
  and a 3DGS ``GaussianModel`` whose ``opacity_activation`` is a bound method of the model;
- EG3D's layers (``MappingNetwork``, ``FullyConnectedLayer``, ``SynthesisLayer``, ``ToRGBLayer``, the
  discriminator's) as persistent objects: ``eg3d.torch_utils.persistence._reconstruct_persistent_obj(meta)``
  with meta {type 'class', version 6, module_src, class_name, state};
- tensors pickled by torch itself (``_rebuild_parameter`` / ``_rebuild_tensor_v2`` / ``_load_from_bytes``),
  numpy float64 gains, ``torch.exp`` etc. as ``getattr(torch._C._VariableFunctionsClass, ...)``.

Upstream's classes are importable only while writing, as stand-in modules put into ``sys.modules`` and
removed afterwards; the embedded module sources are placeholders that create ``marker`` if executed. The
discriminator is structurally complete but small (8 channels): the loader never reads it.
"""

from __future__ import annotations

import math
import os
import pickle
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn

from core.gghead.config import PRESETS, GGHeadConfig
from core.gghead.format_objects import FIR, OMIT, Tree, upstream_modules
from core.gghead.template import UVTemplate, synthetic_template

__all__ = ["OMIT", "upstream_modules", "upstream_spec", "upstream_values", "write_gghead_checkpoint"]


# ============================================================================ the upstream tensor layout


def upstream_spec(config: GGHeadConfig, count: int) -> dict[str, tuple[tuple[int, ...], str]]:
    """``{upstream state_dict name: (shape, "param" | "buffer")}`` of ``GGHeadModel`` as upstream builds it
    (GGHGenerator: MappingNetwork(embed, fc0..), GGHSynthesisNetwork(b4..bP); the position conv; the template
    buffers with ``count`` UV samples). Written from upstream's construction rules, not from our modules."""
    c, out = config, {}
    embed = c.w_dim if c.c_dim else 0
    if c.c_dim:
        out["backbone.mapping.embed.weight"] = ((embed, c.c_dim), "param")
        out["backbone.mapping.embed.bias"] = ((embed,), "param")
    for i in range(c.mapping_layers):
        out[f"backbone.mapping.fc{i}.weight"] = ((c.w_dim, (c.z_dim + embed) if i == 0 else c.w_dim), "param")
        out[f"backbone.mapping.fc{i}.bias"] = ((c.w_dim,), "param")
    out["backbone.mapping.w_avg"] = ((c.w_dim,), "buffer")
    log2 = int(math.log2(c.plane_resolution))
    ch = {2 ** i: min(c.channel_base // 2 ** i, c.channel_max) for i in range(2, log2 + 1)}
    k = c.kernel_size
    for res in ch:
        b = f"backbone.synthesis.b{res}"
        out[f"{b}.resample_filter"] = ((4, 4), "buffer")
        cin, cout = (ch[res // 2] if res > 4 else 0), ch[res]
        if cin == 0:
            out[f"{b}.const"] = ((cout, res, res), "param")
        for name, i_ch in (("conv0", cin), ("conv1", cout)):
            if i_ch == 0:
                continue
            out[f"{b}.{name}.affine.weight"] = ((i_ch, c.w_dim), "param")
            out[f"{b}.{name}.affine.bias"] = ((i_ch,), "param")
            out[f"{b}.{name}.weight"] = ((cout, i_ch, k, k), "param")
            if c.use_noise:
                out[f"{b}.{name}.noise_const"] = ((res, res), "buffer")
                out[f"{b}.{name}.noise_strength"] = ((), "param")
            out[f"{b}.{name}.bias"] = ((cout,), "param")
            out[f"{b}.{name}.resample_filter"] = ((4, 4), "buffer")
        out[f"{b}.torgb.affine.weight"] = ((cout, c.w_dim), "param")
        out[f"{b}.torgb.affine.bias"] = ((cout,), "param")
        out[f"{b}.torgb.weight"] = ((c.map_channels, cout, 1, 1), "param")
        out[f"{b}.torgb.bias"] = ((c.map_channels,), "param")
    if c.use_zero_conv_position:
        out["_zero_conv_position.weight"] = ((3, 3, 1, 1), "param")
        out["_zero_conv_position.bias"] = ((3,), "param")
    out["_uv_grid"] = ((1, count, 1, 2), "buffer")
    out["_uv_position_map"] = ((3, c.plane_resolution, c.plane_resolution), "buffer")
    out["_flame_vertices"] = ((1, count, 3), "buffer")
    return out


def upstream_values(config: GGHeadConfig, template: UVTemplate, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors for :func:`upstream_spec` that look like a trained model's: StyleGAN initial weights
    (randn; the mapping layers' randn / lr_mul, as StyleGAN stores them, so that w depends on z), non-zero
    biases, noise strengths and position convolution (zero only at initialisation), affine biases near 1,
    toRGB weights scaled so the decoded attributes stay in their active ranges, and ``w_avg`` the mean w of
    these weights (what training's running average converges to), so truncation stays in distribution."""
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape: int, std: float = 1.0) -> torch.Tensor:
        return torch.randn(shape, generator=gen) * std

    out = {}
    for name, (shape, _) in upstream_spec(config, template.count).items():
        leaf = name.rsplit(".", 1)[-1]
        if name == "_uv_grid":
            t = template.uv_grid.float().clone()
        elif name == "_uv_position_map":
            t = template.uv_position_map.float().clone()
        elif name == "_flame_vertices":
            t = template.template_positions.float().clone()
        elif leaf == "resample_filter":
            t = FIR.clone()
        elif name.endswith("affine.bias"):
            t = 1.0 + randn(*shape, std=0.1)
        elif name.startswith("backbone.mapping.fc") and leaf == "weight":
            t = randn(*shape, std=1.0 / config.mapping_lr_mul)
        elif name.endswith("torgb.weight"):
            t = randn(*shape, std=0.3)
        elif name.startswith("_zero_conv_position"):
            t = randn(*shape, std=0.3)
        elif leaf in ("bias", "noise_strength"):
            t = randn(*shape, std=0.1)
        else:
            t = randn(*shape)
        out[name] = t.reshape(shape)
    out["backbone.mapping.w_avg"] = mean_w(config, out, gen)
    return out


def mean_w(config: GGHeadConfig, tensors: dict[str, torch.Tensor], gen: torch.Generator,
           samples: int = 4096) -> torch.Tensor:
    """``[w_dim]`` the mean w of the mapping held in ``tensors`` (upstream names) over ``samples`` z, with the
    frontal pose label: EG3D's mapping written out (2nd-moment normalisation of z and of the label embedding,
    equalised-lr layers, leaky ReLU 0.2 x sqrt 2), independent of :mod:`core.gghead.stylegan2`."""
    from core.camera import orbit_cameras

    c = config
    x = torch.randn(samples, c.z_dim, generator=gen, dtype=torch.float64)
    x = x * (x.square().mean(1, keepdim=True) + 1e-8).rsqrt()
    if c.c_dim:
        label = orbit_cameras(0.0, 0.0, c.conditioning_radius).to_label().double().reshape(1, -1)
        label = torch.zeros_like(label) if c.c_gen_conditioning_zero else label * c.c_scale
        W, b = (tensors[f"backbone.mapping.embed.{k}"].double() for k in ("weight", "bias"))
        y = label @ (W / math.sqrt(c.c_dim)).T + b
        y = y * (y.square().mean(1, keepdim=True) + 1e-8).rsqrt()
        x = torch.cat([x, y.expand(samples, -1)], dim=1)
    for i in range(c.mapping_layers):
        W, b = (tensors[f"backbone.mapping.fc{i}.{k}"].double() for k in ("weight", "bias"))
        x = x @ (W * (c.mapping_lr_mul / math.sqrt(W.shape[1]))).T + b * c.mapping_lr_mul
        x = torch.nn.functional.leaky_relu(x, 0.2) * math.sqrt(2)
    return x.mean(0).float()



def write_gghead_checkpoint(path: str | os.PathLike, config: GGHeadConfig = PRESETS["tiny"], *,
                            template: UVTemplate | None = None, tensors: dict[str, torch.Tensor] | None = None,
                            seed: int = 0, entries: str = "full", omit_config: Iterable[str] = (),
                            config_overrides: dict[str, Any] | None = None,
                            model_overrides: dict[str, Any] | None = None, extra_tensors: dict | None = None,
                            augment: bool = False, marker: str | os.PathLike | None = None,
                            ) -> dict[str, torch.Tensor]:
    """Write a GGHead-format ``checkpoint-<kimg>.pkl`` for ``config``; returns the tensors (upstream names).

    Args:
        template: the UV template (default: :func:`synthetic_template` of the config's sizes).
        tensors: upstream-named tensors (default :func:`upstream_values`); a name left out is not written.
        entries: ``"full"`` (training_set_kwargs, G, D, G_ema) or ``"G_ema"`` (training_set_kwargs + G_ema).
        omit_config: upstream config attribute paths to leave out (``"opacity_overshoot"``,
            ``"gaussian_attribute_config.sh_degree"``): an older pickle that predates them.
        config_overrides: upstream config attribute paths -> values stored instead of the config's.
        model_overrides: GGHeadModel attributes to replace (``OMIT`` deletes one).
        extra_tensors: ``{upstream name: tensor}`` parameters added to the named (existing) module.
        augment: also write an ``augment_pipe`` entry (only written by upstream when augmentation was on).
        marker: file the embedded sources would create if anything executed them (default: beside ``path``).
    """
    path = Path(path)
    template = template or synthetic_template(config.plane_resolution, config.uv_grid_size)
    tensors = upstream_values(config, template, seed) if tensors is None else tensors
    marker = Path(marker) if marker is not None else path.with_name("EXECUTED")
    with upstream_modules(marker) as ns:
        def build(forwarded: bool) -> nn.Module:
            tree = Tree(ns, config, tensors)
            m = tree.model(template.count, set(omit_config), dict(config_overrides or {}),
                           dict(model_overrides or {}), forwarded)
            for name, t in (extra_tensors or {}).items():
                mod, _, key = name.rpartition(".")
                m.get_submodule(mod)._parameters[key] = nn.Parameter(t, requires_grad=False)
            return m

        top: dict[str, Any] = {"training_set_kwargs": dict(
            path="FFHQ_png_512.zip", base_path=None, resolution=config.resolution, use_calibration=False,
            use_masks=True, mask_method="modnet", apply_masks=True, return_masks=False, return_background=False,
            random_background=False, background_color=(255, 255, 255), filter_ffhq=False, max_size=70000,
            use_labels=True, xflip=False, random_seed=0)}
        if entries == "full":
            top["G"] = build(False)
            top["D"] = Tree(ns, config, tensors).discriminator()
        elif entries != "G_ema":
            raise ValueError(f"entries must be 'full' or 'G_ema', got {entries!r}")
        top["G_ema"] = build(True)
        if augment:
            top["augment_pipe"] = Tree(ns, config, tensors).persistent(
                "AugmentPipe", "augment_pipe", (), dict(xflip=1, rotate90=1), xflip=1.0, rotate90=1.0, xint=0.0)
            top["augment_pipe"]._buffers["p"] = torch.tensor(0.2)
        with open(path, "wb") as f:
            pickle.dump(top, f)  # upstream's writer: plain pickle.dump, default protocol
    return tensors
