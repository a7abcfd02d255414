"""Adaptive transformer over the generator's point tokens (CGS-GAN / GSGAN style).

Tokens ``x [B, L, width]`` never change in number (L = the generator's point count). Each block is

    x = x + Attention(AdaNorm1(x, w)) * LayerScale1(w)
    x = x + MLP(AdaNorm2(x, w)) * LayerScale2(w)

where AdaNorm normalises every channel over the *token* axis and applies ``gamma(w) * x + beta(w)``, and
the layer scales start at zero, so each block starts as the identity.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from core.layers import EqualLinear


class AdaptiveNorm(nn.Module):
    """Per-channel normalisation over tokens (biased std + 1e-8, in float32), then ``gamma(w) x + beta(w)``."""

    def __init__(self, width: int, w_dim: int) -> None:
        super().__init__()
        self.gamma = EqualLinear(w_dim, width, bias_init=1.0)
        self.beta = EqualLinear(w_dim, width, bias_init=0.0)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``x [B, L, C]``, ``w [B, 1, w_dim]`` -> ``[B, L, C]``."""
        xf = x.float()
        mean = xf.mean(1, keepdim=True)
        std = (xf - mean).square().mean(1, keepdim=True).sqrt()
        x_hat = ((xf - mean) / (std + 1e-8)).to(x.dtype)
        return x_hat * self.gamma(w) + self.beta(w)


class Attention(nn.Module):
    """Multi-head self-attention; ``qkv`` output channels are interleaved per head as ``[q_h, k_h, v_h]``
    (channel ``h * 3d + part * d + c``), scaled dot products (1/sqrt(d)), softmax over keys."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.heads = heads
        self.qkv = EqualLinear(width, 3 * width)
        self.proj = EqualLinear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, C = x.shape
        d = C // self.heads
        qkv = self.qkv(x).view(B, L, self.heads, 3, d).permute(3, 0, 2, 1, 4)  # [3, B, heads, L, d]
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # [B, heads, L, d]
        return self.proj(out.transpose(1, 2).reshape(B, L, C))


class MLP(nn.Module):
    """``fc2(GELU(fc1(x)) * sqrt(2))`` with a hidden width of ``ratio * width``."""

    def __init__(self, width: int, ratio: int = 4) -> None:
        super().__init__()
        self.fc1 = EqualLinear(width, width * ratio)
        self.fc2 = EqualLinear(width * ratio, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)) * math.sqrt(2.0))


class TransformerBlock(nn.Module):
    def __init__(self, width: int, heads: int, w_dim: int, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.norm1 = AdaptiveNorm(width, w_dim)
        self.attn = Attention(width, heads)
        self.scale1 = EqualLinear(w_dim, width, weight_init=0.0)
        self.norm2 = AdaptiveNorm(width, w_dim)
        self.mlp = MLP(width, mlp_ratio)
        self.scale2 = EqualLinear(w_dim, width, weight_init=0.0)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``x [B, L, C]``, ``w [B, 1, w_dim]``."""
        x = x + self.attn(self.norm1(x, w)) * self.scale1(w)
        return x + self.mlp(self.norm2(x, w)) * self.scale2(w)


class Transformer(nn.Module):
    """``num_first`` blocks, then one more block per further output level.

    Returns ``num_outputs`` feature maps ``[B, L, width]``: the state after the first ``num_first`` blocks,
    then after each following block. Block ``k`` reads ``ws[:, k]`` (or ``ws[:, 0]`` when ``ws`` has one slot).
    """

    def __init__(self, width: int, heads: int, w_dim: int, num_first: int, num_outputs: int,
                 mlp_ratio: int = 4) -> None:
        super().__init__()
        self.num_first = num_first
        self.blocks = nn.ModuleList(
            [TransformerBlock(width, heads, w_dim, mlp_ratio) for _ in range(num_first + num_outputs - 1)]
        )

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    def forward(self, x: torch.Tensor, ws: torch.Tensor) -> list[torch.Tensor]:
        if ws.shape[1] not in (1, self.num_blocks):
            raise ValueError(f"ws must have 1 or {self.num_blocks} slots, got {ws.shape[1]}")
        outputs = []
        for k, block in enumerate(self.blocks):
            x = block(x, ws[:, k : k + 1] if ws.shape[1] > 1 else ws)
            if k >= self.num_first - 1:
                outputs.append(x)
        return outputs
