"""Slider edits of a latent: offsets added to a stored base latent, never accumulated in place.

``ws = base + sum_i value_i * scale_i * u_i`` (on each direction's slots). The base is never modified, so
moving every slider back to 0 gives the base back bit for bit (a zero slider adds nothing at all), and the
order in which sliders were moved does not matter.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

import torch

from core.editing.directions import DirectionSet
from core.latent import seed_ws


def base_from_seed(G: torch.nn.Module, seed: int, psi: float = 0.7, cutoff: int | None = None) -> torch.Tensor:
    """``[num_ws, w_dim]`` float32 CPU: the w of ``seed`` by the studio's one rule (:func:`core.latent.seed_ws`:
    z = standard normal ``[1, z_dim]`` from a CPU ``torch.Generator`` seeded with ``seed``, mapped, truncated
    by psi/cutoff)."""
    return seed_ws(G, seed, psi, cutoff)[0].detach().float().cpu()


def apply_sliders(base: torch.Tensor, directions: DirectionSet, values: Mapping[str, float]) -> torch.Tensor:
    """``base [..., num_ws, w_dim]`` plus the offsets of ``values`` (slider name -> std units); a new tensor.

    Zero values add nothing (so all-zero returns an exact copy of ``base``). Raises ``KeyError`` for a
    name not in ``directions`` and ``ValueError`` for a base of the wrong shape.
    """
    if base.dim() < 2 or base.shape[-1] != directions.w_dim or base.shape[-2] != directions.num_ws:
        raise ValueError(f"base must be [..., {directions.num_ws}, {directions.w_dim}], got {list(base.shape)}")
    out = base.clone()
    for name, value in values.items():
        if value == 0:
            continue
        d = directions.get(name)
        offset = torch.as_tensor(d.offset(value), dtype=base.dtype, device=base.device)
        start, stop = d.slots if d.slots is not None else (0, directions.num_ws)
        out[..., start:stop, :] += offset
    return out


@dataclass(frozen=True, eq=False)
class LatentEdit:
    """The viewer's current latent: a base and slider values (immutable; every change returns a new one).

    Attributes:
        base: ``[num_ws, w_dim]`` float32 CPU tensor; treat as read-only.
        values: ``(name, value)`` pairs, value in std units, sorted by name, no zeros.
    """

    base: torch.Tensor
    values: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.base, torch.Tensor) or self.base.dim() != 2:
            raise ValueError(f"base must be a [num_ws, w_dim] tensor, got {getattr(self.base, 'shape', self.base)}")
        object.__setattr__(self, "base", self.base.detach().float().cpu())
        clean = {str(k): float(v) for k, v in dict(self.values).items() if float(v) != 0.0}
        object.__setattr__(self, "values", tuple(sorted(clean.items())))

    @property
    def slider_values(self) -> dict[str, float]:
        return dict(self.values)

    def value(self, name: str) -> float:
        """The slider value of ``name`` (0 when it was never moved)."""
        return dict(self.values).get(name, 0.0)

    def with_value(self, name: str, value: float) -> LatentEdit:
        """Slider ``name`` set to ``value`` (std units); 0 removes it."""
        return replace(self, values=tuple({**dict(self.values), name: float(value)}.items()))

    def with_values(self, values: Mapping[str, float]) -> LatentEdit:
        return replace(self, values=tuple({**dict(self.values), **values}.items()))

    def reset(self, name: str) -> LatentEdit:
        return self.with_value(name, 0.0)

    def reset_all(self) -> LatentEdit:
        return replace(self, values=())

    def with_base(self, base: torch.Tensor, keep_sliders: bool = False) -> LatentEdit:
        """A new base (e.g. a new seed or an inversion result); sliders reset unless ``keep_sliders``."""
        return LatentEdit(base, self.values if keep_sliders else ())

    def ws(self, directions: DirectionSet) -> torch.Tensor:
        """``[num_ws, w_dim]`` float32 CPU: the edited latent (feed ``ws[None]`` to ``G.synthesis``)."""
        return apply_sliders(self.base, directions, dict(self.values))

    def flat(self, directions: DirectionSet) -> tuple[float, ...]:
        """The edited latent flattened (``num_ws * w_dim`` floats), for ``ui_state.render.LatentParams.latent``
        with ``space="w"``."""
        return tuple(self.ws(directions).flatten().tolist())


def interpolate(a: LatentEdit, b: LatentEdit, t: float) -> LatentEdit:
    """``(1 - t) a + t b``: bases and slider values interpolated linearly (t in [0, 1]; 0 gives ``a``
    exactly, 1 gives ``b``). Because edits are linear the edited latent is the lerp of the two edited latents."""
    if a.base.shape != b.base.shape:
        raise ValueError(f"cannot interpolate latents of shapes {list(a.base.shape)} and {list(b.base.shape)}")
    if t == 0:
        return a
    if t == 1:
        return b
    va, vb = dict(a.values), dict(b.values)
    values = {k: (1 - t) * va.get(k, 0.0) + t * vb.get(k, 0.0) for k in set(va) | set(vb)}
    return LatentEdit(torch.lerp(a.base, b.base, float(t)), tuple(values.items()))
