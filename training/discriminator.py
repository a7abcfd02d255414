"""The camera-conditioned discriminator: a StyleGAN2-style residual D on RGB images.

Layout at resolution R (channels at resolution r: ``min(channel_base // r, channel_max)``)::

    img [B, 3, R, R]
      -> fromRGB 1x1 conv (lrelu)                       only once, at R
      -> one residual block per resolution R, R/2, ..., 8 (each halves it):
             x -> conv3x3 (lrelu) -> blur + conv3x3 stride 2 (lrelu) --+--> (x + skip) * sqrt(0.5)
             x -> blur + subsample 2 -> conv1x1 (linear, no bias) -----+
      -> epilogue at 4x4: minibatch std (+1 channel), conv3x3 (lrelu), FC C*16 -> C (lrelu), FC C -> cmap_dim
      -> projection: <out, cmap(c)> / sqrt(cmap_dim)     logits [B, 1]
    cmap(c) = mapping_layers x FC(lrelu, lr_mul) applied to normalize_2nd_moment(FC(c))

The blur is the ``[1, 3, 3, 1]`` outer product (sum 1). Padding follows StyleGAN2, so that a 2x downsample
of R gives exactly R/2: the 3x3 path blurs with 2 zero pixels on each side (R + 1) and then convolves with
stride 2 and no padding; the 1x1 path blurs with 1 pixel each side and stride 2. Every layer has an
equalized learning rate (weights stored as N(0, 1), scaled by ``1 / sqrt(fan_in)`` at run time; the leaky
ReLU's gain sqrt(2) is folded into that scale). All of it is plain ``F.conv2d`` (the blur as two depthwise
1-D passes) behind a small autograd function whose backward is itself cheap to differentiate, so it runs on
CPU and CUDA and the R1 penalty's double backward is fast (see ``_Conv2d``). ``Discriminator(...,
blur_impl="slices")`` computes the blurs with padding, strided slices and adds instead (the same linear map, no
depthwise convolutions; ``blur_slices``), ``blur_impl="matmul"`` as products with banded matrices
(``blur_matmul``).

Differences from the official CGS-GAN / EG3D discriminator (facts sheet, section 3 and section 7):
  * no ``b8_pose`` block: the official computes one more 8x8 block and discards its output;
  * the camera mapping has 2 layers by default, the official 8 (``mapping_layers``, below);
  * precision: the official runs fp16 on the 4 highest-resolution blocks and fp32 below. Here the top
    ``num_autocast_blocks`` blocks (default 4) follow the caller's autocast (bf16 or fp16), and the lower
    blocks, the epilogue and the mapping always run in float32. ``conv_clamp`` clamps conv outputs only in
    reduced precision; the float32 path is never clamped (the fact sheet ties the official clamp to its
    fp16 blocks; in float32, 256 is practically never reached anyway);
  * minibatch-std groups: as StyleGAN2, a batch of B with group size G = min(mbstd_group, B) (G must divide
    B) groups sample n with n + B/G, n + 2B/G, ... (strided, not contiguous). ``forward(..., chunks=K)``
    takes K such batches stacked in one call (the trainer's multi-view views, reals with fakes) and keeps
    the statistics inside each, so one large call computes what K calls would.

Parameter count (channel_base 32768, channel_max 512, cmap_dim 512, c_dim 25):

    resolution 512, mapping_layers 2 (default):  29,783,616
        blocks 22,423,104 + epilogue 6,821,888 + camera mapping 538,624
    resolution 512, mapping_layers 8 (official):  31,359,552   (the official also holds the unused b8_pose
        block on top of this; if it has b8's shape, that is 4,981,760 more)
    resolution 256 / 1024, mapping_layers 2:      29,664,896 / 29,813,280
    resolution 512, c_dim 0 (unconditional):     28,982,849

StyleGAN2's D at 512 is about 29 M: our unconditional variant, whose blocks and epilogue have the same
shapes, counts 28,982,849. The conditional D adds the camera mapping and a 512-wide instead of 1-wide
output FC (+0.8 M).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.config_dict import config_from_dict, config_to_dict
from core.layers import LRELU_GAIN, LRELU_SLOPE, Activation, EqualLinear, normalize_2nd_moment
from training.discriminator_conv import (BLUR_IMPLS, BlurImpl, autocast_off, autocasting, blur, blur_filter,
                                         blur_matmul, blur_slices, conv2d)

SQRT_HALF = math.sqrt(0.5)
_REDUCED = (torch.float16, torch.bfloat16)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Architecture of :class:`Discriminator`.

    Attributes:
        resolution: image size R, a power of two >= 16.
        c_dim: length of the camera label (EG3D: 16 cam2world + 9 intrinsics = 25). 0: unconditional
            (no mapping, the last FC outputs the logit directly).
        channel_base, channel_max: channels at resolution r are ``min(channel_base // r, channel_max)``.
        cmap_dim: dimension of the projection (official 512).
        mapping_layers: leaky-ReLU FC layers after the label embedding. The official D uses 8 because
            its mapping inherits StyleGAN2's default, not by design. The input is 25 numbers (a pose and a
            focal length), and at lr_mul 0.01 eight 512x512 layers (2.1 M parameters) add depth that the
            embedding barely needs: 2 matches our generator's mapping and saves 1.6 M parameters. Not measured
            against 8 on FID; set 8 to reproduce the official architecture.
        mapping_lr_mul: learning-rate multiplier of those layers (the embedding itself uses 1, as official).
        mbstd_group: minibatch-std group size (the batch must be divisible by ``min(mbstd_group, B)``).
        mbstd_channels: minibatch-std feature channels (0 switches it off).
        conv_clamp: clamp every conv output to +-conv_clamp when the conv runs in fp16/bf16 (None: never).
        num_autocast_blocks: how many of the highest-resolution blocks follow the caller's autocast; the
            rest, the epilogue and the mapping run in float32 (the official's ``num_fp16_res`` is 4).
    """

    resolution: int
    c_dim: int = 25
    channel_base: int = 32768
    channel_max: int = 512
    cmap_dim: int = 512
    mapping_layers: int = 2
    mapping_lr_mul: float = 0.01
    mbstd_group: int = 4
    mbstd_channels: int = 1
    conv_clamp: float | None = 256.0
    num_autocast_blocks: int = 4

    def __post_init__(self) -> None:
        problems = []
        r = self.resolution
        if not isinstance(r, int) or isinstance(r, bool) or r < 16 or r & (r - 1):
            problems.append(f"resolution must be a power of two >= 16, got {r!r}")
        ints = ("c_dim", "channel_base", "channel_max", "cmap_dim", "mapping_layers", "mbstd_group",
                "mbstd_channels", "num_autocast_blocks")
        for name in ints:
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool):
                problems.append(f"{name} must be an int, got {v!r}")
        if not problems:
            if min(self.c_dim, self.mapping_layers, self.mbstd_channels, self.num_autocast_blocks) < 0:
                problems.append("c_dim, mapping_layers, mbstd_channels and num_autocast_blocks must be >= 0")
            if self.channel_max < 1 or self.channel_base < 1 or self.mbstd_group < 1:
                problems.append("channel_base, channel_max and mbstd_group must be >= 1")
            elif self.channel_base // r < 1:
                problems.append(f"channel_base {self.channel_base} gives no channels at resolution {r}")
            elif self.mbstd_channels and self.channels(4) % self.mbstd_channels:
                problems.append(f"mbstd_channels {self.mbstd_channels} must divide the 4x4 channels "
                                f"{self.channels(4)}")
            if self.c_dim > 0 and self.cmap_dim < 1:
                problems.append("cmap_dim must be >= 1 when c_dim > 0")
        if not (isinstance(self.mapping_lr_mul, (int, float)) and self.mapping_lr_mul > 0):
            problems.append(f"mapping_lr_mul must be > 0, got {self.mapping_lr_mul!r}")
        clamp = self.conv_clamp
        if clamp is not None and not (isinstance(clamp, (int, float)) and clamp > 0):
            problems.append(f"conv_clamp must be None or > 0, got {self.conv_clamp!r}")
        if problems:
            raise ValueError("invalid DiscriminatorConfig: " + "; ".join(problems))

    def channels(self, res: int) -> int:
        """Feature channels at resolution ``res``."""
        return min(self.channel_base // res, self.channel_max)

    @property
    def block_resolutions(self) -> tuple[int, ...]:
        """Input resolution of each residual block, highest first (R, R/2, ..., 8)."""
        return tuple(2**i for i in range(int(math.log2(self.resolution)), 2, -1))

    def to_dict(self) -> dict:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DiscriminatorConfig:
        return config_from_dict(cls, d, "discriminator config")


# ------------------------------------------------------------------------------------------------ layers


class EqualConv2d(nn.Module):
    """Conv with equalized learning rate, optional 2x blur-downsample, leaky ReLU and clamp.

    ``y = act(conv(x, w * lr_mul / sqrt(in * k * k)) + b * lr_mul) * gain`` with ``gain`` sqrt(2) for lrelu,
    then clamped to ``+-conv_clamp`` when the result is fp16/bf16. ``down=2`` blurs with ``[1, 3, 3, 1]``
    first (StyleGAN2 padding), so an input of H gives H/2 for kernel 1 and 3 alike; ``down=1`` keeps H with
    ``padding = k // 2``. Supports double backward efficiently (R1). ``blur_impl``: "conv" (two depthwise
    convolutions, :func:`blur`), "slices" or "slices_bf16" (:func:`blur_slices` with float32 sums or sums
    in the autocast dtype) or "matmul" (:func:`blur_matmul`); the same result up to rounding.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 activation: Activation = "linear", bias: bool = True, down: int = 1,
                 conv_clamp: float | None = None, lr_mul: float = 1.0, blur_impl: BlurImpl = "conv") -> None:
        super().__init__()
        if down not in (1, 2):
            raise ValueError(f"down must be 1 or 2, got {down}")
        if blur_impl not in BLUR_IMPLS:
            raise ValueError(f"blur_impl must be one of {BLUR_IMPLS}, got {blur_impl!r}")
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.activation, self.down, self.conv_clamp, self.lr_mul = activation, down, conv_clamp, lr_mul
        self.blur_impl = blur_impl
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size) / lr_mul)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = lr_mul / math.sqrt(in_channels * kernel_size * kernel_size)
        self.act_gain = LRELU_GAIN if activation == "lrelu" else 1.0
        if down > 1:
            # Non-persistent: a constant, kept out of state dicts and checkpoints.
            self.register_buffer("blur", blur_filter(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * (self.weight_gain * self.act_gain)
        b = None if self.bias is None else self.bias * (self.lr_mul * self.act_gain)
        if not autocasting(x) and x.dtype != w.dtype:
            w, b = w.to(x.dtype), None if b is None else b.to(x.dtype)
        if self.down > 1:
            # kernel 1: blur with 1 pixel of padding and keep every other sample: H -> H/2. kernel k > 1:
            # blur with (k + 1) / 2 pixels of padding (H -> H + k - 2), then a strided valid conv: H -> H/2.
            padding, stride = (1, 2) if self.kernel_size == 1 else ((self.kernel_size + 1) // 2, 1)
            if self.blur_impl == "conv":
                x = blur(x, self.blur if autocasting(x) else self.blur.to(x.dtype), padding, stride)
            elif self.blur_impl == "matmul":
                x = blur_matmul(x, padding, stride)
            else:
                x = blur_slices(x, padding, stride, reduced_sums=self.blur_impl == "slices_bf16")
            y = conv2d(x, w, b) if self.kernel_size == 1 else conv2d(x, w, b, stride=2)
        else:
            y = conv2d(x, w, b, padding=self.kernel_size // 2)
        if self.activation == "lrelu":
            y = F.leaky_relu(y, LRELU_SLOPE)
        if self.conv_clamp is not None and y.dtype in _REDUCED:
            # hardtanh is clamp with a one-kernel backward (clamp's is two comparisons, a logical and and a
            # where: ~18 ms of a ~190 ms cgs512 step in the H200 profile). Same values; the gradient differs
            # only at exactly +-conv_clamp (hardtanh passes none there, clamp passes it).
            y = F.hardtanh(y, -self.conv_clamp, self.conv_clamp)
        return y

    def extra_repr(self) -> str:
        return (f"{self.in_channels} -> {self.out_channels}, k={self.kernel_size}, down={self.down}, "
                f"{self.activation}, bias={self.bias is not None}, clamp={self.conv_clamp}"
                + (f", blur={self.blur_impl}" if self.down > 1 else ""))


class DiscriminatorBlock(nn.Module):
    """One residual block: ``[B, C_in, r, r] -> [B, C_out, r/2, r/2]`` (fromRGB first when ``from_rgb``)."""

    def __init__(self, res: int, in_channels: int, out_channels: int, from_rgb: bool,
                 conv_clamp: float | None, blur_impl: BlurImpl = "conv") -> None:
        super().__init__()
        self.res = res
        self.fromrgb = EqualConv2d(3, in_channels, 1, "lrelu", conv_clamp=conv_clamp) if from_rgb else None
        self.conv0 = EqualConv2d(in_channels, in_channels, 3, "lrelu", conv_clamp=conv_clamp)
        self.conv1 = EqualConv2d(in_channels, out_channels, 3, "lrelu", down=2, conv_clamp=conv_clamp,
                                 blur_impl=blur_impl)
        self.skip = EqualConv2d(in_channels, out_channels, 1, "linear", bias=False, down=2,
                                conv_clamp=conv_clamp, blur_impl=blur_impl)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fromrgb is not None:
            x = self.fromrgb(x)
        y = self.skip(x)
        x = self.conv1(self.conv0(x))
        return (x + y) * SQRT_HALF


def minibatch_std(x: torch.Tensor, group_size: int, num_channels: int = 1, chunks: int = 1) -> torch.Tensor:
    """Append ``num_channels`` feature maps holding the std over a group of samples.

    The batch ``B`` is ``chunks`` independent batches of ``n = B / chunks`` stacked along dim 0 (e.g. the
    V views of a multi-view step in one call); statistics never cross a chunk, so one call with ``chunks=K``
    gives exactly what K calls on the parts give. Each chunk of ``n`` is split into ``G = min(group_size, n)``
    strided slices (sample i is grouped with i + n/G, i + 2n/G, ...); G must divide n. The channels are split
    into ``num_channels`` parts; each new channel is the std over the group, averaged over that part's
    channels and all pixels, broadcast to ``[H, W]``. Computed in float32 for fp16/bf16 inputs, else in the
    input's dtype.
    """
    if num_channels == 0:
        return x
    b, c, h, w = x.shape
    if chunks < 1 or b % chunks:
        raise ValueError(f"batch size {b} is not divisible into {chunks} chunks")
    n = b // chunks
    g = min(group_size, n)
    if n % g:
        raise ValueError(f"batch size {n} is not divisible by the minibatch-std group size {g} "
                         f"(min(mbstd_group={group_size}, batch))")
    m = n // g
    y = (x.float() if x.dtype in _REDUCED else x).reshape(chunks, g, m, num_channels, c // num_channels, h, w)
    y = (y - y.mean(dim=1, keepdim=True)).square().mean(dim=1)  # variance over the group: [K, M, F, c, h, w]
    y = (y + 1e-8).sqrt().mean(dim=(3, 4, 5))  # [K, M, F]
    y = y[:, None, :, :, None, None].expand(chunks, g, m, num_channels, h, w)  # sample i -> row i mod M
    return torch.cat([x, y.reshape(b, num_channels, h, w).to(x.dtype)], dim=1)


class CameraMapping(nn.Module):
    """``c [B, c_dim] -> cmap [B, cmap_dim]``: embedding FC, normalise, ``num_layers`` lrelu FCs."""

    def __init__(self, c_dim: int, cmap_dim: int, num_layers: int, lr_mul: float) -> None:
        super().__init__()
        self.embed = EqualLinear(c_dim, cmap_dim)
        self.layers = nn.ModuleList([EqualLinear(cmap_dim, cmap_dim, "lrelu", lr_mul=lr_mul)
                                     for _ in range(num_layers)])

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        x = normalize_2nd_moment(self.embed(c), dim=1)
        for layer in self.layers:
            x = layer(x)
        return x


class DiscriminatorEpilogue(nn.Module):
    """4x4 features -> ``[B, cmap_dim]`` (or ``[B, 1]`` unconditional): mbstd, conv3x3, FC, out FC."""

    def __init__(self, channels: int, out_dim: int, mbstd_group: int, mbstd_channels: int,
                 conv_clamp: float | None) -> None:
        super().__init__()
        self.mbstd_group, self.mbstd_channels = mbstd_group, mbstd_channels
        self.conv = EqualConv2d(channels + mbstd_channels, channels, 3, "lrelu", conv_clamp=conv_clamp)
        self.fc = EqualLinear(channels * 16, channels, "lrelu")
        self.out = EqualLinear(channels, out_dim)

    def forward(self, x: torch.Tensor, chunks: int = 1) -> torch.Tensor:
        x = minibatch_std(x, self.mbstd_group, self.mbstd_channels, chunks)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        return self.out(x)


class Discriminator(nn.Module):
    """``D(img [B, 3, R, R] in [-1, 1], c [B, c_dim]) -> logits [B, 1]`` (float32). See the module docstring.

    Attributes:
        blocks: ``ModuleDict`` ``b{res}`` for res = R, R/2, ..., 8; the first holds the fromRGB layer.
        epilogue: the 4x4 head.
        mapping: the camera mapping (None when ``c_dim == 0``).
        channels_last: run the convolutions on NHWC activations (``torch.channels_last``; the same maths,
            faster tensor-core kernels on CUDA, in bf16 above all). A run-time switch, not architecture:
            off by default, set by the trainer (``TrainOptions.channels_last``).
        blur_impl: how the blocks' ``[1, 3, 3, 1]`` blurs are computed: "conv" (two depthwise convolutions),
            "slices" (pad, strided slices, adds in float32: no depthwise kernels) or "slices_bf16" (the same
            with the sums in the autocast dtype, bf16 blocks only differ) or "matmul" (two products with
            banded matrices per blur, on the tensor cores). An implementation choice, not
            architecture: the same linear map, equal up to rounding, the same parameters and state dict;
            set by the trainer (``TrainOptions.d_blur``).
    """

    def __init__(self, config: DiscriminatorConfig, blur_impl: BlurImpl = "conv") -> None:
        super().__init__()
        if blur_impl not in BLUR_IMPLS:
            raise ValueError(f"blur_impl must be one of {BLUR_IMPLS}, got {blur_impl!r}")
        self.config = config
        self.blur_impl = blur_impl
        cfg = config
        self.blocks = nn.ModuleDict()
        for i, res in enumerate(cfg.block_resolutions):
            self.blocks[f"b{res}"] = DiscriminatorBlock(res, cfg.channels(res), cfg.channels(res // 2),
                                                        from_rgb=(i == 0), conv_clamp=cfg.conv_clamp,
                                                        blur_impl=blur_impl)
        out_dim = cfg.cmap_dim if cfg.c_dim > 0 else 1
        self.epilogue = DiscriminatorEpilogue(cfg.channels(4), out_dim, cfg.mbstd_group, cfg.mbstd_channels,
                                              cfg.conv_clamp)
        self.mapping = (CameraMapping(cfg.c_dim, cfg.cmap_dim, cfg.mapping_layers, cfg.mapping_lr_mul)
                        if cfg.c_dim > 0 else None)
        self.channels_last = False

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None, chunks: int = 1) -> torch.Tensor:
        """``chunks``: ``img`` holds that many independent batches stacked along dim 0 (see
        :func:`minibatch_std`); the only cross-sample operation, the minibatch std, stays inside each."""
        cfg = self.config
        r = cfg.resolution
        if img.dim() != 4 or img.shape[1:] != (3, r, r):
            raise ValueError(f"img must have shape [B, 3, {r}, {r}], got {list(img.shape)}")
        if cfg.c_dim > 0:
            if c is None or c.dim() != 2 or c.shape != (img.shape[0], cfg.c_dim):
                got = None if c is None else list(c.shape)
                raise ValueError(f"c must have shape [{img.shape[0]}, {cfg.c_dim}], got {got}")
        param_dtype = self.epilogue.out.weight.dtype
        x = img.contiguous(memory_format=torch.channels_last) if self.channels_last else img
        for i, block in enumerate(self.blocks.values()):
            if i < cfg.num_autocast_blocks:
                x = block(x)
            else:
                with autocast_off(x.device.type):
                    x = block(x.to(param_dtype))
        with autocast_off(x.device.type):
            x = self.epilogue(x.to(param_dtype), chunks)
            if self.mapping is None:
                return x
            cmap = self.mapping(c.to(param_dtype))
            return (x * cmap).sum(dim=1, keepdim=True) * (1.0 / math.sqrt(cfg.cmap_dim))
