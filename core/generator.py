"""The CGS-GAN-style generator: ``z -> w -> transformer over learnable points -> hierarchy of 3D Gaussians``.

    mapping:    z [B, 512] -> ws [B, num_ws, 512]                   (core.mapping)
    points:     tanh(xyz_const) [L, 3] -> positional encoding       (core.point_hierarchy)
    transformer: [B, L, width] -> one feature map per level          (core.transformer)
    levels:     upsample features x acc_i, heads -> anchors and Gaussians placed inside their parents
    output:     GaussianSet [B, N] (SH degree 0, pre-activation) + level-0 anchor centres [B, L, 3]

N = L * sum(acc_i). With L = 512: 109,056 / 240,128 / 502,272 / 1,026,560 Gaussians at 256 / 512 / 1024 /
2048. The generator does not see the camera; :meth:`Generator.forward` renders through :func:`core.render`
when cameras are given.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from core.camera import Cameras
from core.config_dict import config_from_dict, config_to_dict
from core.gaussians import GaussianSet
from core.generator_limits import config_problems, parameter_count, state_bytes
from core.mapping import MappingNetwork
from core.point_hierarchy import (
    Points,
    PointHead,
    PointUpsample,
    PositionalEncoding,
    place_children,
    place_first_anchors,
)
from core.render import RenderOutput, render
from core.transformer import Transformer

WsLayout = Literal["single", "per_block"]
UPSAMPLE_RATIOS = (1, 4, 4, 4, 2, 2, 2, 2)
LEVELS_BY_RESOLUTION = {64: 3, 128: 4, 256: 5, 512: 6, 1024: 7, 2048: 8}


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything that defines a generator's architecture (JSON-able; saved in every checkpoint).

    Attributes:
        resolution: image resolution the generator is made for (sets the split rule, px).
        num_points: learnable points / transformer tokens L.
        width: transformer width (= positional-encoding width); heads: attention heads.
        num_first_blocks: blocks before the first output; one more block per further level.
        level_channels: feature width per level; upsample_ratios: per-level child count (cumulative product
            gives the points per token at that level).
        z_dim, w_dim, mapping_layers, mapping_lr_mul, w_avg_beta: the mapping network.
        ws_layout: ``"single"`` (one w for every block, the June 2025 release) or ``"per_block"`` (one w slot
            per transformer block, the later release; the mapping still broadcasts one w).
        initial_anchor_log_scale: log-scale of the virtual parent of level 0 (-5; -7 in some releases).
        official_pe_lookup: reproduce the official positional-encoding table lookup (see
            :class:`core.point_hierarchy.PositionalEncoding`); needed for official weights.
        level0_max_log_scale, split_min_scale_value, split_ratio_value: explicit values for the derived
            constants below (None: derive them); official pickles store their own.
    """

    resolution: int = 512
    num_points: int = 512
    width: int = 512
    heads: int = 8
    num_first_blocks: int = 6
    mlp_ratio: int = 4
    level_channels: tuple[int, ...] = (512, 256, 128, 64, 32, 16)
    upsample_ratios: tuple[int, ...] = (1, 4, 4, 4, 2, 2)
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 2
    mapping_lr_mul: float = 0.01
    w_avg_beta: float = 0.998
    ws_layout: WsLayout = "per_block"
    initial_anchor_log_scale: float = -5.0
    official_pe_lookup: bool = False
    pe_table_res: int = 512
    level0_max_log_scale: float | None = None
    split_min_scale_value: float | None = None
    split_ratio_value: float | None = None

    def __post_init__(self) -> None:
        for name in ("level_channels", "upsample_ratios"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        problems = config_problems(self)  # types, ranges, relations, size totals: see core.generator_limits
        if problems:
            raise ValueError("invalid GeneratorConfig: " + "; ".join(problems))

    @property
    def parameter_count(self) -> int:
        """Trainable parameters of ``Generator(self)``, computed from the config (nothing is built)."""
        return parameter_count(self)

    @property
    def state_bytes(self) -> int:
        """Memory of ``Generator(self)``'s parameters and buffers in float32, computed from the config."""
        return state_bytes(self)

    # ---------------------------------------------------------------- derived sizes

    @property
    def num_levels(self) -> int:
        return len(self.level_channels)

    @property
    def num_blocks(self) -> int:
        return self.num_first_blocks + self.num_levels - 1

    @property
    def num_ws(self) -> int:
        return 1 if self.ws_layout == "single" else self.num_blocks

    @property
    def points_per_token(self) -> tuple[int, ...]:
        """Cumulative upsampling per level (1, 4, 16, ...)."""
        return tuple(math.prod(self.upsample_ratios[: i + 1]) for i in range(self.num_levels))

    @property
    def num_gaussians(self) -> int:
        return self.num_points * sum(self.points_per_token)

    @property
    def num_anchors(self) -> int:
        return self.num_points * sum(self.points_per_token[:-1])

    @property
    def scale_threshold(self) -> float:
        """Cap on level-0 anchor log-scales: ``ln(0.5 / sqrt(L))``."""
        if self.level0_max_log_scale is not None:
            return self.level0_max_log_scale
        return math.log(0.5 / math.sqrt(self.num_points))

    @property
    def split_min_scale(self) -> float:
        """Parents larger than half a pixel (in scene units, ``0.5 / resolution``) split their children."""
        if self.split_min_scale_value is not None:
            return self.split_min_scale_value
        return 0.5 / self.resolution

    @property
    def split_ratio(self) -> float:
        """Scale reduction per level while splitting: 1.834 / 1.866 / 1.888 / 1.903 at 256 / 512 / 1024 / 2048."""
        if self.split_ratio_value is not None:
            return self.split_ratio_value
        num_up = math.log2(self.resolution / 2) - 2
        return math.exp((math.log(0.5 / math.sqrt(self.num_points)) - math.log(0.5 / self.resolution))
                        / max(num_up - 1, 1.0))

    def to_dict(self) -> dict:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GeneratorConfig:
        return config_from_dict(cls, d, "generator config")


def official_preset(resolution: int, ws_layout: WsLayout = "per_block", **overrides) -> GeneratorConfig:
    """The CGS-GAN architecture at 256/512/1024/2048 (5/6/7/8 levels; channels max(16, 512/2^i), 8 at the
    eighth level); also 64 and 128 with the same rule (3/4 levels)."""
    if resolution not in LEVELS_BY_RESOLUTION:
        raise ValueError(f"no preset for resolution {resolution}; choose from {sorted(LEVELS_BY_RESOLUTION)}")
    n = LEVELS_BY_RESOLUTION[resolution]
    channels = tuple(8 if i == 7 else max(16, 512 // 2**i) for i in range(n))
    return GeneratorConfig(resolution=resolution, level_channels=channels, upsample_ratios=UPSAMPLE_RATIOS[:n],
                           ws_layout=ws_layout, **overrides)


PRESETS: dict[str, GeneratorConfig] = {
    **{f"cgs{r}": official_preset(r) for r in (64, 128, 256, 512, 1024, 2048)},
    # 21,760 Gaussians, ~8.5 M parameters: interactive on a 2-core CPU at 128 px (the default model v1).
    "cpu128": GeneratorConfig(resolution=128, num_points=256, width=256, heads=4, num_first_blocks=3,
                              level_channels=(256, 128, 64, 32), upsample_ratios=(1, 4, 4, 4), w_dim=256,
                              z_dim=256, pe_table_res=256),
    # Default model v2 (docs/default-model-v2.md): 21,760 Gaussians like cpu128, so the 2-core CPU viewer
    # draws as fast (its frame cost is per splat and per fragment), trained at 256 px; one more transformer
    # block for 360-degree variety and wider fine levels for 256 px detail: ~10.3 M parameters (19.7 MiB in
    # float16), CPU synthesis about 1.2x cpu128's.
    "cpu256": GeneratorConfig(resolution=256, num_points=256, width=256, heads=4, num_first_blocks=4,
                              level_channels=(256, 128, 96, 64), upsample_ratios=(1, 4, 4, 4), w_dim=256,
                              z_dim=256, pe_table_res=256),
    # 1,344 Gaussians, a few hundred thousand parameters: for tests.
    "tiny": GeneratorConfig(resolution=32, num_points=64, width=64, heads=4, num_first_blocks=2,
                            level_channels=(64, 32, 16), upsample_ratios=(1, 4, 4), w_dim=64, z_dim=64,
                            pe_table_res=64),
}


@dataclass(frozen=True, eq=False)
class GeneratorOutput:
    """Attributes:
        gaussians: ``[B, N]`` GaussianSet, SH degree 0, pre-activation; centres clamped to [-0.5, 0.5]^3.
        anchors: ``[B, L, 3]`` level-0 anchor centres, unclamped (for the KNN / centre regularizers).
        ws: ``[B, num_ws, w_dim]`` the latents used.
        render: the rendered views when cameras were given, else None.
    """

    gaussians: GaussianSet
    anchors: torch.Tensor
    ws: torch.Tensor
    render: RenderOutput | None = None


def generate(G: nn.Module, z: torch.Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
             cameras: Cameras | None = None, resolution: int | None = None,
             background: torch.Tensor | list[float] | None = (1.0, 1.0, 1.0), update_w_avg: bool = False
             ) -> GeneratorOutput:
    """The ``forward`` of every generator family: ``G.synthesis(G.map(z [B, z_dim], ...))``, and with
    ``cameras`` (``[C]`` shared or ``[B, C]``) the scenes rendered at ``resolution`` (default:
    ``G.config.resolution``) on ``background`` (white) into the output's ``render``."""
    out = G.synthesis(G.map(z, truncation_psi, truncation_cutoff, update_w_avg))
    if cameras is None:
        return out
    res = resolution or G.config.resolution
    return dataclasses.replace(out, render=render(out.gaussians, cameras, res, res, background=background))


class Generator(nn.Module):
    """See the module docstring. Build with ``Generator(PRESETS["cgs512"])`` or any :class:`GeneratorConfig`.
    Implements :class:`core.generator_interface.GaussianHeadGenerator`."""

    family = "cgs-gan"

    def __init__(self, config: GeneratorConfig = PRESETS["cgs512"]) -> None:
        super().__init__()
        c = self.config = config
        self.mapping = MappingNetwork(c.z_dim, c.w_dim, c.num_ws, c.mapping_layers, c.mapping_lr_mul, c.w_avg_beta)
        self.xyz_const = nn.Parameter(torch.nn.functional.normalize(torch.randn(c.num_points, 3), dim=-1) * 0.3)
        self.encoding = PositionalEncoding(c.width // 2, c.pe_table_res, c.official_pe_lookup)
        self.transformer = Transformer(c.width, c.heads, c.w_dim, c.num_first_blocks, c.num_levels, c.mlp_ratio)
        ppt = c.points_per_token
        self.upsample = nn.ModuleList([PointUpsample(c.width, ch, r) for ch, r in zip(c.level_channels, ppt)])
        # The last level has no anchors (nothing is placed inside them), so no anchor head.
        self.anchor_heads = nn.ModuleList([PointHead(ch) for ch in c.level_channels[:-1]])
        self.gaussian_heads = nn.ModuleList([PointHead(ch) for ch in c.level_channels])
        # Mixed precision for the feature path (encoding, transformer, upsampling) only, e.g. torch.bfloat16
        # on CUDA. The heads and the placement arithmetic always run in float32: children sit inside their
        # parents' boxes at offsets far below bfloat16 resolution.
        self.feature_dtype: torch.dtype | None = None
        s = c.initial_anchor_log_scale
        parent = [0.0, 0.0, 0.0, s, s, s, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, math.log(0.1 / 0.9)]
        self.register_buffer("parent_init", torch.tensor(parent), persistent=False)

    # ---------------------------------------------------------------- the two halves

    @property
    def w_avg(self) -> torch.Tensor:
        """``[w_dim]`` the truncation centre (the mapping network's running mean of w)."""
        return self.mapping.w_avg

    def map(self, z: torch.Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
            update_w_avg: bool = False) -> torch.Tensor:
        """``z [B, z_dim] -> ws [B, num_ws, w_dim]``, truncated toward ``w_avg`` by ``truncation_psi``."""
        return self.mapping(z, truncation_psi, truncation_cutoff, update_w_avg)

    def synthesis(self, ws: torch.Tensor) -> GeneratorOutput:
        """``ws [B, w_dim]``, ``[B, 1, w_dim]`` or ``[B, num_blocks, w_dim]`` -> Gaussians and anchors."""
        c = self.config
        if ws.dim() == 2:
            ws = ws[:, None]
        if ws.dim() != 3 or ws.shape[2] != c.w_dim or ws.shape[1] not in (1, c.num_blocks):
            raise ValueError(f"ws must be [B, {c.w_dim}], [B, 1, {c.w_dim}] or [B, {c.num_blocks}, {c.w_dim}], "
                             f"got {list(ws.shape)}")
        B = ws.shape[0]
        p = torch.tanh(self.xyz_const).to(ws.dtype)[None].expand(B, -1, -1)
        amp = self.feature_dtype is not None
        with torch.autocast(ws.device.type, dtype=self.feature_dtype or torch.bfloat16, enabled=amp):
            features = self.transformer(self.encoding(p), ws)
            features = [up(f) for up, f in zip(self.upsample, features)]
        features = [f.to(ws.dtype) for f in features]
        parent = self._initial_parent(B, ws)
        gaussians, first_anchors = [], None
        for i in range(c.num_levels):
            f = features[i]
            if i > 0:
                parent = parent.repeat(c.upsample_ratios[i])
            if i < c.num_levels - 1:
                raw = self.anchor_heads[i](f)
                if i == 0:
                    anchors = first_anchors = place_first_anchors(raw, parent, c.scale_threshold)
                    parent = anchors  # level-0 Gaussians are children of the level-0 anchors
                else:
                    anchors = place_children(raw, parent, c.split_ratio, c.split_min_scale)
            gaussians.append(place_children(self.gaussian_heads[i](f), parent, c.split_ratio, c.split_min_scale))
            if i < c.num_levels - 1:
                parent = anchors
        g = Points.cat(gaussians)
        scene = GaussianSet(g.xyz.clamp(-0.5, 0.5), g.rotation, g.scale, g.opacity[..., 0], g.color[..., None, :])
        return GeneratorOutput(scene, first_anchors.xyz, ws)

    def _initial_parent(self, B: int, like: torch.Tensor) -> Points:
        """The virtual parent of level 0: at the origin, log-scale -5, identity rotation, colour 0, opacity 0.1
        (kept in a buffer: no host-to-device copy, so the forward can be captured in a CUDA graph)."""
        return Points(self.parent_init.to(like.dtype).expand(B, 1, -1))

    # ---------------------------------------------------------------- all together

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                cameras: Cameras | None = None, resolution: int | None = None,
                background: torch.Tensor | list[float] | None = (1.0, 1.0, 1.0), update_w_avg: bool = False
                ) -> GeneratorOutput:
        """``z [B, z_dim]`` -> :class:`GeneratorOutput`; with ``cameras`` (``[C]`` shared or ``[B, C]``) the
        scenes are also rendered at ``resolution`` (default: the config's) on ``background`` (white)."""
        return generate(self, z, truncation_psi, truncation_cutoff, cameras, resolution, background, update_w_avg)

    def extra_repr(self) -> str:
        c = self.config
        return f"{c.num_gaussians:,} Gaussians, {c.num_levels} levels, {c.num_blocks} blocks, ws {c.ws_layout}"


def check_state_dict(config: GeneratorConfig, state: Mapping[str, torch.Tensor]) -> None:
    """Raise ``ValueError`` unless ``state`` has exactly the entries and shapes of ``Generator(config)``.

    Run it before building the generator for real: the comparison uses a build on the meta device (no memory),
    so a file whose config promises a large network but whose weights are missing or small never makes the
    loader allocate that network. Missing, unexpected and mis-shaped entries are listed (10 of each at most).
    """
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in Generator(config).state_dict().items()}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {list(v.shape)} (expected {list(expected[k])})" for k, v in state.items()
              if k in expected and (not isinstance(v, torch.Tensor) or tuple(v.shape) != expected[k])]
    problems = [f"{title}: {', '.join(names[:10])}{' ...' if len(names) > 10 else ''}" for title, names in
                (("missing", missing), ("unexpected", unexpected), ("wrong shapes", shapes)) if names]
    if problems:
        raise ValueError(f"the weights do not match the config ({config.parameter_count:,} parameters): "
                         + "; ".join(problems))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
