"""The point side of the generator: positional encoding of the learnable points, per-level upsampling of
token features into child points, the Gaussian/anchor heads, and the placement rules.

Attribute layout of one point (anchor or Gaussian), pre-activation as 3DGS stores it:
    xyz [3] world units, log-scale [3], quaternion (w, x, y, z) [4], colour as SH DC [3], opacity logit [1].

Placement (CGS-GAN): level-0 anchors are placed freely (``0.2 * raw``) with a smooth cap on their size;
every other point is a child of an anchor ``a`` of the previous level and lies inside ``a``'s oriented
+-1 sigma box: ``xyz = R(q_a) diag(exp s_a) tanh(raw) + xyz_a``; its log-scale is at most the parent's
(reduced by ``log split_ratio`` while the parent is larger than half a pixel); rotation, colour and opacity
add to the parent's. Scale, rotation, colour and opacity are soft-clipped to (-20, 20) by ``20 tanh(v/20)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.layers import EqualLinear

# (name, size, weight_init, bias_init) of the heads, in the order of the fused output
HEAD_FIELDS = (("xyz", 3, 1.0, 0.0), ("scale", 3, 0.1, -1.0), ("rotation", 4, 0.1, 0.0),
               ("color", 3, 1.0, 0.0), ("opacity", 1, 1.0, 0.0))
HEAD_SIZE = sum(f[1] for f in HEAD_FIELDS)  # 14
SOFT_CLIP = 20.0


@dataclass(frozen=True)
class Points:
    """Points of one or more levels packed in one tensor ``v [B, P, 14]``: xyz 3, log-scale 3, quaternion 4,
    colour 3, opacity 1 (one tensor, so each step is one kernel rather than five)."""

    v: torch.Tensor

    xyz = property(lambda self: self.v[..., 0:3])
    scale = property(lambda self: self.v[..., 3:6])
    rotation = property(lambda self: self.v[..., 6:10])
    color = property(lambda self: self.v[..., 10:13])
    opacity = property(lambda self: self.v[..., 13:14])

    def repeat(self, ratio: int) -> Points:
        """Each point repeated ``ratio`` times, children of one parent contiguous."""
        return Points(self.v.repeat_interleave(ratio, dim=1))

    @staticmethod
    def cat(parts: list[Points]) -> Points:
        return Points(torch.cat([p.v for p in parts], dim=1))


class PositionalEncoding(nn.Module):
    """``p [B, L, 3]`` in (-1, 1) -> ``[B, L, 2 * dim]``: ``sin(Linear(p))`` then a learned per-axis table
    ``[3, dim, 1, res]`` sampled at ``p`` (bilinear) and summed over axes / sqrt(3).

    ``official_table_lookup=True`` reproduces the official lookup, which puts the coordinate on the table's
    height axis (size 1), so every point reads ``(1 - |p|/2)`` times the mean of the two middle columns;
    the default samples along the ``res`` axis as intended.
    """

    def __init__(self, dim: int, res: int, official_table_lookup: bool = False) -> None:
        super().__init__()
        self.official_table_lookup = official_table_lookup
        self.fourier = nn.Linear(3, dim)
        bound = math.sqrt(9.0 / 3.0)  # first-layer SIREN-style init, U(+-sqrt(9 / fan_in))
        nn.init.uniform_(self.fourier.weight, -bound, bound)
        self.table = nn.Parameter(torch.randn(3, dim, 1, res))

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        B, L, _ = p.shape
        coord = p.permute(0, 2, 1).reshape(3 * B, 1, L, 1)  # [3B, 1, L, 1], row b*3 + axis
        zero = torch.zeros_like(coord)
        grid = torch.cat([zero, coord] if self.official_table_lookup else [coord, zero], dim=-1)
        table = self.table.to(p.dtype).repeat(B, 1, 1, 1)  # [3B, dim, 1, res]
        sampled = F.grid_sample(table, grid, mode="bilinear", align_corners=False)  # [3B, dim, 1, L]
        const = sampled.reshape(B, 3, -1, L).sum(1).permute(0, 2, 1) / math.sqrt(3.0)
        return torch.cat([torch.sin(self.fourier(p)), const], dim=-1)


class PointUpsample(nn.Module):
    """Token features ``[B, L, width]`` -> child features ``[B, L * ratio, channels]``: a "sub-pixel" FC to
    ``channels * ratio`` (leaky ReLU) plus a residual FC (identity when ``channels == width``) repeated per
    child, over sqrt(2). Child ``j`` of token ``l`` is row ``l * ratio + j``."""

    def __init__(self, width: int, channels: int, ratio: int) -> None:
        super().__init__()
        self.channels, self.ratio = channels, ratio
        self.subpixel = EqualLinear(width, channels * ratio, "lrelu")
        self.residual = EqualLinear(width, channels) if channels != width else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, _ = x.shape
        up = self.subpixel(x).reshape(B, L * self.ratio, self.channels)
        res = x if self.residual is None else self.residual(x)
        return (res.repeat_interleave(self.ratio, dim=1) + up) / math.sqrt(2.0)


class PointHead(nn.Module):
    """The five linear heads of one level fused into one FC: ``[B, P, C] -> Points`` (raw values)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc = EqualLinear(channels, HEAD_SIZE)
        with torch.no_grad():  # per-field init, as separate heads would have
            row = 0
            for _, size, w_init, b_init in HEAD_FIELDS:
                self.fc.weight[row : row + size] *= w_init
                self.fc.bias[row : row + size] = b_init
                row += size

    def forward(self, f: torch.Tensor) -> Points:
        return Points(self.fc(f))


def soft_clip(v: torch.Tensor) -> torch.Tensor:
    return torch.tanh(v / SOFT_CLIP) * SOFT_CLIP


def place_first_anchors(raw: Points, parent: Points, scale_threshold: float) -> Points:
    """Level-0 anchors: free placement ``0.2 * raw``; log-scale ``thr - softplus(thr - s)`` (a smooth min)."""
    s = parent.scale + raw.scale
    s = scale_threshold - F.softplus(scale_threshold - s)
    rest = raw.v[..., 6:] + parent.v[..., 6:]
    return Points(torch.cat([0.2 * raw.xyz, soft_clip(torch.cat([s, rest], -1))], -1))


def place_children(raw: Points, parent: Points, split_ratio: float, split_min_scale: float) -> Points:
    """Children of ``parent`` (already repeated to one parent per child), see the module docstring."""
    q = parent.rotation
    q = q / (q.norm(dim=-1, keepdim=True) + 1e-3)
    offset = torch.exp(parent.scale) * torch.tanh(raw.xyz)  # in the parent's frame, inside +-1 sigma
    xyz = rotate(q, offset) + parent.xyz
    split = parent.scale.amax(-1, keepdim=True) > math.log(split_min_scale)
    base = torch.where(split, (parent.scale - math.log(split_ratio)).clamp(-100.0, 0.0), parent.scale)
    s = base - F.softplus(-raw.scale)
    rest = raw.v[..., 6:] + parent.v[..., 6:]  # rotation, colour, opacity add up through the hierarchy
    return Points(torch.cat([xyz, soft_clip(torch.cat([s, rest], -1))], -1))


def rotate(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``R(q) v`` for quaternions ``q [..., 4]`` (w, x, y, z) and ``v [..., 3]``, with R the usual matrix
    ``I + 2w[u]x + 2[u]x^2`` (u = (x, y, z)), i.e. the unit-quaternion formula applied as is (q need not be
    exactly unit length): ``v + 2 w (u x v) + 2 u x (u x v)``."""
    w, u = q[..., :1], q[..., 1:]
    uv = torch.linalg.cross(u, v, dim=-1)
    return v + 2.0 * (w * uv + torch.linalg.cross(u, uv, dim=-1))
