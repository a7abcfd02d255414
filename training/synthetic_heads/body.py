"""Neck, shoulders and clothing, in world units (built after the head is scaled into place).

The neck is an elliptic cylinder from inside the head down into the torso; the torso is the upper half of a
superellipsoid whose base is cut by the bottom face of the unit cube (y = -0.5); the shirt meets the neck
at a plain seam.
"""

from __future__ import annotations

import numpy as np

from training.synthetic_heads.attributes import HeadAttributes, skin_rgb
from training.synthetic_heads.surfaces import (
    Part, PlaneWaves, light_direction, normalize, ring_grid, shade, smoothstep, sphere_dirs, surface_part,
)

NECK_TOP, NECK_BOTTOM = -0.06, -0.34
NECK_Z = -0.035
NECK_RADII = (0.08, 0.088)  # x, z half-widths
TORSO_CENTRE = np.array([0.0, -0.5, -0.045])
TORSO_RADII = np.array([0.4, 0.245, 0.135])
TORSO_EXP = 2.2  # superellipsoid exponent


def neck_part(a: HeadAttributes, rng: np.random.Generator) -> Part:
    rx, rz = NECK_RADII
    n_around, n_up = 46, 22
    uu = (np.arange(n_around)[None, :] + rng.uniform(0, 1, size=(n_up, 1))) / n_around * 2 * np.pi
    tt = np.broadcast_to(((np.arange(n_up) + 0.5) / n_up)[:, None], uu.shape)
    uu, tt = uu.ravel(), tt.ravel()

    def at(u, t):
        y = NECK_BOTTOM + (NECK_TOP - NECK_BOTTOM) * t
        lean = 0.03 * t  # the neck leans forward toward the head
        widen = 1.0 + 0.25 * smoothstep(0.35, 0.0, t)  # flares into the shoulders
        return np.stack([rx * widen * np.sin(u), y, NECK_Z + lean + rz * widen * np.cos(u)], -1)

    p = at(uu, tt)
    d_u = (at(uu + 1e-4, tt) - at(uu - 1e-4, tt)) / 2e-4 * (2 * np.pi / n_around)
    d_t = (at(uu, tt + 1e-4) - at(uu, tt - 1e-4)) / 2e-4 / n_up
    normal = np.cross(d_t, d_u)
    skin = skin_rgb(a)
    front = smoothstep(-0.2, 0.6, np.cos(uu))
    shadow = 1.0 - 0.45 * smoothstep(0.55, 0.95, tt) * front  # under the chin
    rgb = np.broadcast_to(skin * 0.96, p.shape)
    lit = shade(rgb, normal, light_direction(a.light_azimuth_deg, a.light_elevation_deg), occlusion=shadow)
    axis = np.stack([np.zeros_like(tt), p[:, 1], np.full_like(tt, NECK_Z)], -1)
    return surface_part(p, d_u, d_t, lit, inside=axis)


def torso_part(a: HeadAttributes, rng: np.random.Generator) -> Part:
    u, v, du, dv = ring_grid(26, 110, rng, v_min=0.0, v_max=np.pi / 2)

    def at(uu, vv):
        d = sphere_dirs(uu, vv)
        t = (np.abs(d / TORSO_RADII) ** TORSO_EXP).sum(-1) ** (-1.0 / TORSO_EXP)
        return TORSO_CENTRE + t[:, None] * d

    p = at(u, v)
    d_u = (at(u + 1e-4, v) - at(u - 1e-4, v)) * (du / 2e-4)[:, None]
    d_v = (at(u, v + 1e-4) - at(u, v - 1e-4)) * (dv / 2e-4)[:, None]
    normal = np.cross(d_u, d_v)
    shirt = np.array(a.shirt_rgb)
    folds = PlaneWaves(rng, 9.0)(p)
    rgb = np.clip(shirt[None, :] * (1.0 + 0.06 * folds)[:, None], 0, 1)
    occ = 1.0 - 0.25 * smoothstep(0.12, 0.06, np.hypot(p[:, 0], p[:, 2] - NECK_Z))  # around the neck
    lit = shade(rgb, normal, light_direction(a.light_azimuth_deg, a.light_elevation_deg), occlusion=occ)
    return surface_part(p, d_u, d_v, lit, inside=TORSO_CENTRE)


def inside_torso(points: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """``[N]`` bool: world ``points [N, 3]`` lie deeper than ``margin`` inside the torso."""
    rel = points - TORSO_CENTRE
    r = np.linalg.norm(rel, axis=-1)
    d = rel / np.maximum(r, 1e-12)[:, None]
    surface = (np.abs(d / TORSO_RADII) ** TORSO_EXP).sum(-1) ** (-1.0 / TORSO_EXP)
    return r < surface - margin


def inside_neck(points: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """``[N]`` bool: world ``points`` lie inside the neck column (its flared base included)."""
    t = np.clip((points[:, 1] - NECK_BOTTOM) / (NECK_TOP - NECK_BOTTOM), 0, 1)
    widen = 1.0 + 0.25 * smoothstep(0.35, 0.0, t)
    ex = points[:, 0] / (NECK_RADII[0] * widen - margin)
    ez = (points[:, 2] - NECK_Z - 0.03 * t) / (NECK_RADII[1] * widen - margin)
    return (ex ** 2 + ez ** 2 < 1.0) & (points[:, 1] < NECK_TOP)
