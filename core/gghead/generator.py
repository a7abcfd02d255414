"""The GGHead generator behind the interface of :class:`core.generator.Generator`.

    map:       z [B, z_dim] (+ camera label, default: the frontal camera) -> ws [B, num_ws, w_dim]
    synthesis: ws -> UV feature map [B, C, P, P] (StyleGAN2) -> sampled at the template's UV grid ->
               GaussianSet [B, G] (SH degree 1 for the released models, pre-activation, EG3D world)

What the viewer, inversion, editing, video and export use is :class:`core.generator_interface.
GaussianHeadGenerator`, as on ``Generator``: ``config`` (``z_dim``, ``w_dim``, ``num_ws``, ``resolution``,
``num_gaussians``), ``w_avg``, ``map(z,
truncation_psi, truncation_cutoff)``, ``synthesis(ws) -> GeneratorOutput`` (``.gaussians``; ``anchors`` is
empty: GGHead has none), ``forward(z, ..., cameras=...)`` and ``feature_dtype`` (bfloat16 autocast for the
StyleGAN2 backbone on CUDA; decoding stays float32). ``synthesis`` accepts ``[B, w_dim]``, ``[B, 1, w_dim]``
(broadcast to every layer) or ``[B, num_ws, w_dim]``.

Build one from scratch with ``GGHeadGenerator(PRESETS["gghead512"])`` (random weights, synthetic template)
or load a checkpoint with :func:`core.gghead.checkpoint.load_gghead_checkpoint` / ``core.model_files``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from core.camera import Cameras, orbit_cameras
from core.generator import GeneratorOutput, generate
from core.gghead.config import PRESETS, GGHeadConfig, with_gaussian_count
from core.gghead.decode import DecodedAttributes, activate, bake_view_dependence, sample_uv_features
from core.gghead.stylegan2 import MappingNetwork, SynthesisNetwork
from core.gghead.template import UVTemplate, synthetic_template

ShReference = Literal["view", "front"]


class GGHeadGenerator(nn.Module):
    """See the module docstring.

    Args:
        config: the architecture and decoding settings; ``num_gaussians`` is filled in from the template.
        template: the UV template (from a checkpoint); None builds :func:`synthetic_template`.
    """

    family = "gghead"

    def __init__(self, config: GGHeadConfig = PRESETS["gghead512"], template: UVTemplate | None = None) -> None:
        super().__init__()
        if template is None:
            template = synthetic_template(config.plane_resolution, config.uv_grid_size)
        self.config = c = with_gaussian_count(config, template.count)
        self.mapping = MappingNetwork(c.z_dim, c.c_dim, c.w_dim, c.num_ws, c.mapping_layers, c.mapping_lr_mul,
                                      c.w_avg_beta)
        self.synthesis_network = SynthesisNetwork(c)
        if c.use_zero_conv_position:
            self.position_conv = nn.Conv2d(3, 3, 1)
            nn.init.zeros_(self.position_conv.weight)
            nn.init.zeros_(self.position_conv.bias)
        else:
            self.position_conv = None
        self.register_buffer("uv_grid", template.uv_grid.float().clone())
        self.register_buffer("uv_position_map", template.uv_position_map.float().clone())
        self.register_buffer("template_positions", template.template_positions.float().clone())
        with torch.device("cpu"):  # also when the module is built on the meta device
            label = self.front_camera().to_label().float()
        self.register_buffer("conditioning_label", label, persistent=False)
        # Mixed precision for the StyleGAN2 backbone only (e.g. torch.bfloat16 on CUDA); decoding is float32.
        self.feature_dtype: torch.dtype | None = None
        self._sh_reference: ShReference = "view"

    @property
    def sh_reference(self) -> ShReference:
        """``"view"`` (default): SH degree-1 colours evaluated per view by the renderer, as in training and in
        any 3DGS viewer. ``"front"``: colours baked as seen from :meth:`front_camera` into SH degree 0, as
        upstream's notebook and sample script render (their ``sh_ref_cam``)."""
        return self._sh_reference

    @sh_reference.setter
    def sh_reference(self, value: ShReference) -> None:
        if value not in ("view", "front"):
            raise ValueError(f"sh_reference must be 'view' or 'front', got {value!r}")
        self._sh_reference = value

    # ---------------------------------------------------------------- cameras

    def front_camera(self) -> Cameras:
        """The frontal camera at ``config.conditioning_radius``: the mapping's default pose label."""
        return orbit_cameras(0.0, 0.0, self.config.conditioning_radius)

    @property
    def template(self) -> UVTemplate:
        return UVTemplate(self.uv_grid, self.uv_position_map, self.template_positions)

    # ---------------------------------------------------------------- the two halves

    @property
    def w_avg(self) -> torch.Tensor:
        """``[w_dim]`` the truncation centre (``core.generator_interface.GaussianHeadGenerator``)."""
        return self.mapping.w_avg

    def map(self, z: torch.Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
            update_w_avg: bool = False, c: torch.Tensor | None = None) -> torch.Tensor:
        """``z [B, z_dim] -> ws [B, num_ws, w_dim]``, truncated toward ``w_avg``.

        ``c``: ``[B, 25]`` or ``[25]`` EG3D camera labels for the mapping's pose conditioning; None = the frontal
        camera (upstream's scripts feed a front camera too). Zeroed when the model was trained without it."""
        cfg = self.config
        if c is None:
            c = self.conditioning_label
        c = torch.as_tensor(c).to(z.device, torch.float32)
        if c.dim() == 1:
            c = c[None]
        c = c.expand(z.shape[0], -1) if c.shape[0] == 1 else c
        c = torch.zeros_like(c) if cfg.c_gen_conditioning_zero else c * cfg.c_scale
        return self.mapping(z, c, truncation_psi, truncation_cutoff, update_w_avg)

    def synthesis(self, ws: torch.Tensor) -> GeneratorOutput:
        """``ws [B, w_dim]``, ``[B, 1, w_dim]`` or ``[B, num_ws, w_dim]`` -> GeneratorOutput (Gaussians
        ``[B, G]``)."""
        attrs, ws = self.decode(ws)
        gs = attrs.to_gaussian_set()
        if self.sh_reference == "front":
            gs = bake_view_dependence(gs, self.front_camera().centers.to(gs.means))
        return GeneratorOutput(gs, gs.means.new_zeros(gs.means.shape[0], 0, 3), ws)

    def decode(self, ws: torch.Tensor) -> tuple[DecodedAttributes, torch.Tensor]:
        """The synthesis with upstream's activated attributes (for tests and export checks)."""
        c = self.config
        ws = self._check_ws(ws)
        amp = self.feature_dtype is not None and ws.device.type == "cuda"
        with torch.autocast(ws.device.type, dtype=self.feature_dtype or torch.bfloat16, enabled=amp):
            uv_map = self.synthesis_network(ws, c.noise_mode)
        uv_map = uv_map.float() if ws.dtype != torch.float64 else uv_map.double()
        features = sample_uv_features(uv_map, self.uv_grid, c, self.position_conv)
        return activate(features, self.template_positions, c), ws

    def uv_map(self, ws: torch.Tensor) -> torch.Tensor:
        """``[B, C, P, P]`` the raw synthesis output (before the position convolution)."""
        return self.synthesis_network(self._check_ws(ws), self.config.noise_mode)

    def _check_ws(self, ws: torch.Tensor) -> torch.Tensor:
        c = self.config
        if ws.dim() == 2:
            ws = ws[:, None]
        if ws.dim() != 3 or ws.shape[2] != c.w_dim or ws.shape[1] not in (1, c.num_ws):
            raise ValueError(f"ws must be [B, {c.w_dim}], [B, 1, {c.w_dim}] or [B, {c.num_ws}, {c.w_dim}], "
                             f"got {list(ws.shape)}")
        ws = ws.to(self.uv_grid.dtype)  # float32 (upstream casts too), or float64 for a .double() model
        return ws.expand(-1, c.num_ws, -1) if ws.shape[1] == 1 else ws

    # ---------------------------------------------------------------- all together

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                cameras: Cameras | None = None, resolution: int | None = None,
                background: torch.Tensor | list[float] | None = (1.0, 1.0, 1.0), update_w_avg: bool = False,
                ) -> GeneratorOutput:
        """``z [B, z_dim]`` -> GeneratorOutput; with ``cameras`` also rendered at ``resolution`` (default: the
        config's) on ``background`` (white, as upstream); see :func:`core.generator.generate`."""
        return generate(self, z, truncation_psi, truncation_cutoff, cameras, resolution, background, update_w_avg)

    def extra_repr(self) -> str:
        c = self.config
        return (f"GGHead: {c.num_gaussians:,} Gaussians from a {c.plane_resolution}^2 UV map, {c.num_ws} ws, "
                f"SH degree {c.sh_degree}")
