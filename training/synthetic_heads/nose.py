"""The nose, built from overlapping ellipsoids (bridge, tip, two alae) pushed out of the face (head units).

Each ellipsoid is a closed surface of discs; where they overlap each other or the face, the inner parts are
hidden by the outer ones, so the union reads as one nose with crisp shading and a clean profile.
Nostrils are painted dark on the undersides of the alae and the tip.
"""

from __future__ import annotations

import numpy as np

from training.synthetic_heads.attributes import HeadAttributes, skin_rgb
from training.synthetic_heads.skull import HeadGeometry, head_points
from training.synthetic_heads.surfaces import (
    Part, ellipsoid_surface, light_direction, normalize, shade, smoothstep, surface_part,
)

SPACING = 0.0032  # sample spacing on the nose (head units)


def face_points(g: HeadGeometry, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``[N, 3]`` points of the face surface (with relief) at face coordinates ``x [N]``, ``y [N]``."""
    c = np.array(g.centre)
    target = np.stack([x, y, np.full_like(x, c[2] + 0.2)], -1)
    for _ in range(4):  # aim the rays from the centre so the surface points land on (x, y)
        p = head_points(g, normalize(target - c))
        target[:, :2] += np.stack([x, y], -1) - p[:, :2]
    return head_points(g, normalize(target - c))


def face_point(g: HeadGeometry, x: float, y: float) -> np.ndarray:
    """``[3]`` the face surface point at face coordinates ``(x, y)``."""
    return face_points(g, np.array([x], dtype=float), np.array([y], dtype=float))[0]


def nose_part(g: HeadGeometry, a: HeadAttributes, rng: np.random.Generator) -> Part:
    """Bridge (a tapered tube whose ridge runs from the root to the tip, its back half buried in the face),
    a rounded tip and two alae."""
    w = g.nose_half_w
    root = face_point(g, 0.0, g.nose_root_y) + np.array([0.0, 0.0, 0.003])
    base = face_point(g, 0.0, g.nose_tip_y - 0.006)
    tip = base + np.array([0.0, 0.007, g.nose_proj])
    along = normalize(tip - root)
    side = np.array([1.0, 0.0, 0.0])
    out = np.cross(along, side)  # out of the face (forward and a little up)
    skin = skin_rgb(a) * np.array([1.0, 0.96, 0.95])
    light = light_direction(a.light_azimuth_deg, a.light_elevation_deg)
    tip_r = 0.5 * w
    # Bridge: ridge line root -> tip; elliptic cross-sections growing toward the tip.
    length = np.linalg.norm(tip - root)
    n_t = max(6, int(length / SPACING))
    n_f = 28
    t = (np.arange(n_t)[:, None] + 0.5) / n_t * np.ones((1, n_f))
    f = (np.arange(n_f)[None, :] + rng.uniform(0, 1, size=(n_t, 1))) / n_f * 2 * np.pi
    t, f = t.ravel(), f.ravel()

    def bridge(tt, ff):
        rx = w * (0.28 + 0.22 * tt)
        rz = 0.012 + (tip_r - 0.012) * tt
        ridge = root + (tt * length)[:, None] * along
        axis = ridge - rz[:, None] * out
        return axis + (rx * np.cos(ff))[:, None] * side + (rz * np.sin(ff))[:, None] * out, axis

    p, axis = bridge(t, f)
    d_t = (bridge(t + 1e-4, f)[0] - bridge(t - 1e-4, f)[0]) / 2e-4 / n_t
    d_f = (bridge(t, f + 1e-4)[0] - bridge(t, f - 1e-4)[0]) / 2e-4 * (2 * np.pi / n_f)
    pieces = [(p, d_t, d_f, axis)]
    # Tip and alae: ellipsoids (centre, radii).
    blobs = [(tip - tip_r * out, np.array([tip_r, 0.9 * tip_r, tip_r]))]
    for sx in (-1.0, 1.0):
        ala_r = np.array([0.4 * w, 0.34 * w, 0.5 * w])
        blobs.append((base + np.array([sx * 0.6 * w, 0.005, 0.45 * g.nose_proj - 0.45 * w]), ala_r))
    for centre, radii in blobs:
        p, d_u, d_v, _ = ellipsoid_surface(centre, np.eye(3), radii, SPACING, rng)
        pieces.append((p, d_u, d_v, np.broadcast_to(centre, p.shape)))
    parts = []
    for p, d_u, d_v, inside in pieces:
        keep = p[:, 2] > face_points(g, p[:, 0], p[:, 1])[:, 2] - 0.002  # what is buried in the face is hidden
        normal = normalize(np.cross(d_u, d_v))
        normal *= np.where((normal * (p - inside)).sum(-1, keepdims=True) < 0, -1.0, 1.0)
        # Nostrils: dark where the surface faces down, beside the middle, near the base of the nose.
        nostril = smoothstep(-0.2, -0.7, normal[:, 1]) * smoothstep(0.2 * w, 0.45 * w, np.abs(p[:, 0]))
        nostril *= smoothstep(base[1] + 0.012, base[1] + 0.004, p[:, 1]) * smoothstep(0.9 * w, 0.6 * w, np.abs(p[:, 0]))
        rgb = np.broadcast_to(skin, p.shape) * (1 - 0.75 * nostril)[:, None]
        lit = shade(rgb, normal, light)
        parts.append(surface_part(p, d_u, d_v, lit, inside=inside).select(keep))
    return Part.cat(parts)
