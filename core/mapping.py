"""The mapping network z -> w, the running average w_avg, and truncation.

CGS-GAN's mapping is StyleGAN2's with its camera conditioning switched off: the input is the normalised z
concatenated with a normalised learned constant (the official code embeds an all-zero label, so that half
is the embedding layer's bias). The generator is therefore pose-independent.
"""

from __future__ import annotations

import torch
from torch import nn

from core.layers import EqualLinear, normalize_2nd_moment


class MappingNetwork(nn.Module):
    """``z [B, z_dim] -> ws [B, num_ws, w_dim]`` (the same w broadcast to every slot).

    Attributes:
        const: ``[w_dim]`` learned constant concatenated to z (the official zero-label embedding).
        layers: ``num_layers`` equalized FC layers with leaky ReLU, learning-rate multiplier ``lr_mul``.
        w_avg: ``[w_dim]`` buffer, running mean of w (decay ``w_avg_beta``), the truncation centre.
    """

    def __init__(self, z_dim: int = 512, w_dim: int = 512, num_ws: int = 1, num_layers: int = 2,
                 lr_mul: float = 0.01, w_avg_beta: float = 0.998) -> None:
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws, self.w_avg_beta = z_dim, w_dim, num_ws, w_avg_beta
        # Initialised at random, not at zero: normalising an all-zero vector has a gain of 1e4 (the
        # official embedding starts there and its first updates explode).
        self.const = nn.Parameter(torch.randn(w_dim))
        dims = [z_dim + w_dim] + [w_dim] * num_layers
        self.layers = nn.ModuleList(
            [EqualLinear(dims[i], dims[i + 1], "lrelu", lr_mul=lr_mul) for i in range(num_layers)]
        )
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                update_w_avg: bool = False) -> torch.Tensor:
        """Args:
            z: ``[B, z_dim]`` latents (any scale; normalised here).
            truncation_psi: 1 = no truncation, 0 = every w is ``w_avg``.
            truncation_cutoff: truncate only the first ``cutoff`` ws (None: all).
            update_w_avg: track the running mean (training only).
        Returns:
            ``[B, num_ws, w_dim]``.
        """
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape [B, {self.z_dim}], got {list(z.shape)}")
        const = normalize_2nd_moment(self.const[None].to(z.dtype), dim=1).expand(z.shape[0], -1)
        x = torch.cat([normalize_2nd_moment(z, dim=1), const], dim=1)
        for layer in self.layers:
            x = layer(x)
        if update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().mean(0).to(self.w_avg.dtype).lerp(self.w_avg, self.w_avg_beta))
        ws = x[:, None, :].repeat(1, self.num_ws, 1)
        return truncate(ws, self.w_avg, truncation_psi, truncation_cutoff)


def truncate(ws: torch.Tensor, w_avg: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
    """``w_avg + psi * (w - w_avg)`` on the first ``cutoff`` slots of ``ws [B, num_ws, w_dim]`` (all if None)."""
    if psi == 1.0:
        return ws
    w_avg = w_avg.to(ws.dtype)
    if cutoff is None:
        return w_avg.lerp(ws, psi)
    ws = ws.clone()
    ws[:, :cutoff] = w_avg.lerp(ws[:, :cutoff], psi)
    return ws
