"""Camera estimate for an aligned photo: PnP of its five landmarks against the framing's mean head.

Unknowns: the world-to-camera rotation (axis-angle, 3) and translation (3); the intrinsics are the framing's
(normalised focal, principal point at the image centre), as in the model's training images. Solved with
Levenberg-Marquardt in float64 from several starting yaws (-60 ... 60 deg), keeping the best fit; the
error is small for any head turn up to about 60 deg. With five points there are ten equations for six
unknowns; the distance is the least certain part (narrow field of view).

:meth:`CameraEstimate.orbit` snaps the estimate onto the training cameras' sphere (look at the framing
target from its radius, no roll), keeping the viewing direction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from core.camera import Cameras, normalized_intrinsics, orbit_angles, orbit_cameras
from inversion.framing import FaceFraming

CameraModel = Literal["pnp", "orbit"]
START_YAWS_DEG = (0.0, -30.0, 30.0, -60.0, 60.0)


@dataclass(frozen=True, eq=False)
class CameraEstimate:
    """A camera for one aligned photo.

    Attributes:
        camera: :class:`core.camera.Cameras` with batch shape ``[]``, float32, OpenCV axes, normalised intrinsics.
        yaw_deg, pitch_deg: the camera centre's orbit angles about the framing target (core/camera.py).
        rms_px_norm: root-mean-square landmark reprojection error, in units of the image side.
    """

    camera: Cameras
    yaw_deg: float
    pitch_deg: float
    rms_px_norm: float

    def orbit(self, framing: FaceFraming) -> CameraEstimate:
        """The training-sphere camera with the same yaw and pitch (radius and target from ``framing``)."""
        cam = orbit_cameras(math.radians(self.yaw_deg), math.radians(self.pitch_deg), framing.radius,
                            framing.target, framing.focal)
        return CameraEstimate(cam, self.yaw_deg, self.pitch_deg, float("nan"))


def skew(r: torch.Tensor) -> torch.Tensor:
    """``[..., 3]`` -> ``[..., 3, 3]`` cross-product matrices."""
    x, y, z = r.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack([o, -z, y, z, o, -x, -y, x, o], -1).reshape(r.shape[:-1] + (3, 3))


def _rodrigues_closed(r: torch.Tensor) -> torch.Tensor:
    """Closed-form Rodrigues for one ``[3]`` vector away from 0 (fast under autograd's jacobian)."""
    theta = torch.sqrt((r * r).sum() + 1e-24)
    K = skew(r / theta)
    return torch.eye(3, dtype=r.dtype) + torch.sin(theta) * K + (1 - torch.cos(theta)) * (K @ K)


def axis_angle(R: torch.Tensor) -> torch.Tensor:
    """Rotation ``[3, 3]`` -> axis-angle ``[3]`` (angles below pi)."""
    cos = ((torch.trace(R) - 1) / 2).clamp(-1.0, 1.0)
    theta = torch.acos(cos)
    if theta < 1e-8:
        return torch.zeros(3, dtype=R.dtype)
    if theta > math.pi - 1e-4:  # near a half turn the antisymmetric part vanishes: axis from the diagonal
        k = torch.sqrt(((torch.diagonal(R) + 1) / 2).clamp(min=0))
        i = int(torch.argmax(k))
        k = torch.stack([k[j] if j == i else k[j] * torch.sign(R[i, j] + R[j, i]) for j in range(3)])
        return k / k.norm() * theta
    v = torch.stack([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    return v / (2 * torch.sin(theta)) * theta


def _residual(params: torch.Tensor, X: torch.Tensor, uv: torch.Tensor, focal: float) -> torch.Tensor:
    R = _rodrigues_closed(params[:3])
    pc = X @ R.T + params[3:]
    proj = focal * pc[:, :2] / pc[:, 2:3].clamp(min=1e-6) + 0.5
    return (proj - uv).reshape(-1)


def _solve(x0: torch.Tensor, X: torch.Tensor, uv: torch.Tensor, focal: float, iterations: int = 50
           ) -> tuple[torch.Tensor, float]:
    p, lam = x0.clone(), 1e-3
    err = float((_residual(p, X, uv, focal) ** 2).sum())
    for _ in range(iterations):
        J = torch.autograd.functional.jacobian(lambda q: _residual(q, X, uv, focal), p)
        r = _residual(p, X, uv, focal)
        H = J.T @ J
        g = J.T @ r
        step = torch.linalg.solve(H + lam * torch.diag(torch.diag(H) + 1e-12), -g)
        cand = p + step
        cerr = float((_residual(cand, X, uv, focal) ** 2).sum())
        if cerr < err:
            p, err, lam = cand, cerr, max(lam / 3, 1e-9)
            if float(step.abs().max()) < 1e-10 or err < 1e-24:
                break
        else:
            lam *= 4
            if lam > 1e8:
                break
    return p, err


def estimate_camera(landmarks_norm: np.ndarray, framing: FaceFraming) -> CameraEstimate:
    """PnP for one aligned photo.

    Args:
        landmarks_norm: ``[5, 2]`` landmarks in the aligned image, normalised to [0, 1] (x right, y down).
        framing: the model's framing (3D mean-head landmarks, focal, radius).
    """
    uv = torch.as_tensor(np.asarray(landmarks_norm, dtype=np.float64))
    if uv.shape != (5, 2) or not torch.isfinite(uv).all():
        raise ValueError(f"landmarks must be five finite (x, y) points, got shape {list(uv.shape)}")
    X = torch.as_tensor(framing.points())
    best = None
    for yaw in START_YAWS_DEG:
        cam = orbit_cameras(math.radians(yaw), 0.0, framing.radius, framing.target, framing.focal,
                            dtype=torch.float64)
        w2c = cam.world_to_camera()
        x0 = torch.cat([axis_angle(w2c[:3, :3]), w2c[:3, 3]])
        p, err = _solve(x0, X, uv, framing.focal)
        if best is None or err < best[1]:
            best = (p, err)
    p, err = best
    R = _rodrigues_closed(p[:3])
    c2w = torch.eye(4, dtype=torch.float64)
    c2w[:3, :3] = R.T
    c2w[:3, 3] = -R.T @ p[3:]
    camera = Cameras(c2w.float(), normalized_intrinsics(framing.focal))
    yaw, pitch, _ = orbit_angles(Cameras(c2w, normalized_intrinsics(framing.focal, dtype=torch.float64)),
                                 torch.tensor(framing.target, dtype=torch.float64))
    return CameraEstimate(camera, math.degrees(float(yaw)), math.degrees(float(pitch)), math.sqrt(err / 5))


def view_angle_error_deg(a: Cameras, b: Cameras, target: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> float:
    """Angle in degrees between the directions from ``target`` to the two camera centres (batch ``[]``)."""
    t = torch.tensor(target, dtype=torch.float64)
    da = torch.nn.functional.normalize(a.centers.double() - t, dim=-1)
    db = torch.nn.functional.normalize(b.centers.double() - t, dim=-1)
    return math.degrees(float(torch.acos((da * db).sum().clamp(-1.0, 1.0))))

