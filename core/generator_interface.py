"""What the studio needs from a generator, whatever its family (CGS-GAN today, GGHead next).

The viewer, inversion, latent editing, orbit videos and ``.ply`` export use a generator only through
:class:`GaussianHeadGenerator`; a new family implements it (and ``core.model_files.load_generator`` learns its
file format) and every panel works on it without changes above ``core``.

Shapes: ``B`` batch, ``N`` Gaussians per head, ``num_ws`` latent slots, ``w_dim`` width of one w.

- ``config.z_dim`` / ``config.w_dim`` / ``config.num_ws``: latent sizes; ``config.resolution``: the image size
  (px) the model was trained for (inversion frames photos to it); ``config.to_dict()``: JSON-able, saved with
  the model.
- ``w_avg``: ``[w_dim]`` the truncation centre (mean w).
- ``map(z [B, z_dim], truncation_psi, truncation_cutoff) -> ws [B, num_ws, w_dim]``: truncated toward
  ``w_avg`` as ``w_avg + psi (w - w_avg)`` on the first ``cutoff`` slots (None: all).
- ``synthesis(ws [B, num_ws, w_dim] or [B, 1, w_dim]) -> GeneratorOutput`` whose ``gaussians`` is a
  :class:`~core.gaussians.GaussianSet` ``[B, N]`` in the world of :mod:`core.camera` (head at the origin
  inside the unit cube, facing +z), pre-activation as in standard 3DGS.
- the ``torch.nn.Module`` basics: ``parameters()``, ``to()``, ``eval()``, ``requires_grad_()``,
  ``state_dict()``; a deep copy is an independent model (inversion tunes a copy).
- ``family``: a short name for messages (``"cgs-gan"``).
"""

from __future__ import annotations

from typing import Iterator, Protocol, runtime_checkable

import torch


@runtime_checkable
class GeneratorShape(Protocol):
    """The sizes every generator config has (a family's config may hold more)."""

    z_dim: int
    w_dim: int
    resolution: int

    @property
    def num_ws(self) -> int: ...

    def to_dict(self) -> dict: ...


@runtime_checkable
class GaussianHeadGenerator(Protocol):
    """A 3D Gaussian head GAN as the studio uses it (see the module docstring for shapes and conventions)."""

    config: GeneratorShape
    family: str

    @property
    def w_avg(self) -> torch.Tensor: ...

    def map(self, z: torch.Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
            update_w_avg: bool = False) -> torch.Tensor: ...

    def synthesis(self, ws: torch.Tensor): ...

    def parameters(self, recurse: bool = True) -> Iterator[torch.nn.Parameter]: ...

    def to(self, *args, **kwargs): ...

    def eval(self): ...


def check_generator(G: object) -> GaussianHeadGenerator:
    """``G`` if it implements :class:`GaussianHeadGenerator`, else ``TypeError`` naming what is missing."""
    missing = [name for name in ("config", "family", "w_avg", "map", "synthesis", "parameters", "to", "eval")
               if not hasattr(G, name)]
    if not missing:
        missing = [f"config.{n}" for n in ("z_dim", "w_dim", "num_ws", "resolution") if not hasattr(G.config, n)]
    if missing:
        raise TypeError(f"{type(G).__name__} is not a generator the studio can use: it lacks {', '.join(missing)}")
    return G  # type: ignore[return-value]

