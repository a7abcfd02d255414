"""Image similarity measures that need no pretrained weights: PSNR and SSIM, optionally weighted per pixel.

Images are ``[..., C, H, W]`` float tensors with values in [0, 1] (data range 1). Weights are ``[..., 1, H, W]``
(or broadcastable) in [0, 1]; a weighted measure averages only where the weight is, in proportion to it.
Both functions are differentiable, so ``1 - ssim`` and the MSE behind ``psnr`` serve as losses too.

SSIM follows Wang et al. 2004 as most libraries compute it: an 11 x 11 Gaussian window (sigma 1.5), K1 0.01,
K2 0.03, statistics per channel over the valid region (no padding), the map averaged over channels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def mse(a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """``[...]`` mean squared error over ``C, H, W`` (weighted mean over pixels when ``weight`` is given)."""
    err = (a - b) ** 2
    if weight is None:
        return err.mean(dim=(-3, -2, -1))
    w = weight.expand_as(err[..., :1, :, :])
    return (err * w).sum(dim=(-3, -2, -1)) / (w.sum(dim=(-3, -2, -1)) * err.shape[-3]).clamp(min=1e-12)


def psnr(a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """``[...]`` PSNR in dB (data range 1) of each image pair; capped at 100 dB for identical images."""
    return (-10.0 * torch.log10(mse(a, b, weight).clamp(min=1e-10))).clamp(max=100.0)


def _gaussian_window(size: int, sigma: float, like: torch.Tensor) -> torch.Tensor:
    x = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def ssim_map(a: torch.Tensor, b: torch.Tensor, window: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA
             ) -> torch.Tensor:
    """``[..., 1, H - window + 1, W - window + 1]`` local SSIM, averaged over channels (valid region)."""
    if a.shape != b.shape or a.dim() < 3:
        raise ValueError(f"ssim needs two [..., C, H, W] tensors of one shape, got {list(a.shape)}, {list(b.shape)}")
    lead, (C, H, W) = a.shape[:-3], a.shape[-3:]
    if min(H, W) < window:
        raise ValueError(f"ssim needs images of at least {window} x {window} px, got {H} x {W}")
    x = torch.cat([a.reshape(-1, C, H, W), b.reshape(-1, C, H, W)], 0)
    g = _gaussian_window(window, sigma, x)
    stack = torch.cat([x, x * x, x[: x.shape[0] // 2] * x[x.shape[0] // 2:]], 0)  # a, b, a², b², ab
    n = stack.shape[0] * C
    flat = stack.reshape(1, n, H, W)
    blurred = F.conv2d(flat, g.view(1, 1, 1, -1).expand(n, 1, 1, window), groups=n)
    blurred = F.conv2d(blurred, g.view(1, 1, -1, 1).expand(n, 1, window, 1), groups=n)
    m = a.reshape(-1, C, H, W).shape[0]
    blurred = blurred.reshape(-1, C, H - window + 1, W - window + 1)
    mu_a, mu_b = blurred[:m], blurred[m:2 * m]
    e_aa, e_bb = blurred[2 * m:3 * m], blurred[3 * m:4 * m]
    e_ab = blurred[4 * m:]
    var_a, var_b, cov = e_aa - mu_a * mu_a, e_bb - mu_b * mu_b, e_ab - mu_a * mu_b
    c1, c2 = SSIM_K1 ** 2, SSIM_K2 ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2))
    return s.mean(1, keepdim=True).reshape(lead + (1,) + s.shape[-2:])


def ssim(a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor | None = None, window: int = SSIM_WINDOW,
         sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """``[...]`` mean SSIM of each image pair (1 = identical); with ``weight`` (``[..., 1, H, W]``) the map is
    averaged with the weight's central crop (the valid region) as weights."""
    s = ssim_map(a, b, window, sigma)
    if weight is None:
        return s.mean(dim=(-3, -2, -1))
    cut = (window - 1) // 2
    w = weight.expand(a.shape[:-3] + (1,) + a.shape[-2:])[..., cut:cut + s.shape[-2], cut:cut + s.shape[-1]]
    return (s * w).sum(dim=(-3, -2, -1)) / w.sum(dim=(-3, -2, -1)).clamp(min=1e-12)


def psnr_from_mse(value: float) -> float:
    """PSNR in dB of a mean squared error (data range 1)."""
    return 100.0 if value <= 1e-10 else -10.0 * math.log10(value)
