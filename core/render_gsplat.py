"""The gsplat backend (CUDA only). gsplat is imported lazily, on first use, never at ``import core``."""

from __future__ import annotations

import functools

import torch

from core.render_torch import EPS2D, FAR_PLANE, NEAR_PLANE

TILE = 16  # gsplat tile size (its default)


@functools.lru_cache(maxsize=1)
def gsplat_status() -> str | None:
    """``None`` if gsplat can render here, else a sentence saying why not (cached)."""
    if not torch.cuda.is_available():
        return "gsplat renders only on CUDA and this torch has no CUDA device"
    try:
        import gsplat  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install
        return f"gsplat is not importable ({type(exc).__name__}: {exc}); install it with `pip install gsplat==1.5.3 packaging`"
    return None


def render_gsplat(
    means: torch.Tensor,
    quats: torch.Tensor,
    scales: torch.Tensor,
    opacities: torch.Tensor,
    sh: torch.Tensor,
    viewmats: torch.Tensor,
    Ks: torch.Tensor,
    width: int,
    height: int,
    with_depth: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Render S scenes, each from its own C cameras, with ``gsplat.rasterization`` ("classic" mode).

    Args:
        means ``[S, N, 3]``, quats ``[S, N, 4]``, scales ``[S, N, 3]`` (activated), opacities ``[S, N]``
        (activated), sh ``[S, N, K, 3]``, viewmats ``[S, C, 4, 4]`` world-to-camera (OpenCV), Ks
        ``[S, C, 3, 3]`` pixel intrinsics. All float32 on one CUDA device.

    Returns:
        ``rgb [S, C, H, W, 3]`` without background, ``alpha [S, C, H, W, 1]``, expected depth
        ``[S, C, H, W, 1]`` (0 where nothing was drawn) or ``None``.
    """
    reason = gsplat_status()
    if reason is not None:
        raise RuntimeError(reason)
    if means.dtype != torch.float32:
        raise TypeError(f"the gsplat backend needs float32 tensors, got {means.dtype}; use backend='torch'")
    from gsplat import rasterization

    degree = {1: 0, 4: 1, 9: 2, 16: 3}[sh.shape[-2]]
    c = lambda t: t.contiguous()  # noqa: E731  (generator outputs are views of one packed tensor)
    colors, alphas, _ = rasterization(
        c(means), c(quats), c(scales), c(opacities), c(sh), c(viewmats), c(Ks), width, height,
        near_plane=NEAR_PLANE, far_plane=FAR_PLANE, eps2d=EPS2D, sh_degree=degree, packed=False,
        tile_size=TILE, render_mode="RGB+ED" if with_depth else "RGB", rasterize_mode="classic",
    )
    depth = colors[..., 3:4] if with_depth else None
    if depth is not None:
        depth = torch.where(alphas > 0, depth, torch.zeros_like(depth))
    return colors[..., :3], alphas, depth
