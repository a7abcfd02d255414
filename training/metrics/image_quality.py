"""Full-reference image quality: PSNR and SSIM of predicted images against ground truth.

SSIM is Wang et al. (2004) as most papers report it: an 11 x 11 Gaussian window with sigma 1.5, K1 = 0.01,
K2 = 0.03, dynamic range 1, population (not sample) covariances, computed per channel and averaged over the
window positions that lie fully inside the image (no padding) and over the channels. It equals
``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=1, channel_axis=-1)`` (checked in the tests).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SSIM_SIGMA = 1.5
SSIM_WINDOW = 11
SSIM_K1, SSIM_K2 = 0.01, 0.03


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of ``pred``/``target`` ``[..., H, W, C]`` in [0, 1]; ``inf`` where they are equal."""
    mse = ((pred.double() - target.double()) ** 2).mean((-3, -2, -1))
    return torch.where(mse > 0, -10.0 * torch.log10(mse.clamp_min(1e-300)), torch.full_like(mse, math.inf))


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM of ``pred``/``target`` ``[..., H, W, C]`` in [0, 1] (see the module docstring); images
    must be at least 11 px on each side. Returns ``[...]`` float64."""
    if pred.shape != target.shape or pred.dim() < 3:
        raise ValueError(f"pred and target must both be [..., H, W, C], got {list(pred.shape)} and {list(target.shape)}")
    *batch, H, W, C = pred.shape
    if min(H, W) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW} px per side, got {H}x{W}")
    x = pred.double().reshape(-1, H, W, C).permute(0, 3, 1, 2).reshape(-1, 1, H, W)
    y = target.double().reshape(-1, H, W, C).permute(0, 3, 1, 2).reshape(-1, 1, H, W)
    r = SSIM_WINDOW // 2
    g = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float64, device=x.device) / SSIM_SIGMA) ** 2)
    g = g / g.sum()

    def blur(t: torch.Tensor) -> torch.Tensor:  # separable, valid positions only
        return F.conv2d(F.conv2d(t, g.view(1, 1, 1, -1)), g.view(1, 1, -1, 1))

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = SSIM_K1 ** 2, SSIM_K2 ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean((-3, -2, -1)).reshape(*batch, C).mean(-1)
