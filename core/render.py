"""``render()``: one function for every backend, batched over scenes and cameras.

Backends:
    ``"gsplat"``  gsplat's CUDA rasterizer (fast; CUDA + float32 only).
    ``"torch"``   the differentiable pure-PyTorch reference in :mod:`core.render_torch` (any device, any
                  float dtype; the CPU path).
    ``"auto"``    gsplat when the scene is on CUDA in float32 and gsplat is usable, else torch.
Both follow the same conventions and rules, so they give the same image up to float rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import torch

from core.camera import Cameras
from core.gaussians import GaussianSet

RenderMode = Literal["rgb", "rgb+depth"]
Backend = Literal["auto", "torch", "gsplat"]
MAX_SIZE = 16384


@dataclass(frozen=True, eq=False)
class RenderOutput:
    """What :func:`render` returns; ``[...]`` is the batch shape described there.

    Attributes:
        color: ``[..., H, W, 3]`` RGB, background composited, values >= 0 (not clamped above 1).
        alpha: ``[..., H, W, 1]`` accumulated opacity in [0, 1).
        depth: ``[..., H, W, 1]`` expected camera-space z (alpha-weighted mean; 0 where alpha is 0), or
            ``None`` in mode ``"rgb"``.
        backend: the backend that produced it.
    """

    color: torch.Tensor
    alpha: torch.Tensor
    depth: torch.Tensor | None
    backend: str


def choose_backend(device: torch.device, dtype: torch.dtype, backend: Backend = "auto") -> str:
    """Resolve ``"auto"``; raise ``RuntimeError`` with the reason if ``"gsplat"`` cannot run here."""
    from core.render_gsplat import gsplat_status

    if backend == "torch":
        return "torch"
    if backend == "gsplat":
        if device.type != "cuda":
            raise RuntimeError(f"backend='gsplat' needs the scene on a CUDA device, it is on {device}")
        reason = gsplat_status()
        if reason is not None:
            raise RuntimeError(reason)
        return "gsplat"
    if backend != "auto":
        raise ValueError(f"backend must be 'auto', 'torch' or 'gsplat', got {backend!r}")
    if device.type == "cuda" and dtype == torch.float32 and gsplat_status() is None:
        return "gsplat"
    return "torch"


def render(
    gaussians: GaussianSet | Sequence[GaussianSet],
    cameras: Cameras,
    width: int,
    height: int,
    background: torch.Tensor | Sequence[float] | float | None = None,
    mode: RenderMode = "rgb+depth",
    backend: Backend = "auto",
) -> RenderOutput:
    """Rasterize Gaussians.

    Args:
        gaussians: one scene (batch shape ``[]``), a batch ``[B]``, or a list of B scenes (any sizes).
        cameras: batch shape ``[]`` (one view), ``[C]`` (C views of every scene) or ``[B, C]`` (C views per
            scene). Normalised intrinsics, so any ``width``/``height`` works.
        width, height: image size in pixels.
        background: RGB in [0, 1] broadcastable to ``[..., 3]`` (e.g. ``[3]`` or ``[B, C, 3]``); black if None.
        mode: ``"rgb"`` or ``"rgb+depth"``.
        backend: ``"auto"``, ``"torch"`` or ``"gsplat"``.

    Returns:
        :class:`RenderOutput` with leading shape ``[B, C]`` for a batch or list of B scenes (``[B]`` when
        cameras has batch shape ``[]``), ``[C]`` for one scene and ``[C]`` cameras, and no leading dims for
        one scene and one camera.
    """
    for name, v in (("width", width), ("height", height)):
        if not isinstance(v, int) or not 0 < v <= MAX_SIZE:
            raise ValueError(f"{name} must be an int in 1..{MAX_SIZE}, got {v!r}")
    if mode not in ("rgb", "rgb+depth"):
        raise ValueError(f"mode must be 'rgb' or 'rgb+depth', got {mode!r}")
    if not isinstance(cameras, Cameras):
        raise TypeError(f"cameras must be core.camera.Cameras, got {type(cameras).__name__}")

    single = isinstance(gaussians, GaussianSet) and gaussians.batch_shape == ()
    if isinstance(gaussians, GaussianSet):
        if len(gaussians.batch_shape) > 1:
            raise ValueError(f"gaussians may have at most one batch dim, got batch shape {list(gaussians.batch_shape)}")
        scenes = [gaussians] if single else None
        batch = gaussians if not single else None
    else:
        scenes = list(gaussians)
        if not scenes or not all(isinstance(s, GaussianSet) and s.batch_shape == () for s in scenes):
            raise TypeError("a list of scenes must hold single (unbatched) GaussianSets")
        batch = None
    B = 1 if single else (batch.batch_shape[0] if batch is not None else len(scenes))
    cam_lead = cameras.batch_shape
    if len(cam_lead) == 0:
        cams = cameras.reshape(1, 1).cam2world.expand(B, 1, 4, 4), cameras.reshape(1, 1).intrinsics.expand(B, 1, 3, 3)
    elif len(cam_lead) == 1:
        cams = cameras.cam2world[None].expand(B, -1, 4, 4), cameras.intrinsics[None].expand(B, -1, 3, 3)
    elif len(cam_lead) == 2 and cam_lead[0] == B and not single:
        cams = cameras.cam2world, cameras.intrinsics
    else:
        raise ValueError(
            f"cameras batch shape {list(cam_lead)} does not fit {B} scene(s): use [], [C] or [{B}, C]"
        )
    C = cams[0].shape[1]

    ref = gaussians if isinstance(gaussians, GaussianSet) else scenes[0]
    device, dtype = ref.device, ref.dtype
    chosen = choose_backend(device, dtype, backend)
    cameras_bc = Cameras(cams[0].to(device, dtype), cams[1].to(device, dtype))
    viewmats = cameras_bc.world_to_camera()  # [B, C, 4, 4]
    Ks = cameras_bc.pixel_intrinsics(width, height)
    with_depth = mode == "rgb+depth"

    if batch is not None or single:
        groups = [(batch if batch is not None else _unsqueeze(gaussians), slice(0, B))]
    else:
        groups = [(_unsqueeze(s), slice(i, i + 1)) for i, s in enumerate(scenes)]
    parts = [_render_group(g, viewmats[sl], Ks[sl], width, height, with_depth, chosen) for g, sl in groups]
    rgb, alpha = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    depth = torch.cat([p[2] for p in parts]) if with_depth else None

    out_shape = (() if single else (B,)) + (() if len(cam_lead) == 0 else (C,))
    rgb, alpha = rgb.reshape(out_shape + rgb.shape[2:]), alpha.reshape(out_shape + alpha.shape[2:])
    depth = None if depth is None else depth.reshape(out_shape + depth.shape[2:])
    if background is not None:
        rgb = composite_background(rgb, alpha, background)
    return RenderOutput(rgb, alpha, depth, chosen)


def composite_background(rgb: torch.Tensor, alpha: torch.Tensor, background) -> torch.Tensor:
    """``rgb + (1 - alpha) * background`` with ``background`` broadcastable to ``[..., 3]`` of the images."""
    bg = torch.as_tensor(background, dtype=rgb.dtype, device=rgb.device)
    if bg.dim() == 0:
        bg = bg.expand(3)
    bg = bg[..., None, None, :]
    try:
        ok = bg.shape[-1] == 3 and torch.broadcast_shapes(rgb.shape, bg.shape) == rgb.shape
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(
            f"background of shape {list(bg.shape[:-3]) + [bg.shape[-1]]} does not broadcast to images "
            f"{list(rgb.shape[:-3])} x RGB"
        )
    return rgb + (1.0 - alpha) * bg


def _unsqueeze(gs: GaussianSet) -> GaussianSet:
    return gs.map(lambda t: t[None])


def _render_group(gs: GaussianSet, viewmats: torch.Tensor, Ks: torch.Tensor, width: int, height: int,
                  with_depth: bool, backend: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``gs`` batch ``[S]``, viewmats ``[S, C, 4, 4]`` -> ``[S, C, H, W, ch]`` (no background)."""
    S, C = viewmats.shape[:2]
    means, quats, scales, opac, sh = gs.means, gs.quats, gs.scales(), gs.opacities(), gs.sh
    if backend == "gsplat":
        from core.render_gsplat import render_gsplat

        return render_gsplat(means, quats, scales, opac, sh, viewmats, Ks, width, height, with_depth)
    from core.render_torch import render_torch

    scene_of_image = torch.arange(S, device=means.device).repeat_interleave(C)
    rgb, alpha, depth_sum = render_torch(
        means, quats, scales, opac, sh, scene_of_image, viewmats.reshape(-1, 4, 4), Ks.reshape(-1, 3, 3),
        width, height, with_depth,
    )
    shape = (S, C, height, width)
    depth = None
    if with_depth:
        depth = torch.where(alpha > 0, depth_sum / alpha.clamp_min(1e-10), torch.zeros_like(depth_sum))
        depth = depth.reshape(shape + (1,))
    return rgb.reshape(shape + (3,)), alpha.reshape(shape + (1,)), depth
