"""The blur applied to every image the discriminator sees during the first kimg of training.

CGS-GAN (like EG3D) blurs both real and generated images before D for the first ``blur_fade_kimg``
(200 * batch / 32 kimg), with a width that falls linearly from ``sigma0`` = 10 px to 0. Early on, this hides
the high frequencies the generator cannot produce yet, so D cannot win on them alone.

Kernel: taps ``2^(-(x / sigma)^2)`` for integer ``x`` in ``[-floor(3 sigma), floor(3 sigma)]``, normalised to
sum 1, applied separably (rows, then columns). Padding is **zero** padding to the same size, as the official
filter (``padding = radius``): the image's border therefore fades towards 0, which for images in [-1, 1] is
mid grey. Zero padding also works when the radius exceeds the image size (30 px at sigma 10 on a 16 px test
image), where reflect padding cannot.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def blur_kernel(sigma: float, dtype: torch.dtype = torch.float32,
                device: torch.device | str | None = None) -> torch.Tensor:
    """The normalised 1-D kernel ``[2 * floor(3 sigma) + 1]`` (``[1.0]`` when the radius is 0)."""
    radius = int(math.floor(3.0 * sigma)) if sigma > 0 else 0
    if radius == 0:
        return torch.ones(1, dtype=dtype, device=device)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
    taps = torch.exp2(-(x / sigma).square())
    return (taps / taps.sum()).to(dtype)


def blur_images(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur ``img [B, C, H, W]`` with the separable kernel of :func:`blur_kernel` (zero padding, same size).

    Identity (the input itself, not a copy) when ``sigma <= 0`` or the radius ``floor(3 sigma)`` is 0.
    Differentiable to any order (it is a linear convolution), so R1 through it works.
    """
    if img.dim() != 4:
        raise ValueError(f"img must have shape [B, C, H, W], got {list(img.shape)}")
    sigma = float(sigma)
    if not sigma > 0 or math.floor(3.0 * sigma) == 0:
        return img
    f = blur_kernel(sigma, dtype=img.dtype, device=img.device)
    r = (f.numel() - 1) // 2
    b, c, h, w = img.shape
    x = img.reshape(b * c, 1, h, w)
    x = F.conv2d(x, f.view(1, 1, 1, -1), padding=(0, r))
    x = F.conv2d(x, f.view(1, 1, -1, 1), padding=(r, 0))
    return x.reshape(b, c, h, w)


def blur_sigma(cur_nimg: float, fade_kimg: float, sigma0: float = 10.0) -> float:
    """``sigma0 * max(0, 1 - cur_nimg / (fade_kimg * 1000))``: the D-input blur at ``cur_nimg`` images shown.

    ``fade_kimg <= 0`` switches the blur off (0). The official default is ``fade_kimg = 200 * batch / 32``;
    the official training also sets it to 0 on resume unless asked to keep it.
    """
    if fade_kimg <= 0:
        return 0.0
    return float(sigma0) * max(0.0, 1.0 - float(cur_nimg) / (float(fade_kimg) * 1000.0))
