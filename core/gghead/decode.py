"""GGHead's UV decoding: feature map -> per-Gaussian attributes -> our :class:`~core.gaussians.GaussianSet`.

With the channel slices ``x`` of the sampled map (order ``config.uv_attributes``; the released models use
position 3, scale 3, rotation 3, colour 12, opacity 1 = 22 channels) and the values the released models store
(``TRAINING_SCRIPT_VALUES``) in brackets:

    map:      the position channels pass a 1x1 convolution first (``use_zero_conv_position``; zero-initialised
              in training), then every channel is sampled at ``uv_grid`` by ``grid_sample`` (bilinear,
              align_corners False, zero padding): [B, C, P, P] -> [B, G, C]
    position: template + position_range * tanh(position_attenuation * x)              [0.25 tanh(x)]
              (or template + position_attenuation * x without the activation)
    scale:    s = -(x + scale_offset); log-scale = max_scale - softplus(s + max_scale) with
              center_scale_activation, else max_scale - softplus(s)                    [-3 - softplus(2 - x)]
              (3DGS then uses exp(log-scale))
    rotation: axis-angle a = 2 pi tanh(rotation_attenuation * x) (or a = x without the activation) ->
              quaternion (w, x, y, z) = (cos(|a|/2), a sin(|a|/2)/|a|) -> reordered by indices [3], [0:3] to
              (z, w, x, y): the rasterizer reads that tensor as (w, x, y, z), so the faithful scene is that
              tensor taken as (w, x, y, z). Without axis-angle: 4 channels, divided by their norm.
    colour:   mip_tanh(x) * 0.5 / C0 on every SH channel, mip_tanh(x) = tanh(x)(1 + 2 o) - o,
              o = color_overshoot [0.001]; channel 3k + c is coefficient k of colour c (coefficient-major)
    opacity:  mip_sigmoid(x) = sigmoid(x)(1 + 2 o) - o, o = opacity_overshoot [0.001]: the opacity itself,
              which can be slightly below 0 or above 1 (clamped to [0, 1] with clamp_opacity)

Our GaussianSet stores 3DGS's pre-activation fields, so the opacity goes in as ``logit(clamp(opacity, eps,
1 - eps))`` (eps: the dtype's machine epsilon): identical for every opacity in [eps, 1 - eps]; below that the
rasterizers skip the Gaussian either way (alpha < 1/255); above, alpha saturates at 0.99 either way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.gaussians import SH_C0, GaussianSet
from core.gghead.config import GGHeadConfig
from core.sh import sh_to_rgb


@dataclass(frozen=True, eq=False)
class DecodedAttributes:
    """The attributes upstream hands to its rasterizer, batch ``[B]``, ``G`` Gaussians.

    Attributes:
        positions: ``[B, G, 3]`` world units.
        log_scales: ``[B, G, 3]`` (3DGS ``_scaling``; the scale is its exp).
        rotations: ``[B, G, 4]`` in the rasterizer's (w, x, y, z) slots (see the module docstring).
        opacities: ``[B, G]`` activated opacity (mip-sigmoid, may leave [0, 1] by the overshoot).
        sh: ``[B, G, K, 3]`` SH coefficients, K = (degree + 1)^2.
    """

    positions: torch.Tensor
    log_scales: torch.Tensor
    rotations: torch.Tensor
    opacities: torch.Tensor
    sh: torch.Tensor

    def to_gaussian_set(self) -> GaussianSet:
        """As our pre-activation GaussianSet (see the module docstring for the opacity)."""
        eps = torch.finfo(self.opacities.dtype).eps
        logits = torch.logit(self.opacities.clamp(eps, 1.0 - eps))
        return GaussianSet(self.positions, self.rotations, self.log_scales, logits, self.sh)


def axis_angle_to_quaternion(a: torch.Tensor) -> torch.Tensor:
    """``[..., 3]`` axis-angle (direction = axis, length = angle in radians) -> ``[..., 4]`` (w, x, y, z).
    Below an angle of 1e-6 the factor sin(t/2)/t uses its series 1/2 - t^2/48."""
    t = a.norm(dim=-1, keepdim=True)
    small = t < 1e-6
    safe_t = torch.where(small, torch.ones_like(t), t)
    factor = torch.where(small, 0.5 - t * t / 48.0, torch.sin(0.5 * t) / safe_t)
    return torch.cat([torch.cos(0.5 * t), a * factor], dim=-1)


def sample_uv_features(uv_map: torch.Tensor, uv_grid: torch.Tensor, config: GGHeadConfig,
                       position_conv: torch.nn.Module | None = None) -> torch.Tensor:
    """``uv_map [B, C, P, P]`` (synthesis output; C = uv channels + background channels) -> ``[B, G, C_uv]``.

    Background channels (the trailing ``n_background_channels``) are dropped; ``position_conv`` (1x1, 3->3)
    is applied to the position channels when ``config.use_zero_conv_position``."""
    c = config
    if uv_map.shape[1] != c.map_channels:
        raise ValueError(f"the UV map has {uv_map.shape[1]} channels; the config needs {c.map_channels}")
    x = uv_map[:, : c.uv_channels]
    if c.use_zero_conv_position:
        if position_conv is None:
            raise ValueError("use_zero_conv_position is set but no position convolution was given")
        start = _start_channel(c, "position")
        x = torch.cat([x[:, :start], position_conv(x[:, start: start + 3]), x[:, start + 3:]], dim=1)
    B = x.shape[0]
    s = F.grid_sample(x, uv_grid.to(x.dtype).expand(B, -1, -1, -1), mode=c.interpolation_mode,
                      align_corners=c.use_align_corners)  # [B, C, G, 1]
    return s[..., 0].transpose(1, 2)


def _start_channel(c: GGHeadConfig, name: str) -> int:
    sizes = c.attribute_channels
    return sum(sizes[a] for a in c.uv_attributes[: c.uv_attributes.index(name)])


def activate(features: torch.Tensor, template_positions: torch.Tensor, config: GGHeadConfig,
             ) -> DecodedAttributes:
    """``features [B, G, C_uv]`` -> :class:`DecodedAttributes` (formulas in the module docstring)."""
    c = config
    sizes = c.attribute_channels
    raw, start = {}, 0
    for name in c.uv_attributes:
        raw[name] = features[..., start: start + sizes[name]]
        start += sizes[name]

    x = raw["position"]
    offset = (c.position_range * torch.tanh(c.position_attenuation * x) if c.use_position_activation
              else c.position_attenuation * x)
    positions = template_positions.to(x.dtype) + offset

    s = -(raw["scale"] + c.scale_offset)
    log_scales = c.max_scale - F.softplus(s + c.max_scale if c.center_scale_activation else s)

    r = raw["rotation"]
    if c.use_rodriguez_rotation:
        if c.use_rotation_activation:
            r = torch.tanh(c.rotation_attenuation * r) * (2.0 * math.pi)
        q = axis_angle_to_quaternion(r)
        rotations = torch.cat([q[..., 3:4], q[..., 0:3]], dim=-1)
    elif c.normalize_quaternions:
        rotations = r / r.norm(dim=-1, keepdim=True)
    else:
        rotations = r

    col = raw["color"]
    if c.use_color_activation:
        o = c.color_overshoot
        col = (torch.tanh(col) * (1 + 2 * o) - o) * (0.5 / SH_C0)
    sh = col.reshape(*col.shape[:-1], -1, 3)

    o = c.opacity_overshoot
    opacities = torch.sigmoid(raw["opacity"][..., 0]) * (1 + 2 * o) - o
    if c.clamp_opacity:
        opacities = opacities.clamp(0.0, 1.0)
    return DecodedAttributes(positions, log_scales, rotations.contiguous(), opacities, sh)


def bake_view_dependence(gaussians: GaussianSet, camera_center: torch.Tensor) -> GaussianSet:
    """Degree-0 scene whose colours are those seen from ``camera_center [3]``, for every view (upstream's
    optional ``sh_ref_cam``: colour = max(0, 0.5 + sum_k Y_k(d) sh_k), d from the camera to the Gaussian)."""
    if gaussians.sh_degree == 0:
        return gaussians
    rgb = sh_to_rgb(gaussians.sh, gaussians.means - camera_center.to(gaussians.means))
    return GaussianSet(gaussians.means, gaussians.quats, gaussians.log_scales, gaussians.opacity_logits,
                       ((rgb - 0.5) / SH_C0)[..., None, :])
