"""The blur applied to every image the discriminator sees during the first kimg of training.

CGS-GAN (like EG3D) blurs both real and generated images before D for the first ``blur_fade_kimg``
(200 * batch / 32 kimg), with a width that falls linearly from ``sigma0`` = 10 px to 0. Early on, this hides
the high frequencies the generator cannot produce yet, so D cannot win on them alone.

Kernel: taps ``2^(-(x / sigma)^2)`` for integer ``x`` in ``[-floor(3 sigma), floor(3 sigma)]``, normalised to
sum 1, applied separably (rows, then columns). Padding is **zero** padding to the same size, as the official
filter (``padding = radius``): the image's border therefore fades towards 0, which for images in [-1, 1] is
mid grey. Zero padding also works when the radius exceeds the image size (30 px at sigma 10 on a 16 px test
image), where reflect padding cannot. Applied as two matrix products with banded matrices (``blur_images``).
"""

from __future__ import annotations

import math

import torch


def blur_kernel(sigma: float, dtype: torch.dtype = torch.float32,
                device: torch.device | str | None = None) -> torch.Tensor:
    """The normalised 1-D kernel ``[2 * floor(3 sigma) + 1]`` (``[1.0]`` when the radius is 0)."""
    radius = int(math.floor(3.0 * sigma)) if sigma > 0 else 0
    if radius == 0:
        return torch.ones(1, dtype=dtype, device=device)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
    taps = torch.exp2(-(x / sigma).square())
    return (taps / taps.sum()).to(dtype)


def blur_matrix(sigma: float, size: int, dtype: torch.dtype = torch.float32,
                device: torch.device | str | None = None) -> torch.Tensor:
    """``[size, size]`` banded matrix ``M`` with ``(M @ v)[i] = sum_k taps[k] * v[i + k - r]`` over the
    taps of :func:`blur_kernel` that land inside ``v``: the zero-padded 1-D blur of a length-``size`` signal
    as one matrix product. Built on ``device`` (no host-to-device copy)."""
    f = blur_kernel(sigma, dtype=dtype, device=device)
    r = (f.numel() - 1) // 2
    idx = torch.arange(size, device=device)
    offset = idx[None, :] - idx[:, None] + r  # tap index of input k for output i
    inside = (offset >= 0) & (offset <= 2 * r)
    return torch.where(inside, f[offset.clamp(0, 2 * r)], torch.zeros((), dtype=dtype, device=device))


def blur_images(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur ``img [B, C, H, W]`` with the separable kernel of :func:`blur_kernel` (zero padding, same size).

    Identity (the input itself, not a copy) when ``sigma <= 0`` or the radius ``floor(3 sigma)`` is 0.
    Computed as ``M_H @ img @ M_W^T`` with the banded matrices of :func:`blur_matrix`: two matrix products
    on the tensor cores instead of single-channel convolutions with up to 61 taps, which cuDNN ran slowly
    (their backward alone took 12 % of a 128 px training step on an H200; docs/training.md). The same
    linear map, so differentiable to any order (R1 through it works); under TF32 the products round like
    TF32 convolutions do.
    """
    if img.dim() != 4:
        raise ValueError(f"img must have shape [B, C, H, W], got {list(img.shape)}")
    sigma = float(sigma)
    if not sigma > 0 or math.floor(3.0 * sigma) == 0:
        return img
    h, w = img.shape[-2:]
    m_h = blur_matrix(sigma, h, img.dtype, img.device)
    m_w = m_h if w == h else blur_matrix(sigma, w, img.dtype, img.device)
    return torch.matmul(torch.matmul(m_h, img), m_w.T)


def blur_sigma(cur_nimg: float, fade_kimg: float, sigma0: float = 10.0) -> float:
    """``sigma0 * max(0, 1 - cur_nimg / (fade_kimg * 1000))``: the D-input blur at ``cur_nimg`` images shown.

    ``fade_kimg <= 0`` switches the blur off (0). The official default is ``fade_kimg = 200 * batch / 32``;
    the official training also sets it to 0 on resume unless asked to keep it.
    """
    if fade_kimg <= 0:
        return 0.0
    return float(sigma0) * max(0.0, 1.0 - float(cur_nimg) / (float(fade_kimg) * 1000.0))
