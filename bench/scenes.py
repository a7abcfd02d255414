"""Synthetic scenes for benchmarks: the environment probe's scene, so figures are comparable to its."""

from __future__ import annotations

import torch

from core.camera import Cameras, normalized_intrinsics
from core.gaussians import GaussianSet


def probe_scene(n: int, seed: int = 0, device: str = "cpu") -> GaussianSet:
    """``n`` Gaussians with centres in [-1, 1]^2 x [2, 4] (x, y, z in front of an identity camera), scales of
    5-20 mm with +-25 % per axis, random rotations, colours and opacities (0.05-0.95)."""
    g = torch.Generator().manual_seed(seed)
    means = torch.rand(n, 3, generator=g) * torch.tensor([2.0, 2.0, 2.0]) + torch.tensor([-1.0, -1.0, 2.0])
    base = 0.005 + 0.015 * torch.rand(n, 1, generator=g)
    scales = base * (0.75 + 0.5 * torch.rand(n, 3, generator=g))
    rgb = torch.rand(n, 3, generator=g)
    opacity = 0.05 + 0.9 * torch.rand(n, generator=g)
    quats = torch.randn(n, 4, generator=g)
    return GaussianSet.from_activated(means, rgb, opacity, scales, quats).to(device)


def identity_camera(device: str = "cpu") -> Cameras:
    """Camera at the origin looking down +z (OpenCV), normalised focal 1.0 (fx = image width)."""
    return Cameras(torch.eye(4)[None], normalized_intrinsics(1.0)[None]).to(device)


def head_scene(n: int, seed: int = 0, device: str = "cpu") -> GaussianSet:
    """``n`` Gaussians on and inside a head-sized ellipsoid (semi-axes 0.35, 0.45, 0.4) at the origin, sized
    so neighbours overlap (std-dev ~ the mean spacing on the surface), like a generator's output."""
    g = torch.Generator().manual_seed(seed)
    d = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=-1)
    r = 1.0 - 0.25 * torch.rand(n, 1, generator=g) ** 2  # most points near the surface
    means = d * r * torch.tensor([0.35, 0.45, 0.4])
    spacing = (2.0 / n) ** 0.5  # surface area ~2 units^2
    scales = spacing * torch.exp(torch.randn(n, 3, generator=g) * 0.3)
    rgb = torch.rand(n, 3, generator=g)
    opacity = 0.2 + 0.79 * torch.rand(n, generator=g)
    quats = torch.randn(n, 4, generator=g)
    return GaussianSet.from_activated(means, rgb, opacity, scales, quats).to(device)


def default_model_head(model: str | None = None, seed: int = 0, psi: float = 0.7) -> GaussianSet:
    """One head of ``model`` (a generator file; None: the embedded default model) for ``seed`` at truncation
    ``psi``, on the CPU: the scene the viewer benchmarks draw."""
    from core.model_files import load_generator
    from viewer.config import DEFAULT_MODEL

    G = load_generator(model or DEFAULT_MODEL).generator
    z = torch.randn(G.config.z_dim, generator=torch.Generator().manual_seed(seed))[None]
    with torch.no_grad():
        return G(z, truncation_psi=psi).gaussians[0]
