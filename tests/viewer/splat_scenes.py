"""Scenes and comparisons shared by the splat renderer tests (test_gl_splats.py, test_cpu_splats.py)."""

from __future__ import annotations

import numpy as np
import torch

SIZE = 128  # image side (px) of the reference comparisons
MIN_PSNR = 60.0  # dB against the reference that both splat renderers are held to on REFERENCE_CASES


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def random_scene(n: int, seed: int, sh_degree: int = 0):
    from core.gaussians import GaussianSet

    g = torch.Generator().manual_seed(seed)
    k = (sh_degree + 1) ** 2
    sh = torch.randn(n, k, 3, generator=g) * 0.8
    sh[:, 1:] *= 0.3
    return GaussianSet(
        means=(torch.rand(n, 3, generator=g) - 0.5) * 0.8,
        quats=torch.randn(n, 4, generator=g),
        log_scales=torch.rand(n, 3, generator=g) * 2.5 - 5.0,
        opacity_logits=torch.randn(n, generator=g) * 2.0,
        sh=sh,
    )


def needle_scene(n: int, seed: int):
    """Thin splats, one axis 5-50x the others (tens to hundreds of pixels long): where a box computed from a
    float32 determinant would fall short of the ellipse the shader evaluates."""
    from core.gaussians import GaussianSet

    g = torch.Generator().manual_seed(seed)
    log_scales = torch.rand(n, 3, generator=g) - 6.0
    log_scales[:, 0] = torch.rand(n, generator=g) * 2.5 - 4.0
    return GaussianSet(means=(torch.rand(n, 3, generator=g) - 0.5) * 0.8,
                       quats=torch.randn(n, 4, generator=g), log_scales=log_scales,
                       opacity_logits=torch.randn(n, generator=g) * 2.0 + 2.0,
                       sh=torch.randn(n, 1, 3, generator=g) * 0.8)


def tiny_generator_scene():
    from core.generator import PRESETS, Generator

    torch.manual_seed(0)
    gen = Generator(PRESETS["tiny"]).eval()
    with torch.no_grad():
        out = gen(torch.randn(1, gen.config.z_dim))
    return out.gaussians.map(lambda t: t[0])  # batch [1] -> one scene


def reference_uint8(gaussians, camera, background) -> np.ndarray:
    from core.render import render
    from viewer.viewport.splats import to_uint8

    out = render(gaussians, camera, SIZE, SIZE, background=list(background), mode="rgb", backend="torch")
    return to_uint8(out.color.numpy())


# The scenes both splat renderers are compared on: (name, scene factory, background); cameras:
# reference_camera.
REFERENCE_CASES = [
    ("random", lambda: random_scene(300, 1), (1.0, 1.0, 1.0)),
    ("random_sh2", lambda: random_scene(300, 2, sh_degree=2), (0.1, 0.2, 0.3)),
    ("tiny_generator", tiny_generator_scene, (1.0, 1.0, 1.0)),
    ("needles", lambda: needle_scene(400, 7), (1.0, 1.0, 1.0)),
]


def reference_camera(name: str):
    """The camera of reference case ``name`` (``core.camera.Cameras``, batch shape [])."""
    from core.camera import default_camera, orbit_cameras

    return orbit_cameras(0.4, 0.2, 2.7) if name == "random_sh2" else default_camera()


def pixel_camera(camera, width: int, height: int):
    """``(view [4, 4] float64, (fx, fy, cx, cy) px)`` of a ``core.camera.Cameras`` with batch shape []."""
    K = camera.pixel_intrinsics(width, height)
    fx, fy, cx, cy = (float(K[i, j]) for i, j in ((0, 0), (1, 1), (0, 2), (1, 2)))
    return camera.world_to_camera().double().numpy(), (fx, fy, cx, cy)
