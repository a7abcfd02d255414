"""Glasses: two frames in front of the eyes, a bridge over the nose, temples back to the ears, and lenses
(dark for sunglasses, a faint sheen otherwise), in head units."""

from __future__ import annotations

import numpy as np

from training.synthetic_heads.attributes import FRAME_COLORS, HeadAttributes
from training.synthetic_heads.eyes import eyeball_centre
from training.synthetic_heads.skull import HeadGeometry, base_radius
from training.synthetic_heads.surfaces import Part, frame_quats, light_direction, normalize, shade

SHAPES = {  # half width, half height, superellipse exponent
    "round": (0.024, 0.022, 2.0),
    "rectangular": (0.028, 0.018, 4.5),
    "sunglasses": (0.029, 0.023, 3.0),
}
THICK = 0.0017  # frame std-dev across the rim


def _curve_part(points: np.ndarray, thick: float, rgb: np.ndarray, opacity: float = 0.98) -> Part:
    """Gaussians along a polyline ``points [L, 3]``: long along it, ``thick`` across."""
    tang = np.gradient(points, axis=0)
    step = np.linalg.norm(tang, axis=-1, keepdims=True)
    other = np.where(np.abs(tang[:, 1:2]) < 0.9 * step, np.array([0.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.0]))
    quats = frame_quats(np.cross(other, tang), tang)  # local z along the curve
    scales = np.concatenate([np.full((len(points), 2), thick), 0.9 * step], -1)
    return Part(points, quats, scales, np.broadcast_to(rgb, points.shape).copy(), np.full(len(points), opacity),
                np.zeros_like(points))


def _head_x(g: HeadGeometry, y: np.ndarray, z: np.ndarray, side: float) -> np.ndarray:
    """``[L]`` |x| of the head surface (without relief) at heights ``y`` and depths ``z`` on ``side``."""
    c = np.array(g.centre)
    lo, hi = np.zeros_like(y), np.full_like(y, 0.3)
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        p = np.stack([side * mid, y, z], -1) - c
        r = np.linalg.norm(p, axis=-1)
        inside = r < base_radius(g, p / r[:, None])
        lo, hi = np.where(inside, mid, lo), np.where(inside, hi, mid)
    return hi


def glasses_parts(g: HeadGeometry, a: HeadAttributes, rng: np.random.Generator) -> list[Part]:
    if a.glasses == "none":
        return []
    hw, hh, ex = SHAPES.get(a.glasses, SHAPES["rectangular"])
    colour = np.array(FRAME_COLORS[a.frame_color])
    light = light_direction(a.light_azimuth_deg, a.light_elevation_deg)
    parts = []
    lens_z = []
    for side in (-1.0, 1.0):
        e = eyeball_centre(g, side)
        centre = np.array([side * (g.eye_x + 0.002), g.eye_y - 0.002, e[2] + g.eye_r + 0.013])
        lens_z.append(centre[2])
        phi = np.linspace(0, 2 * np.pi, 120, endpoint=False)
        c, s = np.cos(phi), np.sin(phi)
        rx = hw * np.sign(c) * np.abs(c) ** (2 / ex)
        ry = hh * np.sign(s) * np.abs(s) ** (2 / ex)
        wrap = 0.12 * np.maximum(side * rx, 0)  # the outer half bends back toward the temple
        rim = np.stack([centre[0] + rx, centre[1] + ry, centre[2] - wrap], -1)
        parts.append(_curve_part(rim, THICK * (1.3 if a.glasses != "round" else 1.0), colour))
        # Lens: a disc of flat Gaussians filling the rim.
        rr = np.sqrt((np.arange(6) + 0.5) / 6)
        lens = np.concatenate([centre + (rim[::4] - centre) * k for k in rr])
        n = np.broadcast_to(np.array([0.0, 0.0, 1.0]), lens.shape)
        if a.glasses == "sunglasses":
            tint, op = np.array([0.06, 0.06, 0.08]), 0.9
        else:
            tint, op = np.array([0.85, 0.9, 0.95]), 0.12
        lens_rgb = shade(np.broadcast_to(tint, lens.shape).copy(), n, light, ambient=0.8, diffuse=0.3)
        spacing = 0.45 * hw / 6 + 0.003
        scales = np.broadcast_to(np.array([spacing, spacing, 0.0008]), lens.shape).copy()
        quats = np.broadcast_to(np.array([1.0, 0.0, 0.0, 0.0]), (len(lens), 4)).copy()
        parts.append(Part(lens, quats, scales, lens_rgb, np.full(len(lens), op), np.zeros_like(lens)))
        # Temple arm: from the hinge back along the side of the head to above the ear.
        hinge = np.array([side * (g.eye_x + 0.002 + hw), centre[1] + 0.3 * hh, centre[2] - 0.12 * hw])
        t = np.linspace(0, 1, 70)
        z = hinge[2] + (g.ear_z - 0.012 - hinge[2]) * t
        y = hinge[1] + (g.ear_y + g.ear_h * 0.75 - hinge[1]) * t
        x = np.maximum(np.abs(hinge[0]), _head_x(g, y, z, side) + 0.0035)
        x = np.maximum.accumulate(x)
        parts.append(_curve_part(np.stack([side * x, y, z], -1), THICK, colour))
    # Bridge over the nose, arching up a little.
    inner = g.eye_x + 0.002 - hw
    t = np.linspace(-1, 1, 24)
    bridge = np.stack([t * inner, g.eye_y + 0.004 + 0.004 * (1 - t ** 2), np.full_like(t, max(lens_z) + 0.001)], -1)
    parts.append(_curve_part(bridge, THICK, colour))
    return parts
