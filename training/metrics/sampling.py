"""Generated images for the metrics, sampled the way CGS-GAN's metric code samples them.

``generator_sampler(G, labels)`` returns ``generate_fn(n) -> uint8 [n, 3, H, W]``:

- z ~ N(0, I) from a seeded generator; no truncation unless asked (psi = 1);
- ``protocol="fid"``: a camera label is drawn at random from ``labels`` (the dataset's) for each head;
  that label conditions the mapping and places the camera;
- ``protocol="fid3d"``: the mapping gets the fixed frontal label (EG3D LookAt pi/2, pi/2, radius 2.7, focal
  4.2647 = :func:`core.camera.default_camera`) and the camera comes from a fresh random dataset label;
- rendered at the dataset resolution on a white background; pixels ``round(255 * rgb)`` clamped to 0..255.

Our :class:`core.generator.Generator` (like CGS-GAN's) has no camera-conditioned mapping, so the mapping
label is not used and both protocols draw from the same distribution (documented in :mod:`.fid`).
"""

from __future__ import annotations

import math
from typing import Callable, Literal

import torch

from core.camera import Cameras, default_camera, orbit_cameras
from core.render import render

SamplingProtocol = Literal["fid", "fid3d"]


def full_circle_labels(n: int, seed: int = 0) -> torch.Tensor:
    """``[n, 25]`` orbit-camera labels at the default radius and focal: yaw uniform over the whole circle,
    pitch ~ N(0, 5 deg) (the consistency metric's ``full`` views: the back of the head too)."""
    gen = torch.Generator().manual_seed(seed + 1)
    yaw = (torch.rand(n, generator=gen) * 2 - 1) * math.pi
    pitch = torch.randn(n, generator=gen) * math.radians(5.0)
    return orbit_cameras(yaw, pitch).to_label()


def frontal_label(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``[25]`` the frontal conditioning label of FID3D (camera at (0, 0, 2.7) looking at the origin)."""
    return default_camera(dtype).to_label()


def to_uint8_nchw(rgb: torch.Tensor) -> torch.Tensor:
    """``[..., H, W, 3]`` floats in [0, 1] -> uint8 ``[N, 3, H, W]`` with rounding (StyleGAN3's
    ``x * 127.5 + 128`` truncation for x in [-1, 1] is the same map)."""
    x = (rgb.detach().reshape(-1, *rgb.shape[-3:]) * 255.0 + 0.5).clamp(0, 255).to(torch.uint8)
    return x.permute(0, 3, 1, 2).contiguous()


def generator_sampler(G: torch.nn.Module, labels: torch.Tensor, resolution: int | None = None,
                      protocol: SamplingProtocol = "fid", truncation_psi: float = 1.0, seed: int = 0,
                      device: torch.device | str | None = None,
                      background: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> Callable[[int], torch.Tensor]:
    """A ``generate_fn(n)`` for :func:`training.metrics.fid.fid` / ``fid3d`` (see the module docstring).

    Args:
        G: our generator (``G.map``, ``G.synthesis``, ``G.config``).
        labels: ``[L, 25]`` camera labels to draw from (the dataset's).
        resolution: image size (default: ``G.config.resolution``).
        protocol: ``"fid"`` or ``"fid3d"``.
        seed: seeds z and the label draws; the same seed gives the same images.
    """
    if protocol not in ("fid", "fid3d"):
        raise ValueError(f"protocol must be 'fid' or 'fid3d', got {protocol!r}")
    labels = torch.as_tensor(labels, dtype=torch.float32)
    if labels.dim() != 2 or labels.shape[1] != 25 or labels.shape[0] == 0:
        raise ValueError(f"labels must be [L, 25] with L > 0, got {list(labels.shape)}")
    Cameras.from_label(labels)  # validate once
    device = torch.device(device) if device is not None else next(G.parameters()).device
    res = resolution or G.config.resolution
    gen = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def generate(n: int) -> torch.Tensor:
        z = torch.randn(n, G.config.z_dim, generator=gen).to(device)
        render_label = labels[torch.randint(len(labels), (n,), generator=gen)]
        # protocol "fid": the mapping label is render_label; "fid3d": frontal_label(). The mapping of our
        # generator (and CGS-GAN's) is not camera-conditioned, so neither is passed to G.map.
        ws = G.map(z, truncation_psi)
        scenes = G.synthesis(ws).gaussians
        cams = Cameras.from_label(render_label.to(device), validate=False).reshape(n, 1)
        out = render(scenes, cams, res, res, background=list(background), mode="rgb")
        return to_uint8_nchw(out.color).cpu()

    return generate
