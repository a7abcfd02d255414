"""Camera poses for the synthetic dataset: FFHQ-like or full-circle random views, extra side views, fixed
evaluation views.

Every camera is an orbit camera (core.camera.orbit_cameras): it looks at the origin from radius 2.7 with the
normalised focal length 4.2647 (FOV 13.37 deg), no roll. Angles here are in degrees; ``yaw`` positive moves
the camera toward +x (the subject's left), ``pitch`` positive looks down from above.

Distributions (FFHQ-like: mostly frontal, tails out to the profiles, a little pitch):
    yaw    80%: normal(0, 20) clipped to [-90, 90];  20%: uniform(-90, 90)
    pitch  normal(3, 8) clipped to [-25, 30]
    full-yaw views (``--full-yaw-fraction F``): each random view is, with probability F, turned to a yaw
           uniform(-180, 180) instead (same pitch), so a share F of the views covers the whole circle
           evenly, back included, while 1 - F keep the frontal bias; F = 0 draws exactly the FFHQ-like
           poses above (same random numbers, same datasets as before the option existed)
    side views (``--extra-side-views``): |yaw| uniform(55, 100), alternating sides starting on a random
           one; pitch normal(0, 8) clipped to [-20, 25]
"""

from __future__ import annotations

import math

import numpy as np
import torch

from core.camera import DEFAULT_FOCAL, DEFAULT_RADIUS, Cameras, orbit_cameras

RADIUS = DEFAULT_RADIUS
FOCAL = DEFAULT_FOCAL
# Fixed evaluation views of the held-out split, (yaw_deg, pitch_deg): the frontal view first, then the
# whole circle in 45-degree steps on both sides (three-quarter, profile, three-quarter back, the back), and
# the frontal view from above and below. (Format 1 had +-30 and +-60 instead of +-45 and +-135.)
EVAL_VIEWS: tuple[tuple[float, float], ...] = (
    (0.0, 0.0), (-45.0, 0.0), (45.0, 0.0), (-90.0, 0.0), (90.0, 0.0), (-135.0, 0.0), (135.0, 0.0),
    (180.0, 0.0), (0.0, 20.0), (0.0, -15.0),
)


def sample_ffhq_poses(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random (yaw_deg [n], pitch_deg [n]) following the FFHQ-like distribution above."""
    wide = rng.random(n) < 0.2
    yaw = np.where(wide, rng.uniform(-90, 90, n), np.clip(rng.normal(0, 20, n), -90, 90))
    pitch = np.clip(rng.normal(3, 8, n), -25, 30)
    return yaw, pitch


def sample_training_poses(rng: np.random.Generator, n: int, full_yaw_fraction: float = 0.0
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` random training views ``(yaw_deg [n], pitch_deg [n], full [n] bool)``: FFHQ-like poses, of which
    a share ``full_yaw_fraction`` (each view independently) get a yaw uniform(-180, 180) instead; ``full``
    marks those. With ``full_yaw_fraction == 0`` no further random numbers are drawn."""
    yaw, pitch = sample_ffhq_poses(rng, n)
    if full_yaw_fraction <= 0:
        return yaw, pitch, np.zeros(n, dtype=bool)
    full = rng.random(n) < full_yaw_fraction
    yaw = np.where(full, rng.uniform(-180, 180, n), yaw)
    return yaw, pitch, full


def sample_side_poses(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` extra side views (yaw_deg, pitch_deg): |yaw| in [55, 100] deg, alternating sides."""
    first = 1.0 if rng.random() < 0.5 else -1.0
    sides = first * np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    yaw = sides * rng.uniform(55, 100, n)
    pitch = np.clip(rng.normal(0, 8, n), -20, 25)
    return yaw, pitch


def pose_cameras(yaw_deg: np.ndarray, pitch_deg: np.ndarray) -> Cameras:
    """Orbit cameras ``[C]`` (float32) for the given angles in degrees."""
    yaw = torch.as_tensor(np.radians(np.asarray(yaw_deg, dtype=np.float64)), dtype=torch.float32)
    pitch = torch.as_tensor(np.radians(np.asarray(pitch_deg, dtype=np.float64)), dtype=torch.float32)
    if (pitch.abs() >= math.pi / 2).any():
        raise ValueError("pitch must be strictly between -90 and 90 degrees")
    return orbit_cameras(yaw=yaw, pitch=pitch, radius=RADIUS, focal=FOCAL)


def eval_cameras() -> Cameras:
    """The fixed evaluation cameras ``[len(EVAL_VIEWS)]``."""
    yaw, pitch = zip(*EVAL_VIEWS)
    return pose_cameras(np.array(yaw), np.array(pitch))
