"""The discriminator's convolutions: ``conv2d`` whose double backward (the R1 penalty's) is made of ordinary
convolutions, the blur in three implementations (``blur``: depthwise convolutions on ``conv2d``;
``blur_slices``: padding, strided slices and multiply-adds; ``blur_matmul``: two products with banded
matrices), and the autocast helpers the D's layers use.
training/discriminator.py holds the layers and the network.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Literal

import torch
import torch.nn.functional as F

from training.blur import banded_matrix, separable_product


BLUR_TAPS = (0.125, 0.375, 0.375, 0.125)  # [1, 3, 3, 1] / 8, exact in every float format

# How the discriminator's blurs are computed (TrainOptions.d_blur): "conv" (``blur``), "slices"
# (``blur_slices``, float32 sums), "slices_bf16" (``blur_slices`` with sums in the autocast dtype: half the
# memory traffic) or "matmul" (``blur_matmul``: tensor-core matrix products, one read and write per axis).
# The same linear map; only rounding differs.
BlurImpl = Literal["conv", "slices", "slices_bf16", "matmul"]
BLUR_IMPLS: tuple[str, ...] = BlurImpl.__args__


def blur_filter() -> torch.Tensor:
    """``[1, 3, 3, 1] / 8``: one factor of the separable 4x4 blur (their outer product sums to 1)."""
    return torch.tensor(BLUR_TAPS)


_AUTOCAST_DEVICES = ("cpu", "cuda")  # the meta device (FLOP counting, parameter counts) has no autocast


def autocasting(x: torch.Tensor) -> bool:
    return x.device.type in _AUTOCAST_DEVICES and torch.is_autocast_enabled(x.device.type)


def autocast_off(device_type: str):
    """Autocast switched off for ``device_type`` (a no-op on devices without autocast, e.g. meta)."""
    if device_type in _AUTOCAST_DEVICES:
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


# Convolution with a double backward made of ordinary convolutions. With PyTorch's built-in double backward
# of F.conv2d, one R1 step of this D (512 px, batch 8, H100) took 11 s in float32 and 17 s under bf16
# autocast against 55 ms for a plain step; on CPU the profile showed the depthwise blur's double backward
# running one small convolution per channel, and replacing only that left 17.7 s, so the strided
# convolutions' double backward is slow on CUDA too. Here the first backward is written out as a transposed
# convolution (input gradient) and a weight-gradient op, whose own gradients are again plain convolutions:
# the same step takes 499 / 273 ms (float32 / bf16), or 115 / 94 ms with torch.backends.cudnn.benchmark on
# (as the official training runs). Without create_graph the backward is the one fused native call.


Pair = tuple[int, int]


def _pair(v: int | Pair) -> Pair:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _conv_input_grad(g: torch.Tensor, w: torch.Tensor, input_shape: torch.Size, stride: Pair, padding: Pair,
                     groups: int) -> torch.Tensor:
    """Gradient of ``conv2d(x, w)`` w.r.t. ``x`` for output gradient ``g``: a transposed convolution."""
    out_pad = tuple(input_shape[i + 2] - ((g.shape[i + 2] - 1) * stride[i] - 2 * padding[i] + w.shape[i + 2])
                    for i in (0, 1))
    return F.conv_transpose2d(g, w, None, stride, padding, out_pad, groups)


def _native_backward(g, x, w, stride: Pair, padding: Pair, groups: int, mask: list[bool], bias: bool = False):
    return torch.ops.aten.convolution_backward(g, x, w, [w.shape[0]] if bias else None, list(stride),
                                               list(padding), [1, 1], False, [0, 0], groups, mask)


class _ConvWeightGrad(torch.autograd.Function):
    """``(g, x) -> d<g, conv2d(x, w)>/dw`` (bilinear in g and x), differentiable once more."""

    @staticmethod
    def forward(ctx, g, x, w, stride, padding, groups):  # w: for its shape only
        ctx.save_for_backward(g, x)
        ctx.conf = (stride, padding, groups)
        return _native_backward(g, x, w, stride, padding, groups, [False, True, False])[1]

    @staticmethod
    def backward(ctx, ggw):
        g, x = ctx.saved_tensors
        stride, padding, groups = ctx.conf
        gg = gx = None
        if ctx.needs_input_grad[0]:  # d/dg <ggw, dW(g, x)> = conv2d(x, ggw)
            gg = _Conv2d.apply(x, ggw, None, stride, padding, groups)
        if ctx.needs_input_grad[1]:  # d/dx <ggw, dW(g, x)> = d/dx <g, conv2d(x, ggw)>
            gx = _conv_input_grad(g, ggw, x.shape, stride, padding, groups)
        return gg, gx, None, None, None, None


class _Conv2d(torch.autograd.Function):
    """``F.conv2d`` (dilation 1) whose backward is differentiable through efficient ops (see above)."""

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, groups):
        ctx.save_for_backward(x, w)
        ctx.conf = (stride, padding, groups, b is not None)
        return F.conv2d(x, w, b, stride, padding, 1, groups)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        stride, padding, groups, has_bias = ctx.conf
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        need_b = need_b and has_bias
        if not torch.is_grad_enabled():  # plain first-order backward: one fused native call
            mask = [need_x, need_w, need_b]
            gx, gw, gb = _native_backward(g, x, w, stride, padding, groups, mask, has_bias)
            return gx, gw, gb, None, None, None
        gx = _conv_input_grad(g, w, x.shape, stride, padding, groups) if need_x else None
        gw = _ConvWeightGrad.apply(g, x, w.detach(), stride, padding, groups) if need_w else None
        gb = g.sum(dim=(0, 2, 3)) if need_b else None
        return gx, gw, gb, None, None, None


def conv2d(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None, stride: int | Pair = 1,
            padding: int | Pair = 0, groups: int = 1) -> torch.Tensor:
    """``F.conv2d`` (dilation 1) through :class:`_Conv2d`.

    Under autocast, inputs are cast to the autocast dtype here (as autocast casts ``F.conv2d``) and the op
    runs with autocast off, so the backward sees the forward's dtypes on any device.
    """
    stride, padding = _pair(stride), _pair(padding)
    if autocasting(x):
        dt = torch.get_autocast_dtype(x.device.type)
        x, w, b = x.to(dt), w.to(dt), None if b is None else b.to(dt)
        with autocast_off(x.device.type):
            return _Conv2d.apply(x, w, b, stride, padding, groups)
    return _Conv2d.apply(x, w, b, stride, padding, groups)


def blur(x: torch.Tensor, f: torch.Tensor, padding: int, stride: int) -> torch.Tensor:
    """Separable 4x4 blur of every channel of ``x [B, C, H, W]`` with zero ``padding`` and ``stride``:
    two depthwise convolutions with the 1-D factor ``f [4]``."""
    c = x.shape[1]
    x = conv2d(x, f.view(1, 1, 1, -1).expand(c, 1, 1, -1), None, (1, stride), (0, padding), c)
    return conv2d(x, f.view(1, 1, -1, 1).expand(c, 1, -1, 1), None, (stride, 1), (padding, 0), c)


def _blur_axis(x: torch.Tensor, dim: int, stride: int) -> torch.Tensor:
    """``y[..., i, ...] = sum_k BLUR_TAPS[k] * x[..., k + stride * i, ...]`` along ``dim`` (-1 or -2) of an
    already padded ``x``: 4 strided views and 4 (multiply-)adds, so it is linear and its derivatives of any
    order are again slices, pads (slice backward) and adds."""
    n = (x.shape[dim] - len(BLUR_TAPS)) // stride + 1
    span = (n - 1) * stride + 1
    y = None
    for k, t in enumerate(BLUR_TAPS):
        v = x.narrow(dim, k, span)
        if stride > 1:
            v = v[..., ::stride] if dim == -1 else v[..., ::stride, :]
        y = v * t if y is None else torch.add(y, v, alpha=t)
    return y


def blur_slices(x: torch.Tensor, padding: int, stride: int, reduced_sums: bool = False) -> torch.Tensor:
    """The same blur as :func:`blur` (``x [B, C, H, W]``, zero ``padding``, ``stride``; out
    ``[B, C, (H + 2p - 4) // s + 1, (W + 2p - 4) // s + 1]``) without depthwise convolutions: one ``F.pad``,
    then per axis 4 strided slices weighted by ``[1, 3, 3, 1] / 8`` and summed (:func:`_blur_axis`).

    Autograd differentiates it directly (first backward: slice-backward and pad-backward, i.e. zero fills,
    strided copies and adds; R1's double backward: the same again), so it needs no custom autograd function.
    The memory format follows ``x`` (channels-last stays channels-last). The output dtype is :func:`blur`'s:
    the autocast dtype under autocast, else ``x``'s. fp16/bf16 inputs are blurred in float32 and the result
    rounded once, in the forward and (through the casts' backward) in every backward, as a convolution
    accumulates. ``reduced_sums``: keep the partial sums in the output dtype instead (each add rounded, also
    autograd's accumulation of the 4 slices' gradients): half the bytes moved, a few more bf16 roundings.
    """
    out_dtype = torch.get_autocast_dtype(x.device.type) if autocasting(x) else x.dtype
    # Round to the output dtype first, as autocast rounds a convolution's input (a no-op in the D, where the
    # autocast blocks' activations are bf16 already), then sum in float32 unless reduced_sums.
    x = x.to(out_dtype)
    x = x if reduced_sums else x.to(torch.promote_types(out_dtype, torch.float32))
    if padding:
        x = F.pad(x, (padding, padding, padding, padding))
    return _blur_axis(_blur_axis(x, -1, stride), -2, stride).to(out_dtype)


@functools.lru_cache(maxsize=64)
def blur_matrix(n: int, padding: int, stride: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The 1-D blur along one axis of length ``n`` as a matrix ``B [m, n]``, ``m = (n + 2 padding - 4) //
    stride + 1``: ``y = B @ x`` blurs ``x [n]`` with ``[1, 3, 3, 1] / 8``, ``padding`` zeros each side and
    ``stride`` (training.blur.banded_matrix). The taps are exact in every float format. Cached: the D asks for
    the same few shapes every step; built outside inference mode, so a first call under
    ``torch.inference_mode()`` cannot leave an inference tensor in the cache that autograd would later refuse
    to save."""
    with torch.inference_mode(False):
        return banded_matrix(torch.tensor(BLUR_TAPS, dtype=dtype, device=device), n, padding, stride)


def blur_matmul(x: torch.Tensor, padding: int, stride: int) -> torch.Tensor:
    """The same blur as :func:`blur` (``x [B, C, H, W]``, zero ``padding``, ``stride``; same output shape
    and dtype) as two matrix products with the banded :func:`blur_matrix` of each axis
    (training.blur.separable_product), so it runs on the tensor cores and reads and writes the activations
    once per axis (the padding is in the matrices).

    Each output is the 4 taps' products summed in the matmul's accumulator (float32 for bf16 and float32;
    float32 inputs are rounded to TF32 where ``torch.backends.cuda.matmul.allow_tf32`` is on, as the
    convolutions are under ``precision="tf32"``) and rounded once. Autograd differentiates it directly: the
    first backward multiplies by the transposed matrices, R1's double backward by the matrices again. The
    arithmetic is ``H`` or ``W`` multiply-adds per output instead of 4 (the matrices are mostly zeros), cheap
    next to the memory traffic at the D's sizes. Channels-last input stays channels-last.
    """
    out_dtype = torch.get_autocast_dtype(x.device.type) if autocasting(x) else x.dtype
    bh = blur_matrix(x.shape[2], padding, stride, out_dtype, x.device)
    bw = blur_matrix(x.shape[3], padding, stride, out_dtype, x.device)
    with autocast_off(x.device.type):
        return separable_product(x.to(out_dtype), bh, bw)
