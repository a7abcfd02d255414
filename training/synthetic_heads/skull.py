"""The head's shape: a star-shaped surface around the head centre (skull, jaw, chin, face relief).

The surface is ``P(d) = centre + r(d) d`` for unit directions ``d``. ``r`` is a superellipsoid whose radii
depend on the octant (longer toward the chin and the back of the skull, a jaw that narrows toward the chin),
plus a relief of smooth bumps and dents placed in face coordinates (x right, y up, world units): brow ridge,
eye sockets, cheekbones, lips, chin (the nose is its own part, see nose.py). World: +y up, face toward +z,
units are scene units (the head is
about 0.26 wide and 0.42 from chin to crown, inside the unit cube).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.synthetic_heads.attributes import HeadAttributes
from training.synthetic_heads.surfaces import smoothstep

EXPONENT = 2.3  # superellipsoid exponent: 2 = ellipsoid, larger = boxier


@dataclass(frozen=True)
class HeadGeometry:
    """Landmarks and radii derived from the attributes (world units, face coordinates x right / y up).

    ``centre`` is the origin of the radial surface. ``eye_*`` are the eyeball centres' x (right eye at -x),
    y and the eyeball radius; ``mouth_*`` the mouth centre (y) and half width; ``nose_*`` the nose root,
    tip heights and projection; ``ear_*`` the ear attachment point (right ear at -x), its height and size.
    """

    centre: tuple[float, float, float]
    rx: float
    ry_top: float
    ry_chin: float
    ry_back: float
    rz_front: float
    rz_back: float
    jaw_taper: float
    eye_x: float
    eye_y: float
    eye_r: float
    brow_y: float
    nose_root_y: float
    nose_tip_y: float
    nose_proj: float
    nose_half_w: float
    mouth_y: float
    mouth_half_w: float
    lip_h: float
    smile: float
    chin_y: float
    brow_ridge: float
    ear_y: float
    ear_z: float
    ear_h: float


def head_geometry(a: HeadAttributes) -> HeadGeometry:
    s = a.smile
    chin = 0.19 * a.head_height * (0.92 + 0.08 * a.chin_length)
    return HeadGeometry(
        centre=(0.0, 0.035, -0.02),
        rx=0.128 * a.head_width,
        ry_top=0.175 * a.head_height,
        ry_chin=chin,
        ry_back=0.135 * a.head_height,
        rz_front=0.138 * a.head_depth,
        rz_back=0.165 * a.head_depth,
        jaw_taper=0.42 - 0.22 * a.jaw_width,
        eye_x=0.043 * a.eye_spacing,
        eye_y=0.013,
        eye_r=0.019 * a.eye_size,
        brow_y=0.04,
        nose_root_y=0.012,
        nose_tip_y=0.012 - 0.064 * a.nose_length,
        nose_proj=0.03 * a.nose_size,
        nose_half_w=0.026 * a.nose_width,
        mouth_y=0.012 - 0.064 * a.nose_length - 0.029 - 0.004 * (a.chin_length - 1.0),
        mouth_half_w=0.03 * a.mouth_width * (1 + 0.12 * s),
        lip_h=0.0065 * a.lip_fullness,
        smile=s,
        chin_y=0.035 - chin + 0.02,
        brow_ridge=a.brow_ridge,
        ear_y=-0.0,
        ear_z=-0.03,
        ear_h=0.044 * a.ear_size,
    )


def base_radius(g: HeadGeometry, d: np.ndarray) -> np.ndarray:
    """``[N]`` distance from the centre to the smooth skull+jaw surface along unit directions ``d [N, 3]``."""
    dx, dy, dz = d[:, 0], d[:, 1], d[:, 2]
    front = smoothstep(-0.35, 0.45, dz)
    ry_down = g.ry_back + (g.ry_chin - g.ry_back) * front
    ry = np.where(dy >= 0, g.ry_top, ry_down)
    rz = np.where(dz >= 0, g.rz_front, g.rz_back)
    down = np.clip(-dy, 0, 1)
    # The jaw narrows toward the chin (front) and the face widens slightly at the cheekbones.
    rx = g.rx * (1.0 - g.jaw_taper * down ** 1.4 * (0.35 + 0.65 * front))
    rx = rx * (1.0 - 0.06 * smoothstep(0.2, 0.9, dy))  # narrower crown
    p = EXPONENT
    t = np.abs(dx / rx) ** p + np.abs(dy / ry) ** p + np.abs(dz / rz) ** p
    # Fill out the lower face so the chin comes forward instead of receding.
    fuller = 1.0 + 0.06 * smoothstep(0.35, 0.75, down) * smoothstep(0.3, 0.8, dz) * smoothstep(0.97, 0.8, down)
    return t ** (-1.0 / p) * fuller


def _bump(x: np.ndarray, y: np.ndarray, cx: float, cy: float, sx: float, sy: float) -> np.ndarray:
    return np.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))


def mouth_line_y(g: HeadGeometry, x: np.ndarray) -> np.ndarray:
    """Height of the line between the lips at face-x ``x``: corners rise with the smile."""
    t = np.clip(np.abs(x) / g.mouth_half_w, 0, 1.2)
    return g.mouth_y + g.smile * 0.011 * t ** 2 - 0.002 * (1 - g.smile) * t ** 2


def relief(g: HeadGeometry, p: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``[N]`` radial displacement of the face relief at base-surface points ``p [N, 3]`` (directions ``d``)."""
    x, y = p[:, 0], p[:, 1]
    front = smoothstep(0.25, 0.75, d[:, 2])
    ax = np.abs(x)
    out = np.zeros_like(x)
    # Brow ridge and forehead.
    out += (0.004 + 0.007 * g.brow_ridge) * _bump(ax, y, g.eye_x, g.brow_y, 0.028, 0.011)
    # Eye sockets (dents the eyeballs sit in).
    out -= 0.014 * _bump(ax, y, g.eye_x, g.eye_y, 0.02, 0.014)
    # Cheekbones, raised by a smile.
    out += (0.006 + 0.006 * g.smile) * _bump(ax, y, g.eye_x + 0.012, g.eye_y - 0.045 + 0.006 * g.smile, 0.022, 0.018)
    # Lips around the mouth line, a groove between them.
    ml = mouth_line_y(g, x)
    w = np.exp(-0.5 * (x / g.mouth_half_w) ** 6)
    out += 0.35 * g.lip_h * w * np.exp(-0.5 * ((y - (ml + 0.006)) / 0.0065) ** 2)
    out += 0.45 * g.lip_h * w * np.exp(-0.5 * ((y - (ml - 0.0075)) / 0.007) ** 2)
    out -= 0.003 * w * np.exp(-0.5 * ((y - ml) / 0.0018) ** 2)
    # Chin.
    out += 0.01 * _bump(x, y, 0.0, g.chin_y + 0.024, 0.024, 0.014)
    return out * front


def head_points(g: HeadGeometry, d: np.ndarray, with_relief: bool = True) -> np.ndarray:
    """``[N, 3]`` surface points of the head along unit directions ``d [N, 3]``; the face relief is a height
    field pushed along +z (the face only; zero toward the sides and back)."""
    c = np.array(g.centre)
    p = c + base_radius(g, d)[:, None] * d
    if with_relief:
        p[:, 2] += relief(g, p, d)
    return p


def inside_head(g: HeadGeometry, points: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """``[N]`` bool: ``points [N, 3]`` lie deeper than ``margin`` inside the smooth head (relief ignored)."""
    rel = points - np.array(g.centre)
    r = np.linalg.norm(rel, axis=-1)
    return r < base_radius(g, rel / np.maximum(r, 1e-12)[:, None]) - margin
