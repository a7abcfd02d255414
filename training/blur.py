"""The blur applied to every image the discriminator sees during the first kimg of training.

CGS-GAN (like EG3D) blurs both real and generated images before D for the first ``blur_fade_kimg``
(200 * batch / 32 kimg), with a width that falls linearly from ``sigma0`` = 10 px to 0. Early on, this hides
the high frequencies the generator cannot produce yet, so D cannot win on them alone.

Kernel: taps ``2^(-(x / sigma)^2)`` for integer ``x`` in ``[-floor(3 sigma), floor(3 sigma)]``, normalised to
sum 1, applied separably (rows, then columns). Padding is **zero** padding to the same size, as the official
filter (``padding = radius``): the image's border therefore fades towards 0, which for images in [-1, 1] is
mid grey. Zero padding also works when the radius exceeds the image size (30 px at sigma 10 on a 16 px test
image), where reflect padding cannot.

Computed as two matrix products with banded ``[H, H]`` / ``[W, W]`` matrices (:func:`banded_matrix`,
:func:`separable_product`; the discriminator's ``[1, 3, 3, 1]`` blurs use the same two), not as
convolutions: the kernel grows and shrinks by a tap on each side as sigma falls, and every new length was a
new convolution shape that cuDNN (``cudnn.benchmark``) autotuned again, in the G/D step and in R1's double
backward: on the H200 a tick that met a new width took 3-20x a clean one, so the fade doubled the cost of
the first 100 kimg of the 256 px recipe (9.5-10 s/kimg against 4.7 after it; docs/training.md). A matrix
product has the image's shape whatever the width, so nothing is retuned; it is linear, so R1 differentiates
through it as before.
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


def banded_matrix(taps: torch.Tensor, n: int, padding: int, stride: int = 1) -> torch.Tensor:
    """The 1-D correlation of a length-``n`` signal with ``taps [k]``, ``padding`` zeros each side and
    ``stride``, as a matrix ``M [m, n]``, ``m = (n + 2 padding - k) // stride + 1``: ``y = M @ x``, row ``i``
    holding ``taps[j - stride i + padding]`` at the columns ``j`` where that index is in ``[0, k)`` (the padding
    is the columns left out). Symmetric taps make it the convolution as well. Built on the taps' device and
    dtype from index arithmetic, without a host round trip."""
    k = taps.numel()
    m = (n + 2 * padding - k) // stride + 1
    rows = torch.arange(m, device=taps.device).view(m, 1)
    tap = torch.arange(n, device=taps.device).view(1, n) - stride * rows + padding  # [m, n]
    inside = (tap >= 0) & (tap < k)
    return torch.where(inside, taps[tap.clamp(0, k - 1)], taps.new_zeros(()))


def separable_product(x: torch.Tensor, mh: torch.Tensor, mw: torch.Tensor) -> torch.Tensor:
    """``mh @ x @ mw^T`` for every channel image of ``x [B, C, H, W]`` (``mh [Ho, H]``, ``mw [Wo, W]``; out
    ``[B, C, Ho, Wo]``, in ``x``'s memory format). The left products are ``bmm`` with the matrix expanded
    over the batch (stride 0, not copied); NCHW's right product is one GEMM, channels-last input is multiplied
    on its ``[B, H, W, C]`` layout directly. Linear, so autograd differentiates it to any order."""
    n, c, h, w = x.shape
    ho, wo = mh.shape[0], mw.shape[0]
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        y = torch.bmm(mh.expand(n, ho, h), x.permute(0, 2, 3, 1).reshape(n, h, w * c))  # [B, Ho, W*C]
        y = torch.bmm(mw.expand(n * ho, wo, w), y.reshape(n * ho, w, c))             # [B*Ho, Wo, C]
        return y.reshape(n, ho, wo, c).permute(0, 3, 1, 2)                            # NHWC memory
    y = torch.matmul(x.reshape(n * c * h, w), mw.t())                                 # [B*C*H, Wo]
    y = torch.bmm(mh.expand(n * c, ho, h), y.reshape(n * c, h, wo))                   # [B*C, Ho, Wo]
    return y.reshape(n, c, ho, wo)


def blur_images(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur ``img [B, C, H, W]`` with the separable kernel of :func:`blur_kernel` (zero padding, same size):
    ``M_H @ img @ M_W^T`` per channel image (:func:`separable_product` with :func:`banded_matrix`).

    Identity (the input itself, not a copy) when ``sigma <= 0`` or the radius ``floor(3 sigma)`` is 0.
    Differentiable to any order (it is linear), so R1 through it works. Float32 products follow
    ``torch.backends.cuda.matmul.allow_tf32`` on CUDA (TF32 under the training's ``precision="tf32"``, as
    the convolutions are).
    """
    if img.dim() != 4:
        raise ValueError(f"img must have shape [B, C, H, W], got {list(img.shape)}")
    sigma = float(sigma)
    if not sigma > 0 or math.floor(3.0 * sigma) == 0:
        return img
    f = blur_kernel(sigma, dtype=img.dtype, device=img.device)
    r = (f.numel() - 1) // 2
    return separable_product(img, banded_matrix(f, img.shape[2], r), banded_matrix(f, img.shape[3], r))


def blur_sigma(cur_nimg: float, fade_kimg: float, sigma0: float = 10.0) -> float:
    """``sigma0 * max(0, 1 - cur_nimg / (fade_kimg * 1000))``: the D-input blur at ``cur_nimg`` images shown.

    ``fade_kimg <= 0`` switches the blur off (0). The official default is ``fade_kimg = 200 * batch / 32``;
    the official training also sets it to 0 on resume unless asked to keep it.
    """
    if fade_kimg <= 0:
        return 0.0
    return float(sigma0) * max(0.0, 1.0 - float(cur_nimg) / (float(fade_kimg) * 1000.0))
