"""The reference rasterizer: differentiable, pure PyTorch, runs on any device (the CPU backend).

It follows the 3DGS / gsplat "classic" rasterizer rule for rule, so the two backends give the same image:

1. Projection (EWA): world covariance ``R_q S S^T R_q^T`` -> camera -> ``J Sigma J^T`` with the Jacobian of the
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


def quat_to_rotmat(quats: torch.Tensor) -> torch.Tensor:
    """``[..., 4]`` quaternions (w, x, y, z; normalised here) -> ``[..., 3, 3]`` rotation matrices."""
    w, x, y, z = torch.nn.functional.normalize(quats, dim=-1).unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(quats.shape[:-1] + (3, 3))


def _small_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[V, i, k] @ [V, k, j]`` by broadcasting; far faster than bmm for millions of tiny matrices on CPU."""
    return (a[..., :, :, None] * b[..., None, :, :]).sum(-2)


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
    K = Ks[image]
    fx, fy, cx, cy = K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2]
    x, y, z = mc.unbind(-1)
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    tx = z * torch.minimum(torch.maximum(x / z, -(cx / fx + 0.3 * tan_x)), (width - cx) / fx + 0.3 * tan_x)
    ty = z * torch.minimum(torch.maximum(y / z, -(cy / fy + 0.3 * tan_y)), (height - cy) / fy + 0.3 * tan_y)
    # Sigma_2d = T T^T with T = J R_cam R_q S: the Jacobian rows applied to the rotated, scaled axes.
    Rv = R[image]
    JR = torch.stack([(fx / z)[:, None] * Rv[:, 0] - (fx * tx / (z * z))[:, None] * Rv[:, 2],
                      (fy / z)[:, None] * Rv[:, 1] - (fy * ty / (z * z))[:, None] * Rv[:, 2]], dim=1)  # [V, 2, 3]
    T = _small_matmul(JR, quat_to_rotmat(quats[scene, gid]) * scales[scene, gid][:, None, :])
    cov2d = _small_matmul(T, T.transpose(-1, -2))
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


def _block_pairs(splats: Splats2D, width: int, height: int, block: int
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(splat, pixel block) intersections, sorted by (image, block, depth).

    Returns ``splat [M]`` (index into the splats), ``key [M]`` (``image * blocks_per_image + by * bw + bx``),
    and the block's pixel origin ``x0 [M]``, ``y0 [M]``.
    """
    bw, bh = math.ceil(width / block), math.ceil(height / block)
    m = splats.mean2d.detach() / block
    r = splats.radius.to(m.dtype) / block
    x0 = torch.floor(m[:, 0] - r[:, 0]).clamp(0, bw).long()
    x1 = torch.ceil(m[:, 0] + r[:, 0]).clamp(0, bw).long()
    y0 = torch.floor(m[:, 1] - r[:, 1]).clamp(0, bh).long()
    y1 = torch.ceil(m[:, 1] + r[:, 1]).clamp(0, bh).long()
    nx = x1 - x0
    counts = nx * (y1 - y0)
    order = torch.argsort(splats.depth.detach(), stable=True)
    counts_o = counts[order]
    sid = torch.repeat_interleave(order, counts_o)
    start = torch.cumsum(counts_o, 0) - counts_o
    local = torch.arange(sid.numel(), device=sid.device) - torch.repeat_interleave(start, counts_o)
    nxs = nx[sid]
    bx = x0[sid] + local % nxs
    by = y0[sid] + local // nxs
    # Drop blocks the ellipse cannot reach (the box's corners): over the block's pixel centres,
    # sigma >= lambda_min(conic) * d^2 / 2 with d the Euclidean distance from the centre to that rectangle.
    # If even that bound puts alpha below 1/255 (with a safety margin) every pixel would be skipped anyway.
    a, b, c = splats.conic.detach().unbind(-1)
    lam_min = (0.5 * (a + c) - torch.sqrt((0.25 * (a - c) ** 2 + b * b))).clamp_min(0.0)
    mx, my = splats.mean2d.detach()[sid].unbind(-1)
    lo_x, lo_y = bx * block + 0.5, by * block + 0.5
    ddx = torch.clamp(torch.maximum(lo_x - mx, mx - (lo_x + block - 1)), min=0.0)
    ddy = torch.clamp(torch.maximum(lo_y - my, my - (lo_y + block - 1)), min=0.0)
    max_alpha = splats.opacity.detach()[sid] * torch.exp(-0.5 * lam_min[sid] * (ddx * ddx + ddy * ddy))
    reach = (max_alpha >= 0.5 * ALPHA_THRESHOLD).nonzero(as_tuple=True)[0]
    sid, bx, by = sid[reach], bx[reach], by[reach]
    key = (splats.image[sid] * bh + by) * bw + bx
    key, perm = torch.sort(key, stable=True)  # stable: depth order kept inside each block
    return sid[perm], key, bx[perm] * block, by[perm] * block


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
    sid, key, x0, y0 = _block_pairs(splats, width, height, block)
    dtype, device = colors.dtype, colors.device
    ones = torch.ones_like(colors[:, :1])  # accumulates alpha
    # One table per splat, gathered once per pair: mean (2), -conic/2 (3), opacity, colour, [depth], 1.
    table = torch.cat(
        [splats.mean2d, -0.5 * splats.conic[:, :1], -splats.conic[:, 1:2], -0.5 * splats.conic[:, 2:],
         splats.opacity[:, None], colors] + ([splats.depth[:, None]] if with_depth else []) + [ones], -1)
    nch = table.shape[-1] - 6
    P = block * block
    bw = math.ceil(width / block)
    ar = torch.arange(block, device=device, dtype=dtype) + 0.5
    out = torch.zeros(num_images * math.ceil(height / block) * bw, P, nch, device=device, dtype=dtype)
    # Chunk boundaries fall between blocks: each block's pairs are composited in one piece.
    bounds = _chunk_bounds(key, max(1, chunk_elements // P))
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        k = key[lo:hi]
        t = table[sid[lo:hi]]  # [M, 6 + nch]
        tc = t[:, :6].T  # [6, M]; per-pixel work below is pixel-major, [P, M], so sums along M are contiguous
        dx = (x0[None, lo:hi].to(dtype) + ar[:, None]) - tc[0]  # [block, M] pixel centre minus splat centre
        dy = (y0[None, lo:hi].to(dtype) + ar[:, None]) - tc[1]
        # -sigma = -(a dx^2 + 2 b dx dy + c dy^2) / 2, laid out [row (y), col (x), M]
        neg_sigma = (
            (tc[2] * dx * dx)[None, :, :] + (tc[4] * dy * dy)[:, None, :] + (tc[3] * dy)[:, None, :] * dx[None, :, :]
        ).reshape(P, -1)
        alpha = (tc[5] * torch.exp(neg_sigma)).clamp(max=MAX_ALPHA)
        alpha = torch.where((neg_sigma <= 0) & (alpha >= ALPHA_THRESHOLD), alpha, torch.zeros_like(alpha))
        log1m = torch.log1p(-alpha)
        # Segmented cumulative sum of log(1 - alpha) per block: a float64 running sum over the chunk minus
        # its value at the end of the previous block. That per-block offset is itself built as a cumulative
        # sum of jumps placed at block starts, which is cheaper than gathering it for every pair.
        csum = torch.cumsum(log1m, 1, dtype=torch.float64)
        first = torch.ones_like(k, dtype=torch.bool)
        first[1:] = k[1:] != k[:-1]
        starts = first.nonzero(as_tuple=True)[0]
        prev_end = csum[:, starts[1:] - 1]  # [P, blocks - 1] running total where each later block starts
        jumps = torch.diff(prev_end, dim=1, prepend=torch.zeros_like(prev_end[:, :1]))
        base = torch.zeros_like(csum).index_copy(1, starts[1:], jumps).cumsum(1)
        t_after = torch.exp((csum - base).to(dtype))  # transmittance after this splat
        weight = torch.where(t_after > MIN_TRANSMITTANCE, alpha * (t_after / (1.0 - alpha)), torch.zeros_like(alpha))
        out = out.index_add(0, k, weight.T[..., None] * t[:, None, 6:])  # [M, P, nch] summed per block
    img = out.reshape(num_images, -1, bw, block, block, nch).permute(0, 1, 3, 2, 4, 5)
    img = img.reshape(num_images, img.shape[1] * block, bw * block, nch)[:, :height, :width]
    return img[..., :3], img[..., -1:], img[..., 3:4] if with_depth else None


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
