"""Ears: a cupped oval shell attached at the side of the head, standing out by ``ear_angle_deg``, with a
lighter rim and a darker bowl (head units). The shell is one layer of discs, visible from both sides."""

from __future__ import annotations

import numpy as np

from training.synthetic_heads.attributes import HeadAttributes, skin_rgb
from training.synthetic_heads.skull import HeadGeometry, head_points
from training.synthetic_heads.surfaces import Part, light_direction, normalize, shade, smoothstep, surface_part

RINGS, SPOKES = 8, 40


def ear_part(g: HeadGeometry, a: HeadAttributes, side: float, rng: np.random.Generator) -> Part:
    """One ear on ``side`` (+1 = subject's left, +x)."""
    c = np.array(g.centre)
    root = head_points(g, normalize(np.array([[side, (g.ear_y - c[1]) / g.rx, (g.ear_z - c[2]) / g.rx]])))[0]
    root = root - np.array([side * 0.004, 0.0, 0.0])  # sink the front edge into the head
    ang = np.radians(a.ear_angle_deg)
    up = np.array([0.0, 1.0, 0.0])
    back = np.array([side * np.sin(ang), 0.0, -np.cos(ang)])  # away from the face, tilted outward
    out = normalize(np.cross(up, back)) * -side  # the shell's normal, pointing away from the head
    h, w = g.ear_h, 0.58 * g.ear_h
    rr = (np.arange(RINGS) + 0.5) / RINGS
    ph = np.arange(SPOKES) / SPOKES * 2 * np.pi
    rr, ph = np.meshgrid(rr, ph, indexing="ij")
    rr, ph = rr.ravel(), ph.ravel() + rng.uniform(0, 2 * np.pi / SPOKES)

    def at(r, f):
        sy, sx = np.sin(f), np.cos(f)
        lobe = 1.0 - 0.25 * smoothstep(0.0, -0.8, sy) * smoothstep(0.3, -0.4, sx)  # narrower lobe
        y = r * sy * h
        x = (0.5 + 0.5 * r * sx * lobe) * w  # 0 at the attachment line, w at the back edge
        cup = -0.0035 * (1 - r ** 2) + 0.002 * smoothstep(0.7, 1.0, r)  # bowl and rolled rim
        return root + y[:, None] * up + x[:, None] * back + cup[:, None] * out

    p = at(rr, ph)
    d_r = (at(rr + 1e-4, ph) - at(rr - 1e-4, ph)) / 2e-4 / RINGS
    d_f = (at(rr, ph + 1e-4) - at(rr, ph - 1e-4)) / 2e-4 * (2 * np.pi / SPOKES)
    skin = skin_rgb(a)
    rim = smoothstep(0.65, 0.95, rr)
    bowl = smoothstep(0.55, 0.15, rr)
    col = skin[None, :] * (0.93 + 0.07 * rim - 0.18 * bowl)[:, None]
    col = col * (1 - 0.08 * smoothstep(0.3, 1.0, np.cos(ph)))[:, None] + np.array([0.03, -0.01, -0.01])
    normal = np.broadcast_to(out, p.shape)
    light = light_direction(a.light_azimuth_deg, a.light_elevation_deg)
    lit = shade(np.clip(col, 0, 1), normal, light, ambient=0.6, diffuse=0.45)
    return surface_part(p, d_f, d_r, lit)
