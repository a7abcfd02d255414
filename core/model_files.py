"""Open and save generator files: one entry point for every format the studio reads.

Written: ``NAME.safetensors``, one safetensors file whose metadata holds the JSON manifest
(:mod:`core.snapshots`: format, ``GeneratorConfig``, module ``G_ema``); any safetensors tool can read its
tensors. Read, recognised by content (not by extension):

- our files: a ``.safetensors`` generator file or training snapshot, or the ``.safetensors.index.json`` of a
  sharded training snapshot (its ``G_ema`` is loaded, only the parts that hold it are read);
- the data-only ``.pkl`` files of format 1 (before safetensors; :mod:`core.snapshot_pickle`, read-only);
- official CGS-GAN pickles (StyleGAN3 ``torch_utils.persistence``): :mod:`core.legacy_cgsgan`, nothing run;
- GGHead checkpoints (``checkpoint-<kimg>.pkl``): :mod:`core.gghead.checkpoint`, into a
  :class:`core.gghead.GGHeadGenerator` (same interface), nothing run. GGHead generators we save (e.g. after
  pivotal tuning) are our ``.safetensors`` files whose config names the family ``"gghead"``.

Anything else (a ``.ply`` scene, a ``torch.save`` file, a hostile pickle) is refused with a message that says
what the file is. For our files, the headers are checked against the file size and the config is built by
``GeneratorConfig.from_dict`` (its validation) and compared, name by name and shape by shape, with the
tensors in the file before any tensor is read or any network is built. A generator saved on a CUDA machine
loads on the CPU: files record no device.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from core.checkpoint import CorruptCheckpointError, Snapshot, default_metadata
from core.generator import Generator, GeneratorConfig, check_state_dict
from core.regular_file import require_regular_file
from core.snapshots import open_snapshot, save_snapshot
from core.tensor_file_reader import sniff
from core.tensor_files import INDEX_SUFFIX, SUFFIX

GENERATOR_SUFFIX = SUFFIX  # what save_generator writes
# generator files by name: ours (one file or a sharded index), format-1 and official pickles
GENERATOR_SUFFIXES = (SUFFIX, INDEX_SUFFIX, ".pkl")
# what the file dialogs filter on (the dialogs match the last suffix only)
GENERATOR_DIALOG_SUFFIXES = (SUFFIX, ".json", ".pkl")


@dataclass(frozen=True)
class LoadedGenerator:
    """Attributes:
        generator: in eval mode on the requested device.
        source_format: ``"splathead"`` (ours, either format), ``"splathead-gghead"`` (ours, a GGHead
            generator), ``"cgs-gan-official"`` or ``"gghead-official"``.
        notes: human-readable facts about the file (format, release, what was dropped), for the Load panel.
        metadata: what the file records about itself (ours: created, code version, kimg, ...).
    """

    generator: Generator
    source_format: str
    notes: tuple[str, ...] = ()
    metadata: dict[str, Any] | None = None


def expected_state(config: GeneratorConfig) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """``{state-dict key: (shape, dtype)}`` of a generator with ``config``, built on the meta device (no
    memory for weights)."""
    with torch.device("meta"):
        G = Generator(config)
    return {k: (tuple(v.shape), v.dtype) for k, v in G.state_dict().items()}


def _is_gghead(config_dict: Any) -> bool:
    from core.gghead.checkpoint import is_gghead_config

    return is_gghead_config(config_dict)


def _config(path: str | os.PathLike, d: Any) -> GeneratorConfig:
    if not isinstance(d, dict):
        raise CorruptCheckpointError(path, "generator config is not a JSON object")
    try:
        return GeneratorConfig.from_dict(d)  # validation (ranges, size budget) happens here
    except (TypeError, ValueError) as exc:
        raise CorruptCheckpointError(path, f"invalid generator config: {exc}") from None


def load_generator(path: str | os.PathLike, device: torch.device | str = "cpu") -> LoadedGenerator:
    """Load a generator from ``path`` onto ``device`` (see the module docstring for the formats).

    Raises:
        FileNotFoundError, IsADirectoryError: as usual.
        core.checkpoint.CheckpointError (a ValueError): corrupt, foreign, hostile or mismatched files, with
            the file name and the reason.
    """
    path = os.fspath(path)
    # FileNotFoundError speaks for itself; a folder raises IsADirectoryError; a FIFO is refused unopened
    st = require_regular_file(path, "a generator file", error=lambda p: CorruptCheckpointError(path, p))
    if st.st_size == 0:
        raise CorruptCheckpointError(path, "empty file (not a generator)")
    kind = sniff(path)
    if kind == "ply":
        raise CorruptCheckpointError(path, "this is a .ply scene, not a generator; open it as a scene")
    if kind == "pickle":
        return _load_pickle(path, device)
    if kind in ("safetensors", "index"):
        return _load_ours(path, device)
    if kind == "zip":
        from core.checkpoint import ForeignCheckpointError

        raise ForeignCheckpointError(path, (
            "this is a zip archive, most likely a torch.save file (.pt/.pth), not a generator file; read it "
            "with torch.load(path, weights_only=True) (only if you trust it), then save_generator"))
    raise CorruptCheckpointError(path, "not a generator file (neither safetensors, a snapshot index nor a pickle)")


def _load_ours(path: str, device: torch.device | str) -> LoadedGenerator:
    sf = open_snapshot(path)  # headers checked against the file size
    module = sf.generator_module
    if _is_gghead(sf.generator_config):
        from core.gghead.checkpoint import expected_gghead_state, generator_from_state

        shapes = {k: info.shape for k, info in sf.module_table(module).items()}
        try:
            expected = expected_gghead_state(sf.generator_config, shapes)
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptCheckpointError(path, f"invalid GGHead generator config: {exc}") from None
        sf.check_module(module, expected)  # names, shapes and dtypes, before reading
        state = sf.read([module], trees=False).modules[module]
        try:
            G = generator_from_state(sf.generator_config, state)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise CorruptCheckpointError(path, f"GGHead weights do not fit their config: {exc}") from None
        return LoadedGenerator(G.to(device), "splathead-gghead", ("splathead safetensors, GGHead generator",),
                               dict(sf.metadata))
    config = _config(path, sf.generator_config)
    sf.check_module(module, expected_state(config))  # names, shapes and dtypes, before reading
    state = sf.read([module], trees=False).modules[module]
    G = Generator(config)
    G.load_state_dict(state, strict=True)
    notes = [f"splathead safetensors ({'index of ' + str(len(sf.file.parts)) + ' parts' if sf.file.parts else 'one file'}), "
             f"{sf.kind} snapshot, weights {module}"]
    if "kimg" in sf.metadata:
        notes.append(f"trained {sf.metadata['kimg']} kimg")
    return LoadedGenerator(G.eval().to(device), "splathead", tuple(notes), dict(sf.metadata))


def _load_pickle(path: str, device: torch.device | str) -> LoadedGenerator:
    from core.legacy_cgsgan import is_official_pickle, load_official_pickle
    from core.snapshot_pickle import load_pickle_snapshot

    if is_official_pickle(path):
        G, info = load_official_pickle(path, device)
        return LoadedGenerator(G, "cgs-gan-official", tuple(info.summary().splitlines()))
    from core.gghead.checkpoint import is_gghead_pickle, load_gghead_checkpoint

    if is_gghead_pickle(path):
        G, info = load_gghead_checkpoint(path, device)
        return LoadedGenerator(G, "gghead-official", tuple(info.summary().splitlines()))
    snap = load_pickle_snapshot(path, map_location="cpu")
    config = _config(path, snap.generator_config)
    try:
        state = snap.generator_state()
        check_state_dict(config, state)  # before building: nothing allocated that the file does not hold
        G = Generator(config)
        G.load_state_dict(state, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CorruptCheckpointError(path, f"generator weights do not fit their config: {exc}") from None
    return LoadedGenerator(G.eval().to(device), "splathead", ("splathead data-only .pkl (format 1, read-only)",),
                           dict(snap.metadata))


def save_generator(G: Generator, path: str | os.PathLike, metadata: dict | None = None) -> Path:
    """Write ``G``'s config and weights (module ``G_ema``, in the dtypes ``G`` holds) as one ``.safetensors``
    file with its manifest, atomically; returns the path. ``metadata`` (plain JSON values) is added to
    :func:`core.checkpoint.default_metadata`."""
    state = {k: v.detach() for k, v in G.state_dict().items()}
    snapshot = Snapshot(kind="generator", generator_config=G.config.to_dict(), modules={"G_ema": state},
                        metadata=default_metadata(**(metadata or {})))
    return save_snapshot(path, snapshot)
