"""Pinhole cameras in the EG3D / CGS-GAN conventions.

World space: +y up, the head centred at the origin, its face looking toward +z. The frontal default camera
sits at (0, 0, 2.7) and looks at the origin.

Camera space is OpenCV: x right, y down, z forward (into the scene). ``cam2world`` maps camera to world
coordinates; its columns are the camera's right, down and forward axes and its position.

The 25-number label (EG3D/CGS-GAN ``dataset.json``): ``label[0:16]`` = cam2world 4x4 row-major,
``label[16:25]`` = intrinsics 3x3 row-major *normalised by image size*: ``[[fx/W, 0, cx/W], [0, fy/H, cy/H],
[0, 0, 1]]``. The default normalised focal length 4.2647 is a field of view of about 13.37 degrees
(``fov = 2 atan(1 / (2 f))``).

Orbit angles (radians): ``yaw`` turns the camera about +y, positive toward +x (the subject's left side);
``pitch`` is the camera's elevation, positive above the target. (EG3D's LookAtPoseSampler uses
``h = pi/2 + yaw`` and a polar angle ``v``; its sampler maps v through ``arccos(1 - 2v/pi)``, which equals
``pi/2 - pitch`` only at v = pi/2.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from core.shapes import check_finite, check_tensor, check_trailing_shape

DEFAULT_RADIUS = 2.7
DEFAULT_FOCAL = 4.2647  # normalised by image size
LABEL_SIZE = 25


def fov_deg_from_focal(focal: float) -> float:
    """Field of view in degrees of a normalised focal length (same for x and y)."""
    return math.degrees(2.0 * math.atan(0.5 / focal))


def focal_from_fov_deg(fov_deg: float) -> float:
    """Normalised focal length of a field of view in degrees (0 < fov < 180)."""
    if not 0.0 < fov_deg < 180.0:
        raise ValueError(f"field of view must be in (0, 180) degrees, got {fov_deg}")
    return 0.5 / math.tan(math.radians(fov_deg) / 2.0)


def normalized_intrinsics(focal: float | torch.Tensor = DEFAULT_FOCAL, cx: float = 0.5, cy: float = 0.5,
                          dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``[..., 3, 3]`` intrinsics normalised by image size, fx = fy = ``focal`` (batched if ``focal`` is)."""
    f = torch.as_tensor(focal, dtype=dtype)
    K = torch.zeros(f.shape + (3, 3), dtype=dtype)
    K[..., 0, 0] = f
    K[..., 1, 1] = f
    K[..., 0, 2] = cx
    K[..., 1, 2] = cy
    K[..., 2, 2] = 1.0
    return K


@dataclass(frozen=True, eq=False)
class Cameras:
    """A batch of pinhole cameras, any leading shape ``[...]`` (``[C]`` for C views).

    Attributes:
        cam2world: ``[..., 4, 4]`` camera-to-world rigid transforms, OpenCV camera axes.
        intrinsics: ``[..., 3, 3]`` intrinsics normalised by image width/height (resolution-free).
    """

    cam2world: torch.Tensor
    intrinsics: torch.Tensor

    def __post_init__(self) -> None:
        check_tensor(self.cam2world, "cam2world")
        check_tensor(self.intrinsics, "intrinsics")
        check_trailing_shape(self.cam2world, (4, 4), "cam2world")
        check_trailing_shape(self.intrinsics, (3, 3), "intrinsics")
        if self.cam2world.shape[:-2] != self.intrinsics.shape[:-2]:
            raise ValueError(
                f"cam2world {list(self.cam2world.shape)} and intrinsics {list(self.intrinsics.shape)} "
                "must have the same leading shape"
            )

    # ------------------------------------------------------------------ labels

    @classmethod
    def from_label(cls, label: torch.Tensor, validate: bool = True, atol: float = 1e-3) -> Cameras:
        """Cameras from EG3D 25-number labels ``[..., 25]``. With ``validate`` the rotation must be
        orthonormal and the last row ``[0, 0, 0, 1]`` within ``atol``, else ``ValueError``."""
        label = torch.as_tensor(label)
        if not label.is_floating_point():
            label = label.float()
        check_trailing_shape(label, (LABEL_SIZE,), "camera label")
        cams = cls(label[..., :16].reshape(label.shape[:-1] + (4, 4)), label[..., 16:].reshape(label.shape[:-1] + (3, 3)))
        if validate:
            cams.validate(atol)
        return cams

    def to_label(self) -> torch.Tensor:
        """``[..., 25]`` EG3D labels (cam2world row-major, then normalised intrinsics row-major)."""
        lead = self.batch_shape
        return torch.cat([self.cam2world.reshape(lead + (16,)), self.intrinsics.reshape(lead + (9,))], dim=-1)

    def validate(self, atol: float = 1e-3) -> Cameras:
        """Raise ``ValueError`` unless the poses are finite rigid transforms and the intrinsics sensible."""
        check_finite(self.cam2world, "cam2world")
        check_finite(self.intrinsics, "intrinsics")
        R = self.cam2world[..., :3, :3].double()
        eye = torch.eye(3, dtype=R.dtype, device=R.device)
        err = (R.transpose(-1, -2) @ R - eye).abs().amax() if R.numel() else torch.tensor(0.0)
        if err > atol:
            raise ValueError(f"cam2world rotation is not orthonormal (max |R^T R - I| = {float(err):.3g})")
        if R.numel() and (torch.linalg.det(R) < 0).any():
            raise ValueError("cam2world rotation is a reflection (det < 0)")
        bottom = self.cam2world[..., 3, :].double()
        if (bottom - torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=bottom.dtype, device=bottom.device)).abs().amax() > atol if bottom.numel() else False:
            raise ValueError("cam2world last row must be [0, 0, 0, 1]")
        K = self.intrinsics.double()
        if K.numel() and ((K[..., 0, 0] <= 0) | (K[..., 1, 1] <= 0)).any():
            raise ValueError("intrinsics must have positive focal lengths")
        return self

    # ------------------------------------------------------------------ derived matrices

    @property
    def batch_shape(self) -> torch.Size:
        return self.cam2world.shape[:-2]

    @property
    def device(self) -> torch.device:
        return self.cam2world.device

    def __len__(self) -> int:
        if not self.batch_shape:
            raise TypeError("a single camera has no length")
        return self.batch_shape[0]

    def __getitem__(self, index) -> Cameras:
        return Cameras(self.cam2world[index], self.intrinsics[index])

    def to(self, *args, **kwargs) -> Cameras:
        return Cameras(self.cam2world.to(*args, **kwargs), self.intrinsics.to(*args, **kwargs))

    def reshape(self, *shape: int) -> Cameras:
        return Cameras(self.cam2world.reshape(*shape, 4, 4), self.intrinsics.reshape(*shape, 3, 3))

    def world_to_camera(self) -> torch.Tensor:
        """``[..., 4, 4]`` world-to-camera (view) matrices, OpenCV axes; the rigid inverse of cam2world."""
        R = self.cam2world[..., :3, :3]
        t = self.cam2world[..., :3, 3:]
        Rt = R.transpose(-1, -2)
        top = torch.cat([Rt, -Rt @ t], dim=-1)
        bottom = torch.zeros_like(self.cam2world[..., 3:, :])
        bottom[..., 3] = 1.0
        return torch.cat([top, bottom], dim=-2)

    def pixel_intrinsics(self, width: int, height: int) -> torch.Tensor:
        """``[..., 3, 3]`` intrinsics in pixels for a ``width`` x ``height`` image (pixel centres at +0.5)."""
        scale = torch.tensor([width, height, 1.0], dtype=self.intrinsics.dtype, device=self.intrinsics.device)
        return self.intrinsics * scale[:, None]

    @property
    def centers(self) -> torch.Tensor:
        """``[..., 3]`` camera positions in world space."""
        return self.cam2world[..., :3, 3]

    def fov_deg(self) -> torch.Tensor:
        """``[...]`` vertical field of view in degrees."""
        return torch.rad2deg(2.0 * torch.atan(0.5 / self.intrinsics[..., 1, 1]))

    def mirror_x(self) -> Cameras:
        """The cameras of the x-mirrored world (EG3D's x-flip augmentation): the image of the mirrored scene
        seen from the mirrored camera is the horizontally flipped image. Negates cam2world entries
        [0,1], [0,2], [1,0], [2,0], [0,3] and maps cx -> 1 - cx."""
        sign = torch.ones(4, 4, dtype=self.cam2world.dtype, device=self.device)
        for i, j in ((0, 1), (0, 2), (1, 0), (2, 0), (0, 3)):
            sign[i, j] = -1.0
        K = self.intrinsics.clone()
        K[..., 0, 2] = 1.0 - K[..., 0, 2]
        return Cameras(self.cam2world * sign, K)


def mirror_label(label: torch.Tensor) -> torch.Tensor:
    """``[..., 25]`` -> ``[..., 25]``: the label of the horizontally flipped image (see :meth:`Cameras.mirror_x`)."""
    return Cameras.from_label(label, validate=False).mirror_x().to_label()


def look_at(position: torch.Tensor, target: torch.Tensor, up: tuple[float, float, float] = (0.0, 1.0, 0.0)) -> torch.Tensor:
    """``[..., 4, 4]`` cam2world (OpenCV) for cameras at ``position [..., 3]`` looking at ``target [..., 3]``.

    ``up`` is the world's up direction; the camera's y axis (down in the image) is as close to ``-up`` as
    the view direction allows. Undefined when looking exactly along ``up``.
    """
    position, target = torch.broadcast_tensors(position, target)
    up_t = torch.tensor(up, dtype=position.dtype, device=position.device).expand_as(position)
    forward = torch.nn.functional.normalize(target - position, dim=-1)
    right = torch.nn.functional.normalize(torch.linalg.cross(forward, up_t, dim=-1), dim=-1)
    down = torch.linalg.cross(forward, right, dim=-1)
    c2w = torch.zeros(position.shape[:-1] + (4, 4), dtype=position.dtype, device=position.device)
    c2w[..., :3, 0] = right
    c2w[..., :3, 1] = down
    c2w[..., :3, 2] = forward
    c2w[..., :3, 3] = position
    c2w[..., 3, 3] = 1.0
    return c2w


def orbit_position(yaw: torch.Tensor, pitch: torch.Tensor, radius: torch.Tensor,
                   target: torch.Tensor) -> torch.Tensor:
    """``[..., 3]`` world position on the orbit sphere (angles in radians, see module docstring)."""
    yaw, pitch, radius = torch.broadcast_tensors(yaw, pitch, radius)
    offset = torch.stack(
        [torch.cos(pitch) * torch.sin(yaw), torch.sin(pitch), torch.cos(pitch) * torch.cos(yaw)], dim=-1
    )
    return target + radius[..., None] * offset


def orbit_cameras(
    yaw: float | torch.Tensor = 0.0,
    pitch: float | torch.Tensor = 0.0,
    radius: float | torch.Tensor = DEFAULT_RADIUS,
    target: tuple[float, float, float] | torch.Tensor = (0.0, 0.0, 0.0),
    focal: float | torch.Tensor = DEFAULT_FOCAL,
    dtype: torch.dtype = torch.float32,
) -> Cameras:
    """Look-at cameras on a sphere around ``target``; arguments broadcast to a common batch shape.

    Args:
        yaw: radians about +y, positive moves the camera toward +x. 0 is the frontal view from +z.
        pitch: radians of elevation, in (-pi/2, pi/2); positive looks down on the target from above.
        radius: distance to ``target`` in scene units (> 0).
        target: ``[3]`` or ``[..., 3]`` look-at point in world space.
        focal: normalised focal length (``focal_from_fov_deg`` converts from degrees).
    """
    yaw_t = torch.as_tensor(yaw, dtype=dtype)
    pitch_t = torch.as_tensor(pitch, dtype=dtype)
    radius_t = torch.as_tensor(radius, dtype=dtype)
    if (radius_t <= 0).any():
        raise ValueError("orbit radius must be positive")
    if (pitch_t.abs() >= math.pi / 2).any():
        raise ValueError("orbit pitch must be strictly between -90 and +90 degrees")
    target_t = torch.as_tensor(target, dtype=dtype)
    batch = torch.broadcast_shapes(yaw_t.shape, pitch_t.shape, radius_t.shape, target_t.shape[:-1],
                                   torch.as_tensor(focal).shape)
    position = orbit_position(yaw_t.expand(batch), pitch_t.expand(batch), radius_t.expand(batch), target_t)
    c2w = look_at(position.expand(batch + (3,)), target_t.expand(batch + (3,)))
    K = normalized_intrinsics(torch.as_tensor(focal, dtype=dtype).expand(batch), dtype=dtype)
    return Cameras(c2w, K)


def orbit_angles(cameras: Cameras, target: tuple[float, float, float] | torch.Tensor = (0.0, 0.0, 0.0)
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inverse of :func:`orbit_cameras` for the position: ``(yaw, pitch, radius)``, each ``[...]``, radians."""
    target_t = torch.as_tensor(target, dtype=cameras.cam2world.dtype, device=cameras.device)
    d = cameras.centers - target_t
    radius = d.norm(dim=-1)
    pitch = torch.asin((d[..., 1] / radius).clamp(-1.0, 1.0))
    yaw = torch.atan2(d[..., 0], d[..., 2])
    return yaw, pitch, radius


def default_camera(dtype: torch.dtype = torch.float32) -> Cameras:
    """The frontal reference camera: at (0, 0, 2.7), looking at the origin, focal 4.2647; batch shape ``[]``."""
    return orbit_cameras(0.0, 0.0, DEFAULT_RADIUS, (0.0, 0.0, 0.0), DEFAULT_FOCAL, dtype=dtype)
