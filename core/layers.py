"""Equalized-learning-rate layers (StyleGAN convention) shared by the generator and the discriminator.

A parameter is stored as ``randn * weight_init / lr_mul`` and scaled by ``lr_mul / sqrt(fan_in)`` at run
time, so Adam sees every layer at the same scale and ``lr_mul`` slows a layer down (the mapping uses 0.01).
The stored bias is scaled by ``lr_mul`` at run time. The stored values are therefore those StyleGAN-family
checkpoints hold, which keeps weight import a plain copy.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Activation = Literal["linear", "lrelu"]
LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale ``x`` to unit root-mean-square along ``dim``."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


class EqualLinear(nn.Module):
    """Fully connected layer with equalized learning rate, optional leaky-ReLU (slope 0.2, gain sqrt 2).

    Args:
        in_features, out_features: sizes; input ``[..., in_features]`` -> ``[..., out_features]``.
        activation: ``"linear"`` or ``"lrelu"``.
        lr_mul: learning-rate multiplier.
        weight_init: std of the run-time weight times ``sqrt(fan_in)`` (0 gives an all-zero layer).
        bias_init: initial run-time bias (a float, or one value per output).
    """

    def __init__(self, in_features: int, out_features: int, activation: Activation = "linear",
                 lr_mul: float = 1.0, weight_init: float = 1.0, bias_init: float | list[float] = 0.0,
                 bias: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.activation = activation
        self.lr_mul = lr_mul
        self.weight = nn.Parameter(torch.randn(out_features, in_features) * (weight_init / lr_mul))
        init = torch.as_tensor(bias_init, dtype=torch.float32).expand(out_features)
        self.bias = nn.Parameter(init / lr_mul) if bias else None
        self.weight_gain = lr_mul / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # One addmm does it all: alpha scales the weight, beta the bias, and the leaky ReLU's gain is folded
        # into both (lrelu(a) * g == lrelu(a * g) for g > 0). Fewer kernels matter at batch 1.
        gain = LRELU_GAIN if self.activation == "lrelu" else 1.0
        x2 = x.reshape(-1, self.in_features)
        w = self.weight.t()
        if x2.dtype != w.dtype and not torch.is_autocast_enabled(x2.device.type):
            w = w.to(x2.dtype)
        if self.bias is None:
            y = torch.mm(x2, w) * (self.weight_gain * gain)
        else:
            b = self.bias if self.bias.dtype == w.dtype else self.bias.to(w.dtype)
            y = torch.addmm(b, x2, w, beta=self.lr_mul * gain, alpha=self.weight_gain * gain)
        if self.activation == "lrelu":
            y = F.leaky_relu(y, LRELU_SLOPE)
        return y.reshape(x.shape[:-1] + (self.out_features,))

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.out_features}, {self.activation}, lr_mul={self.lr_mul:g}"
