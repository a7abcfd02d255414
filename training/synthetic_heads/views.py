"""Rendering synthetic heads into dataset images: one view at a time, optionally skipping hidden discs.

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
from core.render import render
from training.synthetic_heads.head import SyntheticHead

CULL_COS = 0.5


def facing_mask(head: SyntheticHead, camera_centre: torch.Tensor) -> torch.Tensor:
    """``[N]`` bool: the Gaussians kept for a camera at ``camera_centre [3]`` (world)."""
    to_cam = camera_centre[None, :].to(head.normals.dtype) - head.gaussians.means
    facing = (head.normals * to_cam).sum(-1) > -CULL_COS * to_cam.norm(dim=-1)
    return facing | (head.normals.abs().sum(-1) == 0)


def render_views(head: SyntheticHead, cameras: Cameras, resolution: int, cull: bool = True,
                 background: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """Render ``cameras`` (batch shape ``[C]``) at ``resolution`` x ``resolution`` with the torch backend.

    Returns ``rgb [C, H, W, 3]`` uint8 (composited on ``background``) and ``alpha [C, H, W]`` uint8
    (``round(255 * alpha)``).
    """
    if len(cameras.batch_shape) != 1:
        raise ValueError(f"cameras must have batch shape [C], got {list(cameras.batch_shape)}")
    rgbs, alphas = [], []
    with torch.no_grad():
        for i in range(cameras.batch_shape[0]):
            cam = cameras[i]
            gs = head.gaussians.select(facing_mask(head, cam.centers)) if cull else head.gaussians
            out = render(gs, cam, resolution, resolution, background=list(background), mode="rgb", backend="torch")
            rgbs.append(to_uint8(out.color))
            alphas.append(to_uint8(out.alpha[..., 0]))
    return np.stack(rgbs), np.stack(alphas)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """[0, 1] floats -> uint8 with rounding (values outside are clipped)."""
    return (x.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).numpy()
