"""Rendering synthetic heads into dataset images: one view at a time, optionally skipping hidden discs, with
the torch reference renderer on the CPU or gsplat on CUDA.

CPU and CUDA: the head is always built on the CPU (numpy, bit-identical everywhere); only the rasterisation
moves. gsplat and the torch reference follow the same rules (core/render.py), so the 8-bit images agree
within one level almost everywhere (docs/synthetic-heads.md states the measured tolerance); each is
deterministic on its own, so a dataset made on one kind of device is byte-identical when made again there.

Back-face culling: a disc on a closed surface (skin, nose, smooth scalp hair, neck, shirt, eyeballs, beard)
whose outward normal points away from the camera, ``n . (camera - centre) < -CULL_COS * |camera - centre|``,
lies behind the front of that same surface and is dropped before rasterising. That saves about 30% of the
work; the image differs from the exact render only where such a disc would have shown through (measured in
the tests and README). Two-sided Gaussians (zero normal: ears, hanging or curly hair, glasses) are never
dropped.
"""

from __future__ import annotations

import numpy as np
import torch

from core.camera import Cameras
from core.render import Backend, render
from training.synthetic_heads.head import SyntheticHead

CULL_COS = 0.5


def resolve_device(device: str) -> tuple[torch.device, Backend]:
    """``"auto" | "cpu" | "cuda"`` -> (torch device, render backend). ``"auto"`` picks CUDA + gsplat when both
    are usable, else the CPU; ``"cuda"`` raises ``ValueError`` with the reason when they are not."""
    from core.render_gsplat import gsplat_status

    if device == "cpu":
        return torch.device("cpu"), "torch"
    reason = gsplat_status()
    if device == "cuda" and reason is not None:
        raise ValueError(f"--device cuda: {reason}")
    if device not in ("auto", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {device!r}")
    return (torch.device("cuda"), "gsplat") if reason is None else (torch.device("cpu"), "torch")


def facing_mask(head: SyntheticHead, camera_centre: torch.Tensor) -> torch.Tensor:
    """``[N]`` bool: the Gaussians kept for a camera at ``camera_centre [3]`` (world)."""
    to_cam = camera_centre[None, :].to(head.normals.dtype) - head.gaussians.means
    facing = (head.normals * to_cam).sum(-1) > -CULL_COS * to_cam.norm(dim=-1)
    return facing | (head.normals.abs().sum(-1) == 0)


def render_views(head: SyntheticHead, cameras: Cameras, resolution: int, cull: bool = True,
                 background: tuple[float, float, float] = (1.0, 1.0, 1.0), device: str = "cpu"
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Render ``cameras`` (batch shape ``[C]``) at ``resolution`` x ``resolution``.

    ``device``: ``"cpu"`` (torch reference backend, the default), ``"cuda"`` (gsplat) or ``"auto"`` (see
    :func:`resolve_device`). Returns ``rgb [C, H, W, 3]`` uint8 (composited on ``background``) and
    ``alpha [C, H, W]`` uint8 (``round(255 * alpha)``), on the CPU.
    """
    if len(cameras.batch_shape) != 1:
        raise ValueError(f"cameras must have batch shape [C], got {list(cameras.batch_shape)}")
    dev, backend = resolve_device(device)
    gaussians = head.gaussians.to(dev)
    rgbs, alphas = [], []
    with torch.no_grad():
        for i in range(cameras.batch_shape[0]):
            cam = cameras[i]
            # The culling decision is made on the CPU, so both devices drop exactly the same discs.
            gs = gaussians.select(facing_mask(head, cam.centers).to(dev)) if cull else gaussians
            out = render(gs, cam.to(dev), resolution, resolution, background=list(background), mode="rgb",
                         backend=backend)
            rgbs.append(to_uint8(out.color))
            alphas.append(to_uint8(out.alpha[..., 0]))
    return np.stack(rgbs), np.stack(alphas)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """[0, 1] floats -> uint8 with rounding (values outside are clipped)."""
    return (x.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).cpu().numpy()
