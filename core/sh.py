"""Real spherical harmonics up to degree 3, in the basis and sign convention of 3DGS (and gsplat).

The colour of a Gaussian seen along unit direction ``d`` (from the camera centre toward the Gaussian) is
``max(0, 0.5 + sum_k Y_k(d) * sh_k)`` per channel.
"""

from __future__ import annotations

import torch

C0 = 0.28209479177387814  # 1 / (2 sqrt(pi)): the studio's one definition (core.gaussians.SH_C0 is this)
C1 = 0.4886025119029199
C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
C3 = (
    -0.5900435899266435,
    2.890611442640554,
    -0.4570457994644658,
    0.3731763325901154,
    -0.4570457994644658,
    1.445305721320277,
    -0.5900435899266435,
)


def sh_basis(dirs: torch.Tensor, degree: int) -> torch.Tensor:
    """``[..., 3]`` unit directions -> ``[..., (degree+1)^2]`` basis values."""
    x, y, z = dirs.unbind(-1)
    out = [torch.full_like(x, C0)]
    if degree >= 1:
        out += [-C1 * y, C1 * z, -C1 * x]
    if degree >= 2:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        out += [C2[0] * xy, C2[1] * yz, C2[2] * (2.0 * zz - xx - yy), C2[3] * xz, C2[4] * (xx - yy)]
    if degree >= 3:
        out += [
            C3[0] * y * (3.0 * xx - yy),
            C3[1] * xy * z,
            C3[2] * y * (4.0 * zz - xx - yy),
            C3[3] * z * (2.0 * zz - 3.0 * xx - 3.0 * yy),
            C3[4] * x * (4.0 * zz - xx - yy),
            C3[5] * z * (xx - yy),
            C3[6] * x * (xx - 3.0 * yy),
        ]
    return torch.stack(out, dim=-1)


def sh_to_rgb(sh: torch.Tensor, dirs: torch.Tensor | None) -> torch.Tensor:
    """Evaluate colours.

    Args:
        sh: ``[..., K, 3]`` coefficients (K = 1, 4, 9 or 16).
        dirs: ``[..., 3]`` view directions (need not be unit length), or ``None`` for degree 0.

    Returns:
        ``[..., 3]`` RGB, clamped at 0 (not above), as the 3DGS rasterizers do.
    """
    k = sh.shape[-2]
    if k == 1:
        return (C0 * sh[..., 0, :] + 0.5).clamp_min(0.0)
    if dirs is None:
        raise ValueError(f"SH degree > 0 ({k} coefficients) needs view directions")
    degree = {4: 1, 9: 2, 16: 3}[k]
    basis = sh_basis(torch.nn.functional.normalize(dirs, dim=-1), degree)  # [..., K]
    return ((basis[..., :, None] * sh).sum(-2) + 0.5).clamp_min(0.0)
