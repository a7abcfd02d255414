"""The UV template of a GGHead generator: where on the UV map the Gaussians are sampled, and where they sit.

A GGHead checkpoint carries its template as three buffers (so the checkpoint alone suffices):

    uv_grid            [1, G, 1, 2]  grid_sample coordinates (x = u, y = v) in [-1, 1], one per Gaussian
    uv_position_map    [3, P, P]     template surface position of every map texel, world units (kept for
                                     completeness; the forward pass does not read it)
    template_positions [1, G, 3]     the template position of every Gaussian (upstream ``_flame_vertices``)

Upstream builds them from a FLAME-derived head mesh (back of the head removed), rasterised into a P x P UV map
and moved into EG3D's world by a fixed FLAME->BFM similarity (scale about 2.68): an N x N grid
``linspace(-1, 1, N)`` (row i has y = v_i, column j has x = u_j) is kept where the bilinearly sampled chart
mask exceeds 0.99 (:func:`uv_grid_from_mask`). For the shipped template that is 58,361 Gaussians at N = 256
and 235,232 at N = 512 (our recomputation from the mesh's UV chart; a checkpoint's own buffer is what counts).

The mesh is not part of this project. Models built from scratch (tests, benches) use
:func:`synthetic_template`: a smooth head-sized surface over a rounded-square chart, same rule, same sizes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.shapes import check_trailing_shape

MASK_THRESHOLD = 0.99


@dataclass(frozen=True, eq=False)
class UVTemplate:
    """See the module docstring for the shapes. ``count`` is G, the number of Gaussians."""

    uv_grid: torch.Tensor
    uv_position_map: torch.Tensor
    template_positions: torch.Tensor

    def __post_init__(self) -> None:
        check_trailing_shape(self.uv_grid, (1, None, 1, 2), "uv_grid")
        check_trailing_shape(self.template_positions, (1, None, 3), "template_positions")
        if self.uv_grid.dim() != 4 or self.template_positions.dim() != 3:
            raise ValueError(f"uv_grid must be [1, G, 1, 2] and template_positions [1, G, 3], got "
                             f"{list(self.uv_grid.shape)} and {list(self.template_positions.shape)}")
        if self.uv_grid.shape[1] != self.template_positions.shape[1]:
            raise ValueError(f"uv_grid has {self.uv_grid.shape[1]} samples but template_positions "
                             f"{self.template_positions.shape[1]}")
        if self.uv_position_map.dim() != 3 or self.uv_position_map.shape[0] != 3:
            raise ValueError(f"uv_position_map must be [3, P, P], got {list(self.uv_position_map.shape)}")
        if self.uv_grid.shape[1] == 0:
            raise ValueError("the template has no UV samples")

    @property
    def count(self) -> int:
        return self.uv_grid.shape[1]


def uv_grid_from_mask(mask: torch.Tensor, n: int, align_corners: bool = False, mode: str = "bilinear"
                      ) -> torch.Tensor:
    """Upstream's rule: ``[P, P]`` chart mask (1 inside) -> ``[1, G, 1, 2]`` grid points of the N x N lattice
    ``linspace(-1, 1, n)`` whose sampled mask value exceeds 0.99, in row-major (v, then u) order."""
    lin = torch.linspace(-1.0, 1.0, n)
    rows, cols = torch.meshgrid(lin, lin, indexing="ij")
    grid = torch.stack([cols, rows], dim=-1)  # [n, n, 2]: x = u (column), y = v (row)
    sampled = F.grid_sample(mask.float()[None, None], grid[None], mode=mode, align_corners=align_corners)[0, 0]
    keep = sampled > MASK_THRESHOLD
    return grid[keep][None, :, None, :].contiguous()


def sample_positions(uv_position_map: torch.Tensor, uv_grid: torch.Tensor, align_corners: bool = False,
                     mode: str = "bilinear") -> torch.Tensor:
    """``[3, P, P]`` map sampled at ``uv_grid [1, G, 1, 2]`` -> ``[1, G, 3]``."""
    s = F.grid_sample(uv_position_map[None].float(), uv_grid.float(), mode=mode, align_corners=align_corners)
    return s[0, :, :, 0].T[None].contiguous()


def synthetic_chart(resolution: int) -> torch.Tensor:
    """``[P, P]`` mask: a rounded square ``|u|^4 + |v|^4 <= 0.954`` covering 90.6% of the UV square (the shipped
    template's chart covers 91.3%)."""
    c = (torch.arange(resolution, dtype=torch.float64) + 0.5) / resolution * 2 - 1
    v, u = torch.meshgrid(c, c, indexing="ij")
    return ((u.abs() ** 4 + v.abs() ** 4) <= 0.954).float()


def synthetic_position_map(resolution: int) -> torch.Tensor:
    """``[3, P, P]`` a smooth face-forward surface in EG3D's world (+y up, face toward +z): u sweeps 200 degrees
    around +y, v from the crown (row 0) down to the chin, on an ellipsoid with a nose bump; about the extent of
    upstream's registered template (x +-0.29, y -0.46..0.40, nose tip at z = 0.20)."""
    c = (torch.arange(resolution, dtype=torch.float64) + 0.5) / resolution * 2 - 1
    v, u = torch.meshgrid(c, c, indexing="ij")
    az, el = u * math.radians(100.0), -v * math.radians(75.0)
    r = 1.0 + 0.1 * torch.exp(-(u / 0.12) ** 2 - ((v - 0.1) / 0.2) ** 2)  # nose
    x = 0.29 * r * torch.cos(el) * torch.sin(az)
    y = 0.45 * torch.sin(el) - 0.02
    z = 0.25 * r * torch.cos(el) * torch.cos(az) - 0.075
    return torch.stack([x, y, z]).float()


def synthetic_template(plane_resolution: int = 256, grid_size: int = 512) -> UVTemplate:
    """A template with upstream's sampling rule on :func:`synthetic_chart` / :func:`synthetic_position_map`:
    235,156 Gaussians at P = 256, N = 512 and 58,284 at N = 256 (the shipped template: 235,232 and 58,361)."""
    mask = synthetic_chart(plane_resolution)
    pmap = synthetic_position_map(plane_resolution)
    grid = uv_grid_from_mask(mask, grid_size)
    return UVTemplate(grid, pmap, sample_positions(pmap, grid))
