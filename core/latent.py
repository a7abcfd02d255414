"""From what a user picks to a latent: sources, seeds, truncation and the seed grid, defined once.

Everyone who turns a seed into a head calls these (the viewer's render worker, ``core.orbit_video``,
``core.editing``, the benches), so the same seed gives the same head everywhere.

Sources (the strings the viewer's Load panel and ``run_viewer.py`` take):

- a generator file (ours ``.safetensors``; ``.pkl``: an official CGS-GAN pickle, a GGHead checkpoint or our
  older format; see :mod:`core.model_files`);
- a 3DGS ``.ply`` scene (recognised by its magic bytes or its extension);
- ``random:<preset>`` for ``<preset>`` in :data:`RANDOM_PRESETS`: an untrained generator, the same weights
  every time (``torch.manual_seed(0)``), with :func:`wake_layer_scales` applied, for testing.

Latents: ``z [B, z_dim]`` standard normal; ``ws [B, num_ws, w_dim]`` after mapping and truncation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

import torch

from core.gaussians import GaussianSet
from core.generator_interface import GaussianHeadGenerator

RANDOM_PREFIX = "random:"
RANDOM_PRESETS = ("tiny", "cpu128")
RANDOM_SOURCES = tuple(RANDOM_PREFIX + p for p in RANDOM_PRESETS)
SourceKind = Literal["generator", "scene"]


@dataclass(frozen=True, eq=False)
class LoadedSource:
    """What a source string opened to.

    Attributes:
        kind: ``"generator"`` or ``"scene"``.
        generator: the generator in eval mode on the requested device (``kind == "generator"``), else None.
        scene: the ``.ply`` scene, batch shape ``[]`` (``kind == "scene"``), else None.
        random_weights: an untrained ``random:*`` generator (the viewer shows a banner).
    """

    kind: SourceKind
    generator: GaussianHeadGenerator | None = None
    scene: GaussianSet | None = None
    random_weights: bool = False


def is_ply(path: str | os.PathLike) -> bool:
    """``path`` is a 3DGS ``.ply`` by its first bytes or its extension (raises like ``open`` when missing)."""
    from core.regular_file import open_regular  # a FIFO or device is refused, never read (issue 19)

    with open_regular(path, "a model or .ply file") as f:  # FileNotFoundError etc. speak for themselves
        head = f.read(4)
    return head in (b"ply\n", b"ply\r") or os.fspath(path).lower().endswith(".ply")


def load_source(source: str, device: torch.device | str = "cpu") -> LoadedSource:
    """Open ``source`` (see the module docstring) on ``device``. Raises ``ValueError`` for an unknown
    ``random:`` name, ``FileNotFoundError`` for a missing file, and the loaders' errors for bad files."""
    if source.startswith(RANDOM_PREFIX):
        return LoadedSource("generator", random_generator(source[len(RANDOM_PREFIX):]).to(device), None, True)
    if is_ply(source):
        from core.ply import read_ply

        return LoadedSource("scene", None, read_ply(source, device=device))
    from core.model_files import load_generator

    return LoadedSource("generator", load_generator(source, device=device).generator.eval())


def load_generator_source(source: str, device: torch.device | str = "cpu") -> GaussianHeadGenerator:
    """The generator of ``source``; ``ValueError`` when it is a ``.ply`` scene."""
    loaded = load_source(source, device)
    if loaded.generator is None:
        raise ValueError(f"{source} is a .ply scene; this needs a generator (a generator file or random:*)")
    return loaded.generator


def random_generator(preset: str) -> GaussianHeadGenerator:
    """The untrained generator of ``random:<preset>`` (CPU, eval): the same weights on every call."""
    from core.generator import PRESETS, Generator

    if preset not in RANDOM_PRESETS or preset not in PRESETS:
        raise ValueError(f"unknown built-in source {RANDOM_PREFIX + preset!r}; use one of {RANDOM_SOURCES}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        G = Generator(PRESETS[preset]).eval()
        wake_layer_scales(G)
    return G


def wake_layer_scales(G: torch.nn.Module, std: float = 0.5) -> None:
    """Give a freshly initialised generator's all-zero weight matrices (the transformer's layer scales, which
    make every block start as the identity) small random values, so that the head of an untrained generator
    depends on the latent. A trained generator has none, so it is never changed."""
    with torch.no_grad():
        for p in G.parameters():
            if p.dim() == 2 and not p.any():
                p.normal_(0.0, std)


def seed_z(seed: int, z_dim: int) -> torch.Tensor:
    """``[1, z_dim]`` float32 CPU: standard normal from a CPU ``torch.Generator`` seeded with ``seed``."""
    return torch.randn(1, z_dim, generator=torch.Generator().manual_seed(int(seed)))


def _device(G: GaussianHeadGenerator, device: torch.device | str | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    p = next(iter(G.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def map_z(G: GaussianHeadGenerator, z: torch.Tensor, psi: float = 0.7, cutoff: int | None = None,
          device: torch.device | str | None = None) -> torch.Tensor:
    """``z [B, z_dim]`` -> ``ws [B, num_ws, w_dim]`` truncated by ``psi``/``cutoff``, no gradient."""
    z_dim = G.config.z_dim
    if z.dim() != 2 or z.shape[1] != z_dim:
        raise ValueError(f"z must be [B, {z_dim}] (the generator's z_dim), got {list(z.shape)}")
    with torch.no_grad():
        return G.map(z.to(_device(G, device), torch.float32), truncation_psi=psi, truncation_cutoff=cutoff)


def seed_ws(G: GaussianHeadGenerator, seed: int, psi: float = 0.7, cutoff: int | None = None,
            device: torch.device | str | None = None) -> torch.Tensor:
    """``[1, num_ws, w_dim]`` on ``device`` (default: the generator's): the head of ``seed`` at ``psi``."""
    return map_z(G, seed_z(seed, G.config.z_dim), psi, cutoff, device)


def ws_from_values(G: GaussianHeadGenerator, values, device: torch.device | str | None = None) -> torch.Tensor:
    """``[1, 1 or num_ws, w_dim]`` from flattened w numbers (``w_dim`` or ``num_ws * w_dim`` of them)."""
    c = G.config
    w = torch.as_tensor(values, dtype=torch.float32).reshape(-1)
    if w.numel() not in (c.w_dim, c.num_ws * c.w_dim):
        raise ValueError(f"w latent has {w.numel()} numbers; the generator needs w_dim={c.w_dim} or "
                         f"num_ws*w_dim={c.num_ws * c.w_dim}")
    return w.reshape(1, -1, c.w_dim).to(_device(G, device))


def seed_grid_ws(G: GaussianHeadGenerator, seed: int, grid_size: int, xy: tuple[float, float], space: str,
                 psi: float = 0.7, cutoff: int | None = None, device: torch.device | str | None = None
                 ) -> torch.Tensor:
    """``[1, num_ws, w_dim]``: the bilinear blend of the 4 grid latents around ``xy`` (grid cells, clamped to
    ``[0, grid_size - 1]``); cell ``(i, j)`` has seed ``seed + i + j * grid_size``. ``space="z"`` blends the
    z then maps; ``"w"`` maps then blends (so a grid corner is exactly its seed's head in both)."""
    n = int(grid_size)
    if n < 2:
        raise ValueError(f"grid_size must be >= 2, got {grid_size}")
    x = min(max(float(xy[0]), 0.0), n - 1.0)
    y = min(max(float(xy[1]), 0.0), n - 1.0)
    i0, j0 = min(int(x), n - 2), min(int(y), n - 2)
    fx, fy = x - i0, y - j0
    corners = [(i0, j0, (1 - fx) * (1 - fy)), (i0 + 1, j0, fx * (1 - fy)), (i0, j0 + 1, (1 - fx) * fy),
               (i0 + 1, j0 + 1, fx * fy)]
    z = torch.cat([seed_z(seed + i + j * n, G.config.z_dim) for i, j, _ in corners])
    dev = _device(G, device)
    weights = torch.tensor([w for _, _, w in corners], dtype=torch.float32, device=dev)
    if space == "z":
        return map_z(G, (weights.cpu()[:, None] * z).sum(0, keepdim=True), psi, cutoff, dev)
    ws = map_z(G, z, psi, cutoff, dev)
    return (weights[:, None, None] * ws).sum(0, keepdim=True)
