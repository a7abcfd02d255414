"""Floaters: the share of rendered opacity that lies outside the head's dilated silhouette.

For one rendered view with accumulated opacity ``alpha [H, W]``:

1. the head is the largest 8-connected region of solid pixels (``alpha > SOLID_ALPHA``), holes filled; a
   head on its neck and shoulders is one region from every side;
2. it is dilated by ``round(DILATE_FRACTION * resolution)`` pixels (at least 2): 3 px at 128, 5 px at 256,
   which covers the soft edge a sharp silhouette has after antialiasing, and wisps of hair;
3. the floater share is ``sum(alpha outside) / sum(alpha)``.

Pooled over views and heads as the ratio of the two sums. Everything semi-transparent away from the head
(fog, specks, detached blobs) counts; a solid blob bigger than the head would be taken for the head, which
no generator we train makes. The silhouette is the rendered head's own, not a ground truth's, so a head
whose hair differs from some reference is not counted as floaters; on the synthetic held-out split the
ground-truth heads themselves score below 0.1 % (tests/training/test_metrics_groundtruth.py).

:func:`generator_floaters` measures random heads of a generator (z ~ N(0, I), seeded, ``truncation_psi``)
from given cameras, by default the held-out split's 10 evaluation views (training/synthetic_heads/cameras.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from scipy import ndimage

from core.camera import Cameras
from core.gaussians import GaussianSet
from core.render import Backend, render

SOLID_ALPHA = 0.5
DILATE_FRACTION = 0.02


@dataclass(frozen=True)
class FloaterResult:
    """Summed opacity ``outside`` the dilated head silhouettes and in ``total``, over ``views`` views."""

    outside: float = 0.0
    total: float = 0.0
    views: int = 0

    def __add__(self, other: FloaterResult) -> FloaterResult:
        return FloaterResult(self.outside + other.outside, self.total + other.total, self.views + other.views)

    @property
    def share(self) -> float:
        """Floater share in [0, 1]; ``nan`` if nothing was drawn."""
        return self.outside / self.total if self.total > 0 else math.nan

    def as_dict(self) -> dict:
        return {"share": self.share, "percent": 100.0 * self.share, "views": self.views}


def dilation_px(resolution: int) -> int:
    return max(2, round(DILATE_FRACTION * resolution))


def head_silhouette(alpha: np.ndarray, dilate: int | None = None) -> np.ndarray:
    """``[H, W]`` bool: the dilated silhouette of the largest solid region of ``alpha [H, W]`` (in [0, 1]);
    all False when nothing is solid. ``dilate``: pixels (default :func:`dilation_px` of the width)."""
    solid = np.asarray(alpha) > SOLID_ALPHA
    labels, count = ndimage.label(solid, structure=np.ones((3, 3), bool))
    if count == 0:
        return np.zeros(solid.shape, bool)
    sizes = np.bincount(labels.ravel())[1:]
    head = ndimage.binary_fill_holes(labels == 1 + int(np.argmax(sizes)))
    r = dilation_px(solid.shape[1]) if dilate is None else dilate
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    return ndimage.binary_dilation(head, structure=(xx * xx + yy * yy) <= r * r)


def floaters_of_alpha(alpha: np.ndarray | torch.Tensor) -> FloaterResult:
    """Floater sums of rendered opacities ``alpha [V, H, W]`` (or ``[H, W]``) in [0, 1]."""
    a = alpha.detach().double().cpu().numpy() if isinstance(alpha, torch.Tensor) else np.asarray(alpha, np.float64)
    a = a[None] if a.ndim == 2 else a
    result = FloaterResult()
    for view in a:
        inside = head_silhouette(view)
        result = result + FloaterResult(float(view[~inside].sum()), float(view.sum()), 1)
    return result


def scene_floaters(scene: GaussianSet, cameras: Cameras, resolution: int, backend: Backend = "auto") -> FloaterResult:
    """Floater sums of one scene (batch shape ``[]``) seen from ``cameras [V]``."""
    with torch.no_grad():
        out = render(scene, cameras.to(scene.device, scene.dtype), resolution, resolution, mode="rgb", backend=backend)
    return floaters_of_alpha(out.alpha[..., 0])


def generator_floaters(G: torch.nn.Module, cameras: Cameras, num_heads: int = 64, resolution: int | None = None,
                       truncation_psi: float = 1.0, seed: int = 0, batch: int = 4,
                       device: torch.device | str | None = None) -> FloaterResult:
    """Floater sums over ``num_heads`` random heads of ``G`` (seeded z), each from every camera ``[V]``."""
    device = torch.device(device) if device is not None else next(G.parameters()).device
    res = resolution or G.config.resolution
    gen = torch.Generator().manual_seed(seed)
    parts: list[FloaterResult] = []
    for start in range(0, num_heads, batch):
        z = torch.randn(min(batch, num_heads - start), G.config.z_dim, generator=gen)
        with torch.no_grad():
            scenes = G.synthesis(G.map(z.to(device), truncation_psi)).gaussians
        parts.extend(scene_floaters(s, cameras, res) for s in scenes.unbind())
    return pool(parts)


def pool(parts: Sequence[FloaterResult]) -> FloaterResult:
    return sum(parts, FloaterResult())
