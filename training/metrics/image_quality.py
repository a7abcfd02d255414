"""Full-reference image quality of renders against ground truth, in the channels-last layout of the metrics
(``[..., H, W, C]`` in [0, 1]): the definitions are :mod:`core.image_metrics`' (one owner), evaluated in
float64.

SSIM is Wang et al. (2004) as most papers report it: an 11 x 11 Gaussian window with sigma 1.5, K1 = 0.01,
K2 = 0.03, dynamic range 1, population covariances, per channel over the window positions fully inside the
image, averaged over positions and channels. It equals ``skimage.metrics.structural_similarity(...,
gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=-1)`` (tested).
"""

from __future__ import annotations

import math

import torch

from core import image_metrics


def _channels_first(t: torch.Tensor) -> torch.Tensor:
    return t.double().movedim(-1, -3)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of ``pred``/``target`` ``[..., H, W, C]`` in [0, 1]; ``inf`` where they are equal."""
    mse = image_metrics.mse(_channels_first(pred), _channels_first(target))
    return torch.where(mse > 0, -10.0 * torch.log10(mse.clamp_min(1e-300)), torch.full_like(mse, math.inf))


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM of ``pred``/``target`` ``[..., H, W, C]`` in [0, 1] (see the module docstring); images
    must be at least 11 px on each side. Returns ``[...]`` float64."""
    if pred.shape != target.shape or pred.dim() < 3:
        raise ValueError(f"pred and target must both be [..., H, W, C], got {list(pred.shape)} and {list(target.shape)}")
    return image_metrics.ssim(_channels_first(pred), _channels_first(target))
