"""CGS-GAN losses: non-saturating logistic GAN loss, lazy R1, the anchor regularizers, and multi-view views.

Images entering D are ``2 * rgb - 1`` (not clamped), ``[B, 3, H, W]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from core.camera import Cameras
from core.gaussians import GaussianSet
from core.render import render
from training.no_sync import to_device


def render_for_d(scenes: GaussianSet, labels: torch.Tensor, resolution: int, random_background: bool,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Render ``scenes [B, N]`` from cameras given as labels ``[B, V, 25]`` (V views per scene).

    Returns D inputs ``[B, V, 3, H, W]`` in about [-1, 1], on a random uniform background colour per image
    (or white). One batched render call: no Python loop over samples.
    """
    B, V = labels.shape[:2]
    cams = Cameras.from_label(labels, validate=False)
    if random_background:  # drawn on the CPU from ``generator`` so a run is reproducible on any device
        bg = to_device(torch.rand(B, V, 3, generator=generator), labels.device, labels.dtype)
    else:
        bg = torch.ones(B, V, 3, device=labels.device, dtype=labels.dtype)
    out = render(scenes, cams, resolution, resolution, background=bg, mode="rgb")
    return out.color.permute(0, 1, 4, 2, 3) * 2.0 - 1.0


def multiview_labels(labels: torch.Tensor, num_views: int) -> torch.Tensor:
    """``[B, 25] -> [B, V, 25]``: view ``v`` of scene ``b`` uses the camera of sample ``(b - v - 1) mod B``
    (the batch rolled by one more position per view, as in CGS-GAN's multi-view regularization)."""
    return torch.stack([torch.roll(labels, shifts=v + 1, dims=0) for v in range(num_views)], dim=1)


def g_adversarial(d_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating G loss ``softplus(-D(fake))``, per sample."""
    return F.softplus(-d_logits)


def d_adversarial(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """D loss terms ``softplus(D(fake))`` and ``softplus(-D(real))``, per sample."""
    return F.softplus(fake_logits), F.softplus(-real_logits)


def r1_penalty(real_images: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """``||d D(x) / dx||^2`` per sample (``real_images`` must require grad; keeps the graph for backward)."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return grad.square().sum(dim=[1, 2, 3])


def knn_loss(anchors: torch.Tensor, k: int) -> torch.Tensor:
    """Mean squared offset between each level-0 anchor ``[B, L, 3]`` and its ``k`` nearest other anchors,
    averaged over coordinates (the squared distance / 3): keeps the coarse points spread evenly."""
    L = anchors.shape[1]
    k = min(k, L - 1)
    d2 = (anchors[:, :, None] - anchors[:, None]).square().sum(-1)  # [B, L, L], exact (no matmul trick)
    d2 = d2 + torch.eye(L, device=anchors.device, dtype=anchors.dtype) * 1e9  # exclude self
    nearest = d2.topk(k, dim=-1, largest=False).values  # [B, L, k]
    return nearest.mean() / 3.0


def center_loss(anchors: torch.Tensor) -> torch.Tensor:
    """Mean over batch and coordinates of the squared centroid of the level-0 anchors ``[B, L, 3]``."""
    return anchors.mean(dim=1).square().mean()
