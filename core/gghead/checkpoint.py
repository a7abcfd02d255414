"""Load GGHead ``checkpoint-<kimg>.pkl`` files into :class:`~core.gghead.generator.GGHeadGenerator`, executing
nothing from the file and without gghead / eg3d / elias / 3DGS installed.

1. :func:`core.legacy_pickle.read_official_pickle` with :data:`~core.gghead.pickle_format.EXTRA_GLOBALS`
   turns the file into inert records (see :mod:`core.gghead.pickle_format`).
2. ``G_ema`` (else ``G``) must be a ``GGHeadModel`` record. Its module tree is flattened into upstream's
   ``state_dict`` names (``backbone.synthesis.b64.conv0.affine.weight``, ``_uv_grid``, ...).
3. :mod:`core.gghead.stored_config`: the configuration (a value stored in the file wins, an absent one takes
   upstream's class default; every default used is listed in :class:`GGHeadLoadInfo`).
4. :mod:`core.gghead.records`: every tensor is mapped onto our names with its shape checked; the template (UV
   grid, UV position map, template positions) comes from the checkpoint's buffers.

Refused with a message: other generators (an EG3D tri-plane model of the same fork is named), settings the
upstream forward cannot run either (no position offsets, ``no_exp_scale_activation``), a progressive-growing
synthesis (``pretrained_plane_resolution``), non-"skip" architectures, unexpected filters, missing or
mis-shaped tensors (all listed by their upstream names).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

import torch

from core.gghead.config import GGHeadConfig
from core.gghead.generator import GGHeadGenerator
from core.gghead.pickle_format import EXTRA_GLOBALS, FORMAT_NAME, GGHEAD_MODEL, ObjectRecord
from core.gghead.records import identify, ours_to_upstream, upstream_to_ours
from core.gghead.stored_config import derive_config
from core.gghead.template import UVTemplate
from core.legacy_pickle import MAX_PICKLE_BYTES, LegacyPickleError, pickle_references, read_official_pickle
from core.module_tree import flatten_module_tree

_CKPT_RE = re.compile(r"checkpoint-(\d+)\.pkl$")


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
                 f"  {c.num_gaussians:,} Gaussians from a {c.plane_resolution}^2 UV map, "
                 f"SH degree {c.sh_degree}, {c.num_ws} ws, images {c.resolution}^2, "
                 f"{self.parameters:,} parameters",
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
    return pickle_references(path, lambda a: a.startswith("gghead.") or a == "eg3d.torch_utils.persistence"
                             or a.startswith("eg3d.torch_utils.persistence "),
                             max_bytes=max_bytes, max_ops=max_ops)


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
        raise LegacyPickleError(src, f"{key} is {identify(model)}, not GGHead's GGHeadModel: not supported")
    tree = flatten_module_tree(model, src)
    tensors, modules = tree.tensors, tree.modules
    config, defaults_used, warn = derive_config(model, tensors, modules, src)
    for name in ("_uv_grid", "_uv_position_map", "_flame_vertices"):
        if name not in tensors:
            raise LegacyPickleError(src, f"missing tensors: {name} (the UV template is stored in the "
                                         "checkpoint)")
    try:
        template = UVTemplate(tensors["_uv_grid"], tensors["_uv_position_map"], tensors["_flame_vertices"])
    except ValueError as e:
        raise LegacyPickleError(src, f"the UV template buffers do not fit together: {e}") from None
    with torch.device("meta"):
        shapes = UVTemplate(*(torch.empty(t.shape) for t in (template.uv_grid, template.uv_position_map,
                                                             template.template_positions)))
        expected = GGHeadGenerator(config, shapes).state_dict()
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
    inverse = {upstream_name: ours for ours, upstream_name in ours_to_upstream(config).items()}
    problems["missing"] = sorted(u for u, ours in inverse.items() if ours in expected and ours not in state
                                 and u not in tensors)
    if any(problems.values()):
        text = " | ".join(f"{k}: {'; '.join(v[:30])}" for k, v in problems.items() if v)
        raise LegacyPickleError(src, f"the generator tensors do not fit the architecture read from the file: "
                                     f"{text}")
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


# ---------------------------------------------------------------------------------------------- our own files


def is_gghead_config(config_dict: Any) -> bool:
    """Is this config dict (from one of our generator files) a GGHead generator's?"""
    return isinstance(config_dict, dict) and config_dict.get("family") == "gghead"


TEMPLATE_BUFFERS = ("uv_grid", "uv_position_map", "template_positions")


def expected_gghead_state(config_dict: dict, shapes: dict[str, tuple[int, ...]]
                          ) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """``{state-dict key: (shape, dtype)}`` of the GGHead generator that ``config_dict`` describes, with the
    template buffers of ``shapes`` (the file's headers), built on the meta device: a file's tensor headers can
    be checked against it before any tensor is read or any network allocated. Raises ``ValueError`` when the
    template buffers are missing or malformed, ``KeyError``/``TypeError`` for a bad config."""
    config = GGHeadConfig.from_dict(config_dict)
    missing = [n for n in TEMPLATE_BUFFERS if n not in shapes]
    if missing:
        raise ValueError(f"the GGHead template buffers are missing: {missing}")
    with torch.device("meta"):
        G = GGHeadGenerator(config, UVTemplate(*(torch.empty(shapes[n]) for n in TEMPLATE_BUFFERS)))
    return {k: (tuple(v.shape), v.dtype) for k, v in G.state_dict().items()}


def generator_from_state(config_dict: dict, state: dict[str, torch.Tensor]) -> GGHeadGenerator:
    """A GGHead generator saved in our format (``core.model_files.save_generator``, e.g. by pivotal tuning):
    ``GGHeadConfig`` dict + state dict, whose persistent buffers hold the UV template. Raises ``ValueError``
    (or ``TypeError`` / ``RuntimeError`` from torch) when they do not fit."""
    config = GGHeadConfig.from_dict(config_dict)
    missing = [n for n in TEMPLATE_BUFFERS if n not in state]
    if missing:
        raise ValueError(f"the GGHead template buffers are missing: {missing}")
    G = GGHeadGenerator(config, UVTemplate(*(state[n] for n in TEMPLATE_BUFFERS)))
    G.load_state_dict(state, strict=True)
    return G.eval()
