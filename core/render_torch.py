"""The reference rasterizer: differentiable, pure PyTorch, runs on any device (the CPU backend).

It follows the 3DGS / gsplat "classic" rasterizer rule for rule, so the two backends give the same image:

1. Projection (EWA): world covariance ``R S S^T R^T`` -> camera -> ``J Sigma J^T`` with the Jacobian of the
   perspective map at the centre, whose x/z and y/z are clamped to 1.3x the field of view; then
   ``+ eps2d * I`` (0.3 px^2, the 3DGS low-pass filter). Gaussians with depth outside [near, far], a
   non-positive 2D determinant or opacity below 1/255 are dropped.
2. Footprint: an axis-aligned box of half-size ``ceil(extend * sqrt(Sigma_xx))`` x ``ceil(extend *
   sqrt(Sigma_yy))`` px with ``extend = min(3.33, sqrt(2 ln(255 * opacity)))`` (opacity-aware bound).
   gsplat considers the Gaussian for every pixel of every 16x16 tile the box touches; outside the box its
   alpha is below 1/255 and skipped anyway, so evaluating any block grid that covers the box (here 4x4
   blocks, far fewer wasted pixels on the CPU) gives the same image.
3. Compositing, per pixel, front to back in order of camera-space depth z:
   ``alpha = min(0.999, o * exp(-0.5 d^T Sigma^-1 d))`` (skipped below 1/255),
   ``colour += alpha * T * c``, ``T *= 1 - alpha``, stopping (exclusively) once T would drop to 1e-4 or below.
   Pixel centres are at (i + 0.5, j + 0.5).

Instead of a per-pixel loop it works on (Gaussian, block) pairs: every pair is evaluated densely on the
block's pixels, pairs are sorted by (block, depth), transmittance is a segmented exclusive cumulative sum
of ``log(1 - alpha)`` (in float64), and contributions are summed per block with ``index_add``. Work is
proportional to the number of pairs, not to Gaussians x pixels, and chunked to bound memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from core.sh import sh_to_rgb

NEAR_PLANE = 0.01
FAR_PLANE = 1e10
EPS2D = 0.3
ALPHA_THRESHOLD = 1.0 / 255.0
MAX_ALPHA = 0.999
MIN_TRANSMITTANCE = 1e-4
MAX_EXTEND = 3.33
BLOCK = 4  # pixel-block edge; any size gives the same image (see module docstring), 4 is fastest on CPU
CHUNK_ELEMENTS = 1 << 23  # pair-pixels evaluated at once (~32 MB per float32 temporary)


@dataclass(frozen=True)
class Splats2D:
    """Gaussians projected into images, only those that can be seen (V of them).

    Attributes:
        image: ``[V]`` long, which image (flattened scene x camera index) each splat belongs to.
        gid: ``[V]`` long, index of the Gaussian in its scene.
        mean2d: ``[V, 2]`` pixel coordinates (x right, y down) of the centre.
        conic: ``[V, 3]`` inverse 2D covariance ``(a, b, c)`` of ``[[a, b], [b, c]]``, px^-2.
        depth: ``[V]`` camera-space z.
        opacity: ``[V]`` activated opacity.
        radius: ``[V, 2]`` long, half-size of the footprint box in px (x, y).
    """

    image: torch.Tensor
    gid: torch.Tensor
    mean2d: torch.Tensor
    conic: torch.Tensor
    depth: torch.Tensor
    opacity: torch.Tensor
    radius: torch.Tensor


def quat_scale_to_covar(quats: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """``[..., 4]`` quaternions (w, x, y, z; normalised here) and ``[..., 3]`` std-devs -> ``[..., 3, 3]``."""
    w, x, y, z = torch.nn.functional.normalize(quats, dim=-1).unbind(-1)
    R = torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(quats.shape[:-1] + (3, 3))
    M = R * scales[..., None, :]
    return M @ M.transpose(-1, -2)


def project(
    means: torch.Tensor,
    quats: torch.Tensor,
    scales: torch.Tensor,
    opacities: torch.Tensor,
    scene_of_image: torch.Tensor,
    viewmats: torch.Tensor,
    Ks: torch.Tensor,
    width: int,
    height: int,
    near: float = NEAR_PLANE,
    far: float = FAR_PLANE,
    eps2d: float = EPS2D,
) -> Splats2D:
    """Project S scenes into I images.

    Args:
        means, quats, scales, opacities: ``[S, N, 3]``, ``[S, N, 4]``, ``[S, N, 3]`` (activated std-devs),
            ``[S, N]`` (activated).
        scene_of_image: ``[I]`` long, the scene drawn in each image.
        viewmats: ``[I, 4, 4]`` world-to-camera, OpenCV axes. Ks: ``[I, 3, 3]`` pixel intrinsics.
    """
    R = viewmats[:, :3, :3]
    t = viewmats[:, :3, 3]
    means_c = torch.einsum("iab,inb->ina", R, means[scene_of_image]) + t[:, None, :]  # [I, N, 3]
    z_all = means_c[..., 2]
    keep = ((z_all >= near) & (z_all <= far)).detach()
    image, gid = keep.nonzero(as_tuple=True)  # select before dividing by z: no NaN gradients
    scene = scene_of_image[image]
    mc = means_c[image, gid]  # [V, 3]
    Rv = R[image]
    cov_c = Rv @ quat_scale_to_covar(quats[scene, gid], scales[scene, gid]) @ Rv.transpose(-1, -2)
    K = Ks[image]
    fx, fy, cx, cy = K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2]
    x, y, z = mc.unbind(-1)
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    tx = z * torch.minimum(torch.maximum(x / z, -(cx / fx + 0.3 * tan_x)), (width - cx) / fx + 0.3 * tan_x)
    ty = z * torch.minimum(torch.maximum(y / z, -(cy / fy + 0.3 * tan_y)), (height - cy) / fy + 0.3 * tan_y)
    zeros = torch.zeros_like(z)
    J = torch.stack([fx / z, zeros, -fx * tx / (z * z), zeros, fy / z, -fy * ty / (z * z)], -1).reshape(-1, 2, 3)
    cov2d = J @ cov_c @ J.transpose(-1, -2)
    a = cov2d[:, 0, 0] + eps2d
    b = cov2d[:, 0, 1]
    c = cov2d[:, 1, 1] + eps2d
    det = a * c - b * b
    mean2d = torch.stack([fx * x / z + cx, fy * y / z + cy], dim=-1)
    opacity = opacities[scene, gid]
    with torch.no_grad():
        extend = torch.sqrt(2.0 * torch.log(opacity.clamp_min(ALPHA_THRESHOLD) / ALPHA_THRESHOLD)).clamp(max=MAX_EXTEND)
        radius = torch.stack([torch.ceil(extend * a.clamp_min(0).sqrt()), torch.ceil(extend * c.clamp_min(0).sqrt())], -1)
        ok = (det > 0) & (opacity >= ALPHA_THRESHOLD) & (radius > 0).any(-1)
        ok &= (mean2d[:, 0] + radius[:, 0] > 0) & (mean2d[:, 0] - radius[:, 0] < width)
        ok &= (mean2d[:, 1] + radius[:, 1] > 0) & (mean2d[:, 1] - radius[:, 1] < height)
        sel = ok.nonzero(as_tuple=True)[0]
    a, b, c, det = a[sel], b[sel], c[sel], det[sel]
    conic = torch.stack([c / det, -b / det, a / det], dim=-1)
    return Splats2D(image[sel], gid[sel], mean2d[sel], conic, z[sel], opacity[sel], radius[sel].long())


def _block_pairs(splats: Splats2D, width: int, height: int, block: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(Gaussian, block) intersections sorted by (image, block, depth).

    Returns ``(splat_index [M], global_block [M], blocks_per_image)``; ``global_tile = image * T + ty * tw + tx``.
    """
    tw, th = math.ceil(width / block), math.ceil(height / block)
    m = splats.mean2d.detach() / block
    r = splats.radius.to(m.dtype) / block
    x0 = torch.floor(m[:, 0] - r[:, 0]).clamp(0, tw).long()
    x1 = torch.ceil(m[:, 0] + r[:, 0]).clamp(0, tw).long()
    y0 = torch.floor(m[:, 1] - r[:, 1]).clamp(0, th).long()
    y1 = torch.ceil(m[:, 1] + r[:, 1]).clamp(0, th).long()
    nx = x1 - x0
    counts = nx * (y1 - y0)
    order = torch.argsort(splats.depth.detach(), stable=True)
    counts_o = counts[order]
    sid = torch.repeat_interleave(order, counts_o)
    start = torch.cumsum(counts_o, 0) - counts_o
    local = torch.arange(sid.numel(), device=sid.device) - torch.repeat_interleave(start, counts_o)
    nxs = nx[sid]
    blocks = (y0[sid] + local // nxs) * tw + x0[sid] + local % nxs
    key = splats.image[sid] * (tw * th) + blocks
    key, perm = torch.sort(key, stable=True)  # stable: depth order kept inside each block
    return sid[perm], key, tw * th


def rasterize(
    splats: Splats2D,
    colors: torch.Tensor,
    num_images: int,
    width: int,
    height: int,
    with_depth: bool = True,
    block: int = BLOCK,
    chunk_elements: int = CHUNK_ELEMENTS,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Composite projected splats.

    Args:
        splats: from :func:`project` (V splats).
        colors: ``[V, 3]`` RGB of each splat.
    Returns:
        ``rgb [I, H, W, 3]`` (no background), ``alpha [I, H, W, 1]``, and ``depth [I, H, W, 1]``
        (alpha-weighted sum of z, not yet divided by alpha) or ``None``.
    """
    sid, key, blocks_per_image = _block_pairs(splats, width, height, block)
    ones = torch.ones_like(colors[:, :1])  # accumulates alpha
    feats = torch.cat([colors, splats.depth[:, None], ones] if with_depth else [colors, ones], -1)
    nch = feats.shape[-1]
    P = block * block
    total_blocks = num_images * blocks_per_image
    ar = torch.arange(block, device=colors.device, dtype=colors.dtype) + 0.5
    out = torch.zeros(total_blocks, P, nch, device=colors.device, dtype=colors.dtype)
    # Chunk boundaries must fall between blocks: split the sorted pairs where the block key changes.
    bounds = _chunk_bounds(key, max(1, chunk_elements // P))
    tw = math.ceil(width / block)
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        s, k = sid[lo:hi], key[lo:hi]
        t_local = k % blocks_per_image
        px = (t_local % tw * block).to(colors.dtype)
        py = (t_local // tw * block).to(colors.dtype)
        dx = px[:, None] + ar - splats.mean2d[s, 0:1]  # [M, block]
        dy = py[:, None] + ar - splats.mean2d[s, 1:2]
        ca, cb, cc = splats.conic[s].unbind(-1)
        sigma = (
            (0.5 * ca[:, None, None]) * (dx * dx)[:, None, :]
            + (0.5 * cc[:, None, None]) * (dy * dy)[:, :, None]
            + cb[:, None, None] * dy[:, :, None] * dx[:, None, :]
        ).reshape(-1, P)  # [M, P], pixel index = row * block + col
        alpha = (splats.opacity[s, None] * torch.exp(-sigma)).clamp(max=MAX_ALPHA)
        alpha = torch.where((sigma >= 0) & (alpha >= ALPHA_THRESHOLD), alpha, torch.zeros_like(alpha))
        log1m = torch.log1p(-alpha)
        csum = torch.cumsum(log1m, 0, dtype=torch.float64)  # float64: the running sum spans many blocks
        # Segmented cumsum: subtract the running total at the end of the previous block.
        first = torch.ones_like(k, dtype=torch.bool)
        first[1:] = k[1:] != k[:-1]
        seg_start = torch.cummax(torch.where(first, torch.arange(k.numel(), device=k.device), 0), 0).values
        base = torch.cat([csum.new_zeros(1, P), csum])[seg_start]
        t_after = torch.exp((csum - base).to(alpha.dtype))  # transmittance after this splat
        weight = torch.where(t_after > MIN_TRANSMITTANCE, alpha * (t_after / (1.0 - alpha)), torch.zeros_like(alpha))
        contrib = weight[..., None] * feats[s][:, None, :]  # [M, P, nch]
        out = out.index_add(0, k, contrib)
    img = out.reshape(num_images, -1, tw, block, block, nch).permute(0, 1, 3, 2, 4, 5)
    img = img.reshape(num_images, img.shape[1] * block, tw * block, nch)[:, :height, :width]
    rgb = img[..., :3]
    alpha = img[..., -1:]
    depth = img[..., 3:4] if with_depth else None
    return rgb, alpha, depth


def _chunk_bounds(key: torch.Tensor, max_pairs: int) -> list[int]:
    """Indices splitting sorted ``key`` into runs of about ``max_pairs`` pairs without splitting a block
    (a single block with more pairs than that becomes a chunk of its own)."""
    n = key.numel()
    if n <= max_pairs:
        return [0, n]
    first = torch.ones(n, dtype=torch.bool, device=key.device)
    first[1:] = key[1:] != key[:-1]
    starts = first.nonzero(as_tuple=True)[0].tolist() + [n]
    bounds, prev = [0], 0
    for s in starts[1:]:
        if s - bounds[-1] > max_pairs:
            bounds.append(prev if prev > bounds[-1] else s)
        prev = s
    if bounds[-1] != n:
        bounds.append(n)
    return bounds


def render_torch(
    means: torch.Tensor,
    quats: torch.Tensor,
    scales: torch.Tensor,
    opacities: torch.Tensor,
    sh: torch.Tensor,
    scene_of_image: torch.Tensor,
    viewmats: torch.Tensor,
    Ks: torch.Tensor,
    width: int,
    height: int,
    with_depth: bool = True,
    block: int = BLOCK,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Render S scenes into I images; activated inputs (``scales``, ``opacities``), ``sh [S, N, K, 3]``.

    Returns ``rgb [I, H, W, 3]``, ``alpha [I, H, W, 1]``, ``depth_sum [I, H, W, 1] | None`` (see
    :func:`rasterize`); the caller adds the background and normalises depth.
    """
    splats = project(means, quats, scales, opacities, scene_of_image, viewmats, Ks, width, height)
    scene = scene_of_image[splats.image]
    sh_v = sh[scene, splats.gid]
    if sh.shape[-2] == 1:
        colors = sh_to_rgb(sh_v, None)
    else:
        campos = torch.linalg.inv(viewmats)[:, :3, 3]
        colors = sh_to_rgb(sh_v, means[scene, splats.gid] - campos[splats.image])
    return rasterize(splats, colors, viewmats.shape[0], width, height, with_depth, block)
