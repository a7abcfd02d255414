"""Open and save generator files: one entry point for every format the studio reads.

- our snapshots (``.pkl`` written by :func:`save_generator` or by training): data only, loaded by the
  restricted loader in :mod:`core.checkpoint`;
- official CGS-GAN pickles (StyleGAN3 ``torch_utils.persistence``): loaded by :mod:`core.legacy_cgsgan`
  without running their embedded code;
- GGHead checkpoints (``checkpoint-<kimg>.pkl``): loaded by :mod:`core.gghead.checkpoint` into a
  :class:`core.gghead.GGHeadGenerator` (same interface), without running their embedded code.

Anything else (a ``.ply`` scene, a ``torch.save`` file, a hostile pickle) is refused with a message that
says what the file is. A generator saved on a CUDA machine loads on the CPU: files record no device.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from core.checkpoint import CorruptCheckpointError, read_generator_state, save_generator_state
from core.generator import Generator, GeneratorConfig, check_state_dict
from core.regular_file import open_regular


@dataclass(frozen=True)
class LoadedGenerator:
    """Attributes:
        generator: in eval mode on the requested device.
        source_format: ``"splathead"`` (ours), ``"splathead-gghead"`` (ours, a GGHead generator),
            ``"cgs-gan-official"`` or ``"gghead-official"``.
        notes: human-readable facts about the file (release, what was dropped), for the viewer's Load panel.
    """

    generator: Generator
    source_format: str
    notes: tuple[str, ...] = ()


def load_generator(path: str | os.PathLike, device: torch.device | str = "cpu") -> LoadedGenerator:
    """Load a generator from ``path`` onto ``device`` (see the module docstring for the formats).

    Raises:
        FileNotFoundError, IsADirectoryError: as usual.
        core.checkpoint.CheckpointError (a ValueError): corrupt, foreign, hostile or mismatched files, with
            the file name and the reason.
    """
    from core.legacy_cgsgan import is_official_pickle, load_official_pickle

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path}: is a directory, not a generator file")
    with open_regular(path, "a generator file", error=lambda p: CorruptCheckpointError(path, p)) as f:
        head = f.read(4)
    if head == b"ply\n" or head == b"ply\r":
        raise CorruptCheckpointError(path, "this is a .ply scene, not a generator; open it as a scene")
    if is_official_pickle(path):
        G, info = load_official_pickle(path, device)
        return LoadedGenerator(G, "cgs-gan-official", tuple(info.summary().splitlines()))
    # --- GGHead checkpoints (core.gghead): a second generator family with the same interface
    from core.gghead.checkpoint import is_gghead_pickle, load_gghead_checkpoint

    if is_gghead_pickle(path):
        G, info = load_gghead_checkpoint(path, device)
        return LoadedGenerator(G, "gghead-official", tuple(info.summary().splitlines()))
    # ---
    config_dict, state = read_generator_state(path, map_location="cpu")
    # --- GGHead generators saved in our format (e.g. after pivotal tuning)
    from core.gghead.checkpoint import generator_from_state, is_gghead_config

    if is_gghead_config(config_dict):
        try:
            return LoadedGenerator(generator_from_state(config_dict, state).to(device), "splathead-gghead", ())
        except (TypeError, ValueError, RuntimeError) as exc:
            raise CorruptCheckpointError(path, f"GGHead weights do not fit their config: {exc}") from None
    # ---
    try:
        config = GeneratorConfig.from_dict(config_dict)
        check_state_dict(config, state)  # before building: nothing allocated that the file does not hold
        G = Generator(config)
        G.load_state_dict(state, strict=True)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise CorruptCheckpointError(path, f"generator weights do not fit their config: {exc}") from None
    return LoadedGenerator(G.eval().to(device), "splathead", ())


def save_generator(G: Generator, path: str | os.PathLike, metadata: dict | None = None) -> None:
    """Write ``G``'s config and weights (``G_ema`` slot) as our data-only snapshot, atomically."""
    state = {k: v.detach() for k, v in G.state_dict().items()}
    save_generator_state(path, G.config.to_dict(), state, metadata=metadata)
