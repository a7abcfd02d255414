"""Eyes: the front cap of each eyeball, painted with sclera, iris, pupil and catch-light inside an almond-
shaped opening, and eyelids (skin with a dark lash line) outside it (head units)."""

from __future__ import annotations

import numpy as np

from training.synthetic_heads.attributes import EYE_COLORS, HeadAttributes, skin_rgb
from training.synthetic_heads.skull import HeadGeometry, head_points
from training.synthetic_heads.surfaces import Part, light_direction, normalize, shade, smoothstep, surface_part

CAP_DEG = 72.0  # the cap of the eyeball that is modelled (degrees from the gaze axis)
RINGS, SPOKES = 9, 30


def eyeball_centre(g: HeadGeometry, side: float) -> np.ndarray:
    """``[3]`` centre of the eyeball on ``side`` (+1 = subject's left, +x; -1 = right): its front pokes
    slightly out of the eye socket."""
    c = np.array(g.centre)
    target = np.array([side * g.eye_x, g.eye_y, c[2] + 0.2])
    d = normalize((target - c)[None])
    for _ in range(3):  # aim the ray so the surface point has the wanted x, y
        p = head_points(g, d)[0]
        target = target + np.array([side * g.eye_x - p[0], g.eye_y - p[1], 0.0])
        d = normalize((target - c)[None])
    p = head_points(g, d)[0]
    return p + np.array([0.0, 0.0, 0.0022 - g.eye_r])


def eye_part(g: HeadGeometry, a: HeadAttributes, side: float, rng: np.random.Generator) -> Part:
    e = eyeball_centre(g, side)
    r = g.eye_r
    theta_max = np.radians(CAP_DEG)
    th = (np.arange(RINGS) + 0.5) / RINGS * theta_max
    ph = np.arange(SPOKES) / SPOKES * 2 * np.pi
    th, ph = np.meshgrid(th, ph, indexing="ij")
    th, ph = th.ravel(), ph.ravel() + rng.uniform(0, 2 * np.pi / SPOKES)
    gaze = normalize(np.array([side * 0.12, 0.0, 1.0]))  # eyes look straight ahead, axes splay a little
    ex = normalize(np.cross(np.array([0.0, 1.0, 0.0]), gaze))
    ey = np.cross(gaze, ex)

    def at(t, f):
        return e + r * (np.sin(t)[:, None] * (np.cos(f)[:, None] * ex + np.sin(f)[:, None] * ey) + np.cos(t)[:, None] * gaze)

    p = at(th, ph)
    dt, dp = theta_max / RINGS, 2 * np.pi / SPOKES
    d_t = (at(th + 1e-4, ph) - at(th - 1e-4, ph)) / 2e-4 * dt
    d_p = (at(th, ph + 1e-4) - at(th, ph - 1e-4)) / 2e-4 * dp
    d_p = np.where(np.linalg.norm(d_p, axis=-1, keepdims=True) < 1e-5, d_t[:, [1, 2, 0]], d_p)
    # Position on the eye in its own frame: x' toward the temple, y' up, in eyeball radii.
    rel = p - e
    xs, ys = side * (rel @ ex) / r, (rel @ ey) / r
    open_h = (0.64 - 0.22 * a.smile) * (1 - xs ** 2).clip(0) ** 0.75 + 0.03 * xs  # outer corner slightly higher
    top, bottom = open_h + 0.04 * (1 - xs ** 2).clip(0), -0.75 * open_h
    inside = smoothstep(0.06, -0.02, ys - top) * smoothstep(-0.06, 0.02, ys - bottom) * (np.abs(xs) < 0.98)
    iris_r, pupil_r = 0.44, 0.18
    rr = np.hypot(xs, ys - 0.02)  # the iris sits a little high, under the upper lid
    iris_col = np.array(EYE_COLORS[a.eye_color])
    sclera = np.array([0.93, 0.91, 0.88]) * (1 - 0.12 * smoothstep(0.5, 0.95, np.abs(xs)))[:, None]
    col = sclera.copy()
    iris = smoothstep(iris_r + 0.03, iris_r - 0.03, rr)
    ring = smoothstep(iris_r - 0.12, iris_r, rr) * iris
    iris_tex = iris_col * (1 + 0.15 * np.sin(ph * 11 + rng.uniform(0, 6)))[:, None] * (1 - 0.4 * ring)[:, None]
    col = col * (1 - iris[:, None]) + iris[:, None] * iris_tex
    pupil = smoothstep(pupil_r + 0.03, pupil_r - 0.03, rr)
    col = col * (1 - pupil[:, None]) + pupil[:, None] * np.array([0.02, 0.02, 0.02])
    glint = np.exp(-0.5 * ((xs - 0.12) ** 2 + (ys - 0.16) ** 2) / 0.045 ** 2)
    col = col * (1 - glint[:, None]) + glint[:, None] * np.array([1.0, 1.0, 1.0])
    # Upper lid shadow on the eye.
    col = col * (1 - 0.35 * smoothstep(top - 0.25, top, ys))[:, None]
    skin = skin_rgb(a)
    lid = skin * 0.88
    lash = smoothstep(0.1, 0.0, np.abs(ys - top - 0.02)) * (ys > 0.0) * (np.abs(xs) < 1.0)
    lid_col = lid[None, :] * (1 - 0.85 * lash[:, None]) + 0.85 * lash[:, None] * np.array([0.05, 0.04, 0.04])
    col = col * inside[:, None] + lid_col * (1 - inside[:, None])
    normal = rel / r
    lit = shade(col, normal, light_direction(a.light_azimuth_deg, a.light_elevation_deg), ambient=0.75, diffuse=0.3)
    return surface_part(p, d_t, d_p, lit, inside=e)
