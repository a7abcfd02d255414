"""Settings of a GGHead generator: :class:`GGHeadConfig` (frozen, JSON-able) and the presets.

A GGHead checkpoint stores its own configuration (an ``elias`` ``GGHeadConfig`` dataclass pickled with the
model). The loader (:mod:`core.gghead.checkpoint`) reads it; where a field is absent (older pickles lack
fields added later) the class default of the upstream code applies, listed in :data:`UPSTREAM_DEFAULTS` (the
defaults of tobias-kirschstein/gghead @6043d2b, ``GGHeadConfig`` and its nested configs). The training script
overrides many of them; :data:`TRAINING_SCRIPT_VALUES` are the values ``scripts/train_gghead.py`` writes into
every model it builds, i.e. what the released FFHQ/AFHQ models carry. Values stored in a file always win.

Field names follow upstream where they mean the same thing, so a reader can find them in a checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

from core.config_dict import config_from_dict, config_to_dict

NoiseMode = Literal["const", "none", "random"]
UV_ATTRIBUTES = ("position", "scale", "rotation", "color", "opacity")

# Upstream class defaults (gghead @6043d2b) of every field the generator's forward reads. Keys are the
# attribute paths inside the pickled ``_config``; values are what an absent attribute falls back to.
UPSTREAM_DEFAULTS: dict[str, object] = {
    "z_dim": 512, "w_dim": 512, "c_dim": 25,
    "img_resolution": 512, "plane_resolution": 256, "n_uniform_flame_vertices": 64,
    "use_zero_conv_position": False, "use_align_corners": False, "interpolation_mode": "bilinear",
    "disable_position_offsets": False,
    "use_position_activation": True, "position_range": 1.0, "position_attenuation": 1.0,
    "scale_offset": -5.0, "max_scale": 1.0, "center_scale_activation": False, "no_exp_scale_activation": False,
    "use_rotation_activation": False, "rotation_attenuation": 1.0, "normalize_quaternions": True,
    "use_color_activation": True, "color_overshoot": 0.0,
    "opacity_overshoot": 0.0, "clamp_opacity": False,
    "use_background_cnn": False, "n_background_channels": 3,
    "gaussian_attribute_config.use_rodriguez_rotation": False,
    "gaussian_attribute_config.sh_degree": 0,
    "gaussian_attribute_config.n_color_channels": 3,
    "rendering_config.c_gen_conditioning_zero": True,
    "rendering_config.c_scale": 1.0,
    "synthesis_network_config.architecture": "skip",
}

# What scripts/train_gghead.py sets (its own argument defaults), i.e. the released models' decoding settings.
TRAINING_SCRIPT_VALUES: dict[str, object] = {
    "use_zero_conv_position": True, "position_range": 0.25, "max_scale": -3.0, "scale_offset": -5.0,
    "center_scale_activation": True, "use_rotation_activation": True, "color_overshoot": 0.001,
    "opacity_overshoot": 0.001, "gaussian_attribute_config.use_rodriguez_rotation": True,
    "gaussian_attribute_config.sh_degree": 1, "rendering_config.c_gen_conditioning_zero": False,
}


@dataclass(frozen=True)
class GGHeadConfig:
    """Everything that defines a GGHead generator (JSON-able).

    Network (EG3D's StyleGAN2 "skip" generator, fp32):
        z_dim, w_dim, c_dim: latent, intermediate latent and camera-label sizes (512, 512, 25).
        mapping_layers, mapping_lr_mul, w_avg_beta: the mapping MLP (2 layers, 0.01, 0.998).
        plane_resolution: side of the UV feature map (256). num_ws = 2 log2(plane_resolution) - 2 (14).
        channel_base, channel_max: channels at resolution r are ``min(channel_base // r, channel_max)``.
        kernel_size, use_noise, conv_clamp: synthesis-layer settings (3, True, None).
        c_gen_conditioning_zero, c_scale: upstream's generator pose conditioning (the mapping sees
            ``c * c_scale``, or zeros when the flag is set).

    UV decoding (upstream names; :mod:`core.gghead.decode` gives the formulas):
        uv_attributes: channel order of the map, each of ``UV_ATTRIBUTES`` once.
        uv_grid_size: N, the UV map is sampled on an N x N grid masked by the template chart (256 in
            training stage 1, 512 in stage 2); only used to build a synthetic template.
        sh_degree, use_rodriguez_rotation, use_zero_conv_position, use_align_corners, interpolation_mode,
        use_position_activation, position_range, position_attenuation, scale_offset, max_scale,
        center_scale_activation, use_rotation_activation, rotation_attenuation, normalize_quaternions,
        use_color_activation, color_overshoot, opacity_overshoot, clamp_opacity: as upstream.
        n_background_channels: trailing map channels of the (optional) background CNN, dropped here.

    Ours:
        resolution: the image resolution the model was trained for (512 / 1024): the default render size.
        num_gaussians: number of UV samples (Gaussians); None until a template is attached.
        noise_mode: ``"const"`` (stored noise, as upstream's scripts), ``"none"`` or ``"random"``.
        conditioning_radius: the mapping's pose label is the frontal camera at this distance (2.7, upstream's
            notebook; its sample script uses 3.5).
        family: always ``"gghead"``; tells our generator files which family a saved config belongs to.
    """

    z_dim: int = 512
    w_dim: int = 512
    c_dim: int = 25
    mapping_layers: int = 2
    mapping_lr_mul: float = 0.01
    w_avg_beta: float = 0.998
    plane_resolution: int = 256
    channel_base: int = 32768
    channel_max: int = 512
    kernel_size: int = 3
    use_noise: bool = True
    conv_clamp: float | None = None
    c_gen_conditioning_zero: bool = False
    c_scale: float = 1.0

    uv_attributes: tuple[str, ...] = UV_ATTRIBUTES
    uv_grid_size: int = 512
    sh_degree: int = 1
    use_rodriguez_rotation: bool = True
    use_zero_conv_position: bool = True
    use_align_corners: bool = False
    interpolation_mode: str = "bilinear"
    use_position_activation: bool = True
    position_range: float = 0.25
    position_attenuation: float = 1.0
    scale_offset: float = -5.0
    max_scale: float = -3.0
    center_scale_activation: bool = True
    use_rotation_activation: bool = True
    rotation_attenuation: float = 1.0
    normalize_quaternions: bool = True
    use_color_activation: bool = True
    color_overshoot: float = 0.001
    opacity_overshoot: float = 0.001
    clamp_opacity: bool = False
    n_background_channels: int = 0

    resolution: int = 512
    num_gaussians: int | None = None
    noise_mode: NoiseMode = "const"
    conditioning_radius: float = 2.7
    family: str = "gghead"  # tags the config in our generator files (core.model_files)

    def __post_init__(self) -> None:
        object.__setattr__(self, "uv_attributes", tuple(self.uv_attributes))
        problems = []
        p = self.plane_resolution
        if p < 4 or p & (p - 1):
            problems.append(f"plane_resolution must be a power of two >= 4, got {p}")
        if sorted(self.uv_attributes) != sorted(UV_ATTRIBUTES):
            problems.append(f"uv_attributes must hold each of {UV_ATTRIBUTES} once, got {self.uv_attributes}")
        if self.sh_degree not in (0, 1, 2, 3):
            problems.append(f"sh_degree must be 0..3, got {self.sh_degree}")
        if self.interpolation_mode not in ("bilinear", "nearest", "bicubic"):
            problems.append(f"interpolation_mode {self.interpolation_mode!r} is not a grid_sample mode")
        if self.noise_mode not in ("const", "none", "random"):
            problems.append(f"noise_mode must be 'const', 'none' or 'random', got {self.noise_mode!r}")
        if min(self.z_dim, self.w_dim, self.mapping_layers, self.channel_base, self.channel_max,
               self.kernel_size, self.uv_grid_size, self.resolution) < 1 or self.c_dim < 0:
            problems.append("sizes must be positive")
        if self.kernel_size % 2 == 0:
            problems.append(f"kernel_size must be odd, got {self.kernel_size}")
        if self.num_gaussians is not None and self.num_gaussians < 1:
            problems.append(f"num_gaussians must be positive, got {self.num_gaussians}")
        if self.n_background_channels < 0:
            problems.append("n_background_channels must be >= 0")
        if self.family != "gghead":
            problems.append(f"family must be 'gghead', got {self.family!r}")
        if not math.isfinite(self.conditioning_radius) or self.conditioning_radius <= 0:
            problems.append("conditioning_radius must be positive")
        if problems:
            raise ValueError("invalid GGHeadConfig: " + "; ".join(problems))

    # ---------------------------------------------------------------- derived sizes

    @property
    def block_resolutions(self) -> tuple[int, ...]:
        """4, 8, ..., plane_resolution: one synthesis block each."""
        return tuple(2 ** i for i in range(2, int(math.log2(self.plane_resolution)) + 1))

    def channels(self, res: int) -> int:
        return min(self.channel_base // res, self.channel_max)

    @property
    def num_ws(self) -> int:
        """One w per synthesis layer plus one for the last block's output layer: 14 at 256."""
        return 2 * len(self.block_resolutions)

    @property
    def color_channels(self) -> int:
        return 3 * (self.sh_degree + 1) ** 2

    @property
    def attribute_channels(self) -> dict[str, int]:
        """Channels per UV attribute (rotation: 3 axis-angle or 4 quaternion; colour: 3 per SH coefficient)."""
        return {"position": 3, "scale": 3, "rotation": 3 if self.use_rodriguez_rotation else 4,
                "color": self.color_channels, "opacity": 1}

    @property
    def uv_channels(self) -> int:
        return sum(self.attribute_channels.values())

    @property
    def map_channels(self) -> int:
        """Channels of the synthesis output: the UV attributes, then any background channels."""
        return self.uv_channels + self.n_background_channels

    def to_dict(self) -> dict:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GGHeadConfig:
        return config_from_dict(cls, d, "GGHead config")


PRESETS: dict[str, GGHeadConfig] = {
    # The released FFHQ-512 layout (GGHEAD-1): stage-2 UV grid of 512 x 512 samples, 256 x 256 map.
    "gghead512": GGHeadConfig(),
    # GGHEAD-2: the same generator fine-tuned for 1024 x 1024 images.
    "gghead1024": GGHeadConfig(resolution=1024),
    # A few thousand parameters, for tests.
    "tiny": GGHeadConfig(z_dim=32, w_dim=32, plane_resolution=16, channel_base=256, channel_max=32,
                         uv_grid_size=24, resolution=64),
}


def with_gaussian_count(config: GGHeadConfig, count: int) -> GGHeadConfig:
    """``config`` with ``num_gaussians`` set; raises if it already names a different count."""
    if config.num_gaussians is not None and config.num_gaussians != count:
        raise ValueError(f"the template has {count} UV samples but the config says {config.num_gaussians}")
    return replace(config, num_gaussians=count)
