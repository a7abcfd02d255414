"""The discriminator's convolutions: ``conv2d`` whose double backward (the R1 penalty's) is made of ordinary
convolutions, the blur built on it, and the autocast helpers the D's layers use. training/discriminator.py
holds the layers and the network.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F


def blur_filter() -> torch.Tensor:
    """``[1, 3, 3, 1] / 8``: one factor of the separable 4x4 blur (their outer product sums to 1)."""
    return torch.tensor([1.0, 3.0, 3.0, 1.0]) / 8.0


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
