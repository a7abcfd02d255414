"""Load official CGS-GAN ``network-snapshot-*.pkl`` files into our :class:`core.generator.Generator`,
without executing anything from the file and without the official repository on ``sys.path``.

The official pickles are StyleGAN3 ``torch_utils.persistence`` pickles; :mod:`core.legacy_pickle` reads them
with a restricted unpickler into inert records (:class:`PersistentRecord` with the embedded module source kept
as text, :class:`ModuleRecord`, plain tensors and numbers) and refuses any global outside the official
format with :class:`UnsafeLegacyPickleError`. Three modules give the records their CGS-GAN meaning:

- :mod:`core.legacy_cgsgan_mapping`: official ``state_dict`` names <-> ours, and the checked conversion of a
  state dict;
- :mod:`core.legacy_cgsgan_architecture`: the record tree flattened, the architecture and release read;
- this module: :func:`load_official_pickle`, which puts them together, and :class:`LegacyInfo`.

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

import os
from dataclasses import dataclass
from typing import Any

import torch

from core.generator import Generator, GeneratorConfig
from core.legacy_cgsgan_architecture import (
    _as_float,
    _attr,
    _check_fc_layers,
    _derive_config,
    _identify_other,
    _release,
)
from core.legacy_cgsgan_mapping import (
    Mapped,
    _meta_generator,
    official_state_to_ours,
    official_to_ours,
    ours_to_official,
)
from core.legacy_pickle import (
    MAX_PICKLE_BYTES,
    LegacyPickleError,
    ModuleRecord,
    PersistentRecord,
    UnsafeLegacyPickleError,
    is_official_pickle,
    read_official_pickle,
)
from core.module_tree import flatten_module_tree

__all__ = [
    "LegacyInfo", "LegacyPickleError", "Mapped", "ModuleRecord", "PersistentRecord",
    "UnsafeLegacyPickleError",
    "is_official_pickle", "load_official_pickle", "official_state_to_ours", "official_to_ours",
    "ours_to_official", "read_official_pickle",
]


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
    tree = flatten_module_tree(G, src)
    tensors, modules, params = tree.tensors, tree.modules, tree.params
    config, overrides, facts, warn = _derive_config(tensors, modules, src)
    release, more = _release(modules, facts, config)
    warn += more
    gain = _as_float(_attr(modules.get("mapping_network.embed"), "bias_gain", 1.0),
                     "mapping_network.embed.bias_gain", src)
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
