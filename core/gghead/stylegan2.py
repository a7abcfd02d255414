"""The GGHead backbone: EG3D's StyleGAN2 mapping (camera-conditioned) and "skip" synthesis network,
re-implemented from the StyleGAN2 paper's definitions (our code; the conventions are EG3D's, see
docs/gghead.md):

    mapping:   z [B, z_dim], c [B, c_dim] -> cat(norm(z), norm(embed(c))) -> MLP -> w -> ws [B, num_ws, w_dim]
    synthesis: ws -> one block per resolution 4, 8, ..., P; each block: (upsampling) modulated 3x3 convs with
               weight demodulation, noise and leaky ReLU (gain sqrt 2); a modulated 1x1 "toRGB" layer (no
               demodulation) adds to the running output, which is upsampled x2 between blocks.
               Output: the UV feature map [B, C, P, P].

Upsampling (x2) follows StyleGAN2's FIR rule: zero-insertion, the 4x4 filter ``outer(f, f) / sum^2`` with
``f = [1, 3, 3, 1]`` and gain 4. In an upsampling layer the 3x3 kernel acts as a convolution (not a
correlation); the layer is computed as a stride-2 transposed convolution followed by the filter (padding 1),
which equals zero-insertion, filter (padding 3/2) and convolution.

State-dict names are ours (``mapping.layers.0.weight``, ``synthesis.blocks.6.conv1.affine.weight``, ...);
:mod:`core.gghead.checkpoint` maps the upstream names onto them. Stored weights are the raw StyleGAN values
(equalized learning rate: gains applied at run time), so weights copy one to one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from core.gghead.config import GGHeadConfig, NoiseMode
from core.layers import LRELU_GAIN, LRELU_SLOPE, EqualLinear, normalize_2nd_moment
from core.mapping import truncate

DEFAULT_FIR = (1.0, 3.0, 3.0, 1.0)


def fir_filter_2d(taps: tuple[float, ...] = DEFAULT_FIR) -> torch.Tensor:
    """``[k, k]`` normalised separable low-pass filter ``outer(f, f) / sum(f)^2``."""
    f = torch.tensor(taps, dtype=torch.float32)
    f2 = torch.outer(f, f)
    return f2 / f2.sum()


def fir_filter(x: torch.Tensor, f: torch.Tensor, pad: tuple[int, int], gain: float = 1.0) -> torch.Tensor:
    """Pad ``x [N, C, H, W]`` by ``pad`` (before, after) on both axes, then convolve each channel with
    ``f * gain`` (valid). ``f`` is flipped first, so this is a true convolution (the default filters are
    symmetric)."""
    C = x.shape[1]
    k = (f.flip([0, 1]) * gain).to(x.dtype)[None, None].expand(C, 1, -1, -1).contiguous()
    x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    return F.conv2d(x, k, groups=C)


def upsample2x(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """``[N, C, H, W] -> [N, C, 2H, 2W]``: zero-insertion (samples at even indices), FIR filter with gain 4."""
    N, C, H, W = x.shape
    z = x.new_zeros(N, C, H, 2, W, 2)
    z[:, :, :, 0, :, 0] = x
    kw = f.shape[-1]
    return fir_filter(z.reshape(N, C, 2 * H, 2 * W), f, ((kw + 1) // 2, (kw - 2) // 2), gain=4.0)


class SynthesisLayer(nn.Module):
    """Modulated convolution with demodulation, noise, bias and leaky ReLU (gain sqrt 2), optional x2 upsampling.

    Tensors (upstream names): ``affine`` (w -> styles, bias initialised to 1), ``weight [O, I, k, k]``,
    ``bias [O]``, ``noise_const [R, R]`` and ``noise_strength []`` (when ``use_noise``), ``resample_filter``.
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, kernel_size: int = 3,
                 up: int = 1, use_noise: bool = True, conv_clamp: float | None = None) -> None:
        super().__init__()
        if up not in (1, 2):
            raise ValueError(f"up must be 1 or 2, got {up}")
        self.in_channels, self.out_channels, self.resolution, self.up = in_channels, out_channels, resolution, up
        self.use_noise, self.conv_clamp, self.padding = use_noise, conv_clamp, kernel_size // 2
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        if use_noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("resample_filter", fir_filter_2d())

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: NoiseMode = "const") -> torch.Tensor:
        """``x [B, I, R/up, R/up]``, ``w [B, w_dim]`` -> ``[B, O, R, R]``."""
        B = x.shape[0]
        styles = self.affine(w)  # [B, I]
        wgt = self.weight[None] * styles[:, None, :, None, None]  # [B, O, I, k, k]
        wgt = wgt * (wgt.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()
        k = wgt.shape[-1]
        x = x.reshape(1, B * self.in_channels, *x.shape[2:])
        if self.up == 1:
            x = F.conv2d(x, wgt.reshape(B * self.out_channels, self.in_channels, k, k).to(x.dtype),
                         padding=self.padding, groups=B)
        else:
            wt = wgt.transpose(1, 2).reshape(B * self.in_channels, self.out_channels, k, k).to(x.dtype)
            x = F.conv_transpose2d(x, wt, stride=2, groups=B)
            # zero-insertion + padding (3, 2) + filter + conv == transposed conv + padding (p+1-(k-1)/2...)
            fw = self.resample_filter.shape[-1]
            pad0 = self.padding + (fw + 1) // 2 - (k - 1)
            pad1 = self.padding + (fw - 2) // 2 - (k - 2)
            x = fir_filter(x, self.resample_filter, (pad0, pad1), gain=4.0)
        x = x.reshape(B, self.out_channels, *x.shape[2:])
        if self.use_noise and noise_mode != "none":
            if noise_mode == "const":
                noise = self.noise_const.to(x.dtype) * self.noise_strength.to(x.dtype)
            else:
                noise = torch.randn(B, 1, self.resolution, self.resolution, device=x.device,
                                    dtype=x.dtype) * self.noise_strength.to(x.dtype)
            x = x + noise
        x = F.leaky_relu(x + self.bias.to(x.dtype)[None, :, None, None], LRELU_SLOPE) * LRELU_GAIN
        if self.conv_clamp is not None:
            x = x.clamp(-self.conv_clamp, self.conv_clamp)
        return x


class ToRGBLayer(nn.Module):
    """Modulated 1x1 convolution without demodulation (styles scaled by ``1/sqrt(I k^2)``), plus bias."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None = None) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.conv_clamp = in_channels, out_channels, conv_clamp
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain  # [B, I]
        wgt = self.weight[None, :, :, 0, 0] * styles[:, None, :]  # [B, O, I]
        x = torch.einsum("boi,bihw->bohw", wgt.to(x.dtype), x) + self.bias.to(x.dtype)[None, :, None, None]
        if self.conv_clamp is not None:
            x = x.clamp(-self.conv_clamp, self.conv_clamp)
        return x


class SynthesisBlock(nn.Module):
    """One resolution: ``const`` (first block) or an upsampling ``conv0``, then ``conv1`` and ``torgb``.
    Uses ``num_conv + 1`` consecutive ws; the next block starts ``num_conv`` later (toRGB shares its w)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 kernel_size: int = 3, use_noise: bool = True, conv_clamp: float | None = None) -> None:
        super().__init__()
        self.in_channels, self.resolution = in_channels, resolution
        layer = dict(w_dim=w_dim, kernel_size=kernel_size, use_noise=use_noise, conv_clamp=conv_clamp)
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, resolution=resolution, up=2, **layer)
        self.conv1 = SynthesisLayer(out_channels, out_channels, resolution=resolution, **layer)
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp)
        self.num_conv = 1 if in_channels == 0 else 2
        self.register_buffer("resample_filter", fir_filter_2d())

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor,
                noise_mode: NoiseMode = "const") -> tuple[torch.Tensor, torch.Tensor]:
        """``ws [B, num_conv + 1, w_dim]``; ``x``, ``img`` from the previous block (None for the first)."""
        if self.in_channels == 0:
            x = self.const.to(ws.dtype)[None].expand(ws.shape[0], -1, -1, -1)
            x = self.conv1(x, ws[:, 0], noise_mode)
        else:
            x = self.conv0(x, ws[:, 0], noise_mode)
            x = self.conv1(x, ws[:, 1], noise_mode)
        y = self.torgb(x, ws[:, self.num_conv])
        if y.dtype in (torch.float16, torch.bfloat16):
            y = y.float()
        img = y if img is None else upsample2x(img, self.resample_filter) + y
        return x, img


class SynthesisNetwork(nn.Module):
    """``ws [B, num_ws, w_dim] -> [B, img_channels, P, P]`` (float32 output)."""

    def __init__(self, config: GGHeadConfig) -> None:
        super().__init__()
        c = config
        blocks = []
        for res in c.block_resolutions:
            blocks.append(SynthesisBlock(c.channels(res // 2) if res > 4 else 0, c.channels(res), c.w_dim, res,
                                         c.map_channels, c.kernel_size, c.use_noise, c.conv_clamp))
        self.blocks = nn.ModuleList(blocks)
        self.num_ws = c.num_ws

    def forward(self, ws: torch.Tensor, noise_mode: NoiseMode = "const") -> torch.Tensor:
        x = img = None
        i = 0
        for block in self.blocks:
            x, img = block(x, img, ws[:, i: i + block.num_conv + 1], noise_mode)
            i += block.num_conv
        return img


class MappingNetwork(nn.Module):
    """``z [B, z_dim]``, ``c [B, c_dim]`` -> ``ws [B, num_ws, w_dim]`` (one w broadcast), truncated toward
    ``w_avg``. ``embed`` is a linear layer (learning rate 1); ``layers`` use leaky ReLU and ``lr_mul``."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int, num_layers: int = 2,
                 lr_mul: float = 0.01, w_avg_beta: float = 0.998) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.num_ws, self.w_avg_beta = num_ws, w_avg_beta
        embed = w_dim if c_dim > 0 else 0
        if c_dim > 0:
            self.embed = EqualLinear(c_dim, embed)
        dims = [z_dim + embed] + [w_dim] * num_layers
        self.layers = nn.ModuleList([EqualLinear(dims[i], dims[i + 1], "lrelu", lr_mul=lr_mul)
                                     for i in range(num_layers)])
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, c: torch.Tensor, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, update_w_avg: bool = False) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape [B, {self.z_dim}], got {list(z.shape)}")
        x = normalize_2nd_moment(z.float())
        if self.c_dim > 0:
            if c.shape != (z.shape[0], self.c_dim):
                raise ValueError(f"camera label must have shape [{z.shape[0]}, {self.c_dim}], "
                                 f"got {list(c.shape)}")
            x = torch.cat([x, normalize_2nd_moment(self.embed(c.float()))], dim=1)
        for layer in self.layers:
            x = layer(x)
        if update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().mean(0).lerp(self.w_avg, self.w_avg_beta))
        ws = x[:, None, :].repeat(1, self.num_ws, 1)
        return truncate(ws, self.w_avg, truncation_psi, truncation_cutoff)
