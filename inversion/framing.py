"""How a model frames a face: the mean head's five landmarks in 3D and the camera its training images used.

A :class:`FaceFraming` is configuration data, one per family of models. From it follow

- the *template*: where the five landmarks fall in a frontal training image (:meth:`FaceFraming.template`),
  which the FFHQ-style alignment (:mod:`inversion.alignment`) maps every photo onto, and
- the 3D points that the camera estimate (:mod:`inversion.pose`) solves a PnP problem against.

Landmark order is MTCNN's, by *image* side: 0 image-left eye (the subject's right eye, world -x), 1 image-right
eye (subject's left, +x), 2 nose tip, 3 image-left mouth corner, 4 image-right mouth corner. World space is the
project's (core/camera.py): +y up, the face looking toward +z, head centred at the origin, scene units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.camera import DEFAULT_FOCAL, DEFAULT_RADIUS, Cameras, orbit_cameras

Point3 = tuple[float, float, float]


@dataclass(frozen=True)
class FaceFraming:
    """The framing of a model's training images.

    Attributes:
        name: short key (``"synthetic-heads"``, ``"ffhq-eg3d"``).
        landmarks: five ``(x, y, z)`` world points of the mean head, in the order of the module docstring.
        radius: distance of the frontal reference camera from ``target`` (scene units).
        focal: normalised focal length of the training cameras (fx / image width).
        target: the point the training cameras look at (world).
        note: where the numbers come from.
    """

    name: str
    landmarks: tuple[Point3, Point3, Point3, Point3, Point3]
    radius: float = DEFAULT_RADIUS
    focal: float = DEFAULT_FOCAL
    target: Point3 = (0.0, 0.0, 0.0)
    note: str = ""

    def __post_init__(self) -> None:
        pts = np.asarray(self.landmarks, dtype=np.float64)
        if pts.shape != (5, 3) or not np.isfinite(pts).all():
            raise ValueError(f"framing {self.name!r}: landmarks must be five finite (x, y, z) points")
        if not pts[0, 0] < pts[1, 0]:
            raise ValueError(f"framing {self.name!r}: landmark 0 (image-left eye) must have the smaller x")
        if self.radius <= 0 or self.focal <= 0:
            raise ValueError(f"framing {self.name!r}: radius and focal must be positive")

    def points(self) -> np.ndarray:
        """``[5, 3]`` float64 landmarks in world units."""
        return np.asarray(self.landmarks, dtype=np.float64)

    def reference_camera(self) -> Cameras:
        """The frontal training camera (batch shape ``[]``, float64)."""
        return orbit_cameras(0.0, 0.0, self.radius, self.target, self.focal, dtype=torch.float64)

    def template(self) -> np.ndarray:
        """``[5, 2]`` landmark positions in a frontal training image, normalised to [0, 1] (x right, y down;
        multiply by the resolution for pixels, pixel centres at +0.5)."""
        return project(self.points(), self.reference_camera())


def project(points: np.ndarray, camera: Cameras) -> np.ndarray:
    """``points [P, 3]`` world -> ``[P, 2]`` normalised image coordinates through one camera (batch ``[]``)."""
    w2c = camera.world_to_camera().double().numpy()
    K = camera.intrinsics.double().numpy()
    pc = points @ w2c[:3, :3].T + w2c[:3, 3]
    uv = pc @ K.T
    return uv[:, :2] / uv[:, 2:3]


# Measured on the procedural heads (training/synthetic_heads) by bench/synthetic_face_template.py: MTCNN's five
# landmarks on the frontal renders of the first 24 identities of seed 0 (23 detected), back-projected onto the
# depth of the matching head-model points (pupil fronts, nose tip, mouth corners); median, symmetrised. So PnP of
# MTCNN's landmarks is unbiased for these heads (the raw model points sit 5 mm lower at the eyes and 14 mm lower
# at the nose than where MTCNN puts them).
SYNTHETIC_HEADS = FaceFraming(
    name="synthetic-heads",
    landmarks=((-0.0532, 0.0209, 0.1194), (0.0532, 0.0209, 0.1194), (0.0, -0.0526, 0.1664),
               (-0.0426, -0.0945, 0.1223), (0.0426, -0.0945, 0.1223)),
    note="MTCNN landmarks on 23 frontal procedural-head renders, back-projected to model depths; world units",
)

# FFHQ as EG3D / CGS-GAN crop it (radius 2.7, focal 4.2647). Not measured from their data here: the synthetic
# mean head scaled by 1.18 so that the eyes are about a fifth of the image apart, as in EG3D's 512 px crops
# (approximate; calibrate per model by overriding the landmarks).
FFHQ_EG3D = FaceFraming(
    name="ffhq-eg3d",
    landmarks=tuple(tuple(round(1.18 * v, 4) for v in p)  # type: ignore[arg-type]
                    for p in SYNTHETIC_HEADS.landmarks),
    note="approximate: synthetic mean head x 1.18 (eyes ~0.2 of the image apart); not calibrated on FFHQ",
)

FRAMINGS: dict[str, FaceFraming] = {f.name: f for f in (SYNTHETIC_HEADS, FFHQ_EG3D)}


def get_framing(name: str) -> FaceFraming:
    """The framing called ``name``; ``ValueError`` listing the known names otherwise."""
    if name not in FRAMINGS:
        raise ValueError(f"unknown framing {name!r}; known: {', '.join(sorted(FRAMINGS))}")
    return FRAMINGS[name]
