"""The OpenGL splat path's numpy side: one scene's plain arrays, and the per-frame projection of every Gaussian
exactly as ``core.render_torch.project`` does it (see :mod:`viewer.viewport.gl_splats` for the whole path).

No GL here, so all of it is testable without a context.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ui_state.render import CameraParams

ALPHA_THRESHOLD = 1.0 / 255.0  # the constants of core.render_torch
MAX_ALPHA = 0.999
MAX_EXTEND = 3.33
EPS2D = 0.3
NEAR_PLANE = 0.01
FAR_PLANE = 1e10
QUAD_MARGIN = 1.0 / 64.0  # px added to the exact box of alpha >= 1/255 (float rounding at its edge)
FLOATS_PER_SPLAT = 12  # vec4 (mean2d.xy, half-size.xy), vec4 (conic a, b, c, opacity), vec4 (rgb, -)


@dataclass(frozen=True, eq=False)
class SplatArrays:
    """One scene as plain float32 arrays for the OpenGL path (N Gaussians).

    Attributes:
        means: ``[N, 3]`` world-space centres. cov3d: ``[N, 6]`` world covariance ``(xx, xy, xz, yy, yz, zz)``
        in scene units^2 (scale already activated). opacity: ``[N]`` activated, in [0, 1].
        sh: ``[N, K, 3]`` SH coefficients (K = 1, 4, 9 or 16). colors: ``[N, 3]`` degree-0 RGB (``0.5 + C0 *
        sh[:, 0]``, clamped at 0), used as is when K == 1.
    """

    means: np.ndarray
    cov3d: np.ndarray
    opacity: np.ndarray
    sh: np.ndarray
    colors: np.ndarray

    def __len__(self) -> int:
        return int(self.means.shape[0])


def splat_arrays(gaussians) -> SplatArrays:
    """Plain arrays for one scene (``core.gaussians.GaussianSet`` with batch shape ``[]``, any device)."""
    import torch

    from core.gaussians import sh_dc_to_rgb
    from core.render_torch import quat_to_rotmat

    if gaussians.batch_shape != ():
        raise ValueError(f"one scene expected, got batch shape {list(gaussians.batch_shape)}")
    with torch.no_grad():
        g = gaussians.detach().to("cpu", torch.float32)
        M = quat_to_rotmat(g.quats) * g.scales()[:, None, :]  # R S, [N, 3, 3]
        cov = M @ M.transpose(1, 2)
        cov6 = torch.stack([cov[:, 0, 0], cov[:, 0, 1], cov[:, 0, 2], cov[:, 1, 1], cov[:, 1, 2], cov[:, 2, 2]], -1)
        colors = sh_dc_to_rgb(g.sh[:, 0, :]).clamp_min(0.0)
        return SplatArrays(g.means.numpy().copy(), cov6.numpy(), g.opacities().numpy().copy(),
                           g.sh.numpy().copy(), colors.numpy())


def check_size(width: int, height: int) -> None:
    """``ValueError`` unless ``width`` and ``height`` (px) are positive ints (both splat renderers draw only
    such images)."""
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        raise ValueError(f"width and height must be positive ints, got {width!r} x {height!r}")


def view_matrix(cam: CameraParams) -> np.ndarray:
    """``[4, 4]`` float64 world-to-camera (OpenCV axes) for ``cam``; matches ``viewer.viewport.requests.
    camera_from_params`` (``core.camera.look_at`` with world up +y)."""
    y, p = math.radians(cam.yaw_deg), math.radians(max(-89.9, min(89.9, cam.pitch_deg)))
    offset = np.array([math.cos(p) * math.sin(y), math.sin(p), math.cos(p) * math.cos(y)])
    if cam.mode == "orbit":
        target = np.asarray(cam.target, np.float64)
        position = target + cam.radius * offset
    else:
        position = np.asarray(cam.position, np.float64)
        target = position - offset
    forward = target - position
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    w2c = np.eye(4)
    w2c[0, :3], w2c[1, :3], w2c[2, :3] = right, down, forward
    w2c[:3, 3] = -w2c[:3, :3] @ position
    return w2c


def intrinsics(cam: CameraParams, width: int, height: int) -> tuple[float, float, float, float]:
    """``(fx, fy, cx, cy)`` in pixels: square pixels, ``fov_deg`` vertical, principal point at the centre."""
    f = 0.5 * height / math.tan(math.radians(cam.fov_deg) / 2.0)
    return f, f, 0.5 * width, 0.5 * height


def project(arrays: SplatArrays, view: np.ndarray, K: Sequence[float], width: int, height: int,
            splat_scale: float = 1.0) -> np.ndarray:
    """The visible splats of ``arrays`` for world-to-camera ``view [4, 4]`` and ``K = (fx, fy, cx, cy)``, as the
    instance buffer ``[V, 12]`` float32 sorted back to front: ``(mean2d.xy, half-size.xy + margin, conic a b c,
    opacity, rgb, 0)``. The maths (float32) of ``core.render_torch.project``."""
    f32 = np.float32
    R = np.asarray(view[:3, :3], f32)
    t = np.asarray(view[:3, 3], f32)
    fx, fy, cx, cy = (f32(k) for k in K)
    mc = arrays.means @ R.T + t
    z = mc[:, 2]
    keep = (z >= NEAR_PLANE) & (z <= FAR_PLANE) & (arrays.opacity >= ALPHA_THRESHOLD)
    idx = np.nonzero(keep)[0]
    mc, z = mc[idx], z[idx]
    x, y = mc[:, 0], mc[:, 1]
    tanx, tany = f32(0.5 * width) / fx, f32(0.5 * height) / fy
    tx = z * np.minimum(np.maximum(x / z, -(cx / fx + f32(0.3) * tanx)), (f32(width) - cx) / fx + f32(0.3) * tanx)
    ty = z * np.minimum(np.maximum(y / z, -(cy / fy + f32(0.3) * tany)), (f32(height) - cy) / fy + f32(0.3) * tany)
    # Rows of J R (J the EWA Jacobian, R the view rotation), then Sigma_2d = (J R) Sigma_3d (J R)^T.
    z2 = z * z
    j0 = (fx / z)[:, None] * R[0] - (fx * tx / z2)[:, None] * R[2]
    j1 = (fy / z)[:, None] * R[1] - (fy * ty / z2)[:, None] * R[2]
    c = arrays.cov3d[idx] * f32(splat_scale * splat_scale)
    xx, xy, xz, yy, yz, zz = (c[:, i] for i in range(6))

    def quad(u, v):  # u^T Sigma v for rows u, v
        return (u[:, 0] * (xx * v[:, 0] + xy * v[:, 1] + xz * v[:, 2])
                + u[:, 1] * (xy * v[:, 0] + yy * v[:, 1] + yz * v[:, 2])
                + u[:, 2] * (xz * v[:, 0] + yz * v[:, 1] + zz * v[:, 2]))

    a = quad(j0, j0) + f32(EPS2D)
    b = quad(j0, j1)
    cc = quad(j1, j1) + f32(EPS2D)
    det = a * cc - b * b
    mx, my = fx * x / z + cx, fy * y / z + cy
    op = arrays.opacity[idx]
    extend = np.minimum(np.sqrt(f32(2.0) * np.log(np.maximum(op, f32(ALPHA_THRESHOLD)) / f32(ALPHA_THRESHOLD))),
                        f32(MAX_EXTEND))
    rx = np.ceil(extend * np.sqrt(np.maximum(a, 0)))  # the reference's integer box, for culling as it does
    ry = np.ceil(extend * np.sqrt(np.maximum(cc, 0)))
    ok = (det > 0) & ((rx > 0) | (ry > 0))
    ok &= (mx + rx > 0) & (mx - rx < width) & (my + ry > 0) & (my - ry < height)
    sel = np.nonzero(ok)[0]
    order = sel[np.argsort(z[sel], kind="stable")[::-1]]  # back to front; ties as the reference, reversed
    out = np.empty((len(order), FLOATS_PER_SPLAT), f32)
    inv = f32(1.0) / det[order]
    out[:, 0], out[:, 1] = mx[order], my[order]
    out[:, 4], out[:, 5], out[:, 6] = cc[order] * inv, -b[order] * inv, a[order] * inv
    out[:, 7] = op[order]
    # The quad: the box of the ellipse where the shader's alpha (from the float32 conic just written) reaches
    # 1/255, its variances recomputed from that conic in float64 (det loses digits for needle-like splats).
    A, B, C = (out[:, i].astype(np.float64) for i in (4, 5, 6))
    det_conic = np.maximum(A * C - B * B, 1e-300)
    e64 = extend[order].astype(np.float64) * (1.0 + 2.0**-10)
    # (never larger than the reference's integer box + 1 px, which bounds a nearly singular float32 conic)
    out[:, 2] = np.minimum(e64 * np.sqrt(np.maximum(C / det_conic, 0.0)) + QUAD_MARGIN, rx[order] + 1.0)
    out[:, 3] = np.minimum(e64 * np.sqrt(np.maximum(A / det_conic, 0.0)) + QUAD_MARGIN, ry[order] + 1.0)
    gid = idx[order]
    if arrays.sh.shape[1] > 1:
        campos = -(view[:3, :3].T @ view[:3, 3])
        out[:, 8:11] = _sh_colors(arrays.sh[gid], arrays.means[gid] - campos.astype(f32))
    else:
        out[:, 8:11] = arrays.colors[gid]
    out[:, 11] = 0.0
    return out


def _sh_colors(sh: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """View-dependent RGB ``[N, 3]`` from SH ``[N, K, 3]`` and directions ``[N, 3]`` (``core.sh.sh_to_rgb``)."""
    import torch

    from core.sh import sh_to_rgb

    with torch.no_grad():
        return sh_to_rgb(torch.from_numpy(sh), torch.from_numpy(dirs.astype(np.float32))).numpy()


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """float RGB -> uint8 with ``round(clip(x, 0, 1) * 255)``; the conversion used for reference images."""
    return np.rint(np.clip(np.asarray(rgb, np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)
