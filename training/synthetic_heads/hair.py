"""Hair: a shell of elongated Gaussians over the scalp, plus a per-style extra (head units).

Styles (see :data:`~training.synthetic_heads.attributes.HAIR_STYLES`):
    bald      no hair.                  buzz      a very thin shell (almost painted on).
    short     a shell, fuller on top.   medium    a thicker shell hanging to the jaw, over the ears.
    long      a shell hanging past the shoulders as a curtain at the sides and back.
    bun       a tight shell and a bun at the back of the crown.
    ponytail  a tight shell and a tapered tail from the back of the head.
    curly     a thick, lumpy shell of round tufts.
Strands run along the meridians (down from the crown); colour varies in streaks around the head.
"""

from __future__ import annotations

import numpy as np

from training.synthetic_heads.attributes import HeadAttributes, hair_rgb
from training.synthetic_heads.face import SampledSurface
from training.synthetic_heads.regions import hair_mask, hairline_y
from training.synthetic_heads.skull import HeadGeometry, base_radius, head_points
from training.synthetic_heads.surfaces import (
    Part, PlaneWaves, light_direction, normalize, refine_grid, ring_grid, shade, smoothstep, sphere_dirs,
    surface_part,
)

THICKNESS = {"buzz": 0.0025, "short": 0.011, "medium": 0.017, "long": 0.014, "bun": 0.006, "ponytail": 0.006,
             "curly": 0.022}
HANG = {"medium": -0.13, "long": -0.36}  # lowest y of the hanging part (head units)
OPEN_U = {"medium": 1.05, "long": 1.0}  # the hanging part covers |azimuth| >= this (rad)
ROWS, EQUATOR = 50, 112  # strands are longer than they are wide: fewer rows


def _streaks(rng: np.random.Generator, u: np.ndarray, n: int) -> np.ndarray:
    """``[N]`` brightness streaks around the head (strand clumps) plus per-Gaussian grain, ~[-1, 1]."""
    k = rng.uniform(25, 45, size=3)
    ph = rng.uniform(0, 2 * np.pi, size=3)
    s = sum(np.sin(u * k[i] + ph[i]) for i in range(3)) / 3
    return 0.7 * s + 0.5 * rng.uniform(-1, 1, size=n)


def _colour(a: HeadAttributes, rng: np.random.Generator, u: np.ndarray, normal: np.ndarray,
            occlusion: np.ndarray | float = 1.0) -> np.ndarray:
    base = hair_rgb(a)
    n = u.shape[0]
    var = 1.0 + 0.3 * _streaks(rng, u, n)
    rgb = np.clip(base[None, :] * var[:, None], 0, 1)
    light = light_direction(a.light_azimuth_deg, a.light_elevation_deg)
    lit = shade(rgb, normal, light, ambient=0.48, diffuse=0.6, occlusion=occlusion)
    sheen = np.clip(normalize(normal) @ light, 0, 1) ** 6 * 0.18 * (0.4 + base.mean())
    return np.clip(lit + sheen[:, None], 0, 1)


def _shell_radius(g: HeadGeometry, a: HeadAttributes, d: np.ndarray, p: np.ndarray,
                  noise: PlaneWaves) -> np.ndarray:
    """``[N]`` distance from the head centre to the outside of the hair shell."""
    u = np.arctan2(d[:, 0], d[:, 2])
    above = p[:, 1] - hairline_y(g, a, u)
    t = THICKNESS[a.hair_style] * a.hair_volume
    t = t * (0.75 + 0.5 * smoothstep(0.1, 0.9, d[:, 1]))  # fuller on top
    t = t * smoothstep(-0.004, 0.02, above) + 0.0015
    if a.hair_style == "curly":
        t = t * (1.0 + 0.35 * noise(p))
    r = np.linalg.norm(p - np.array(g.centre), axis=-1)
    return r + t


def hair_shell(g: HeadGeometry, a: HeadAttributes, rng: np.random.Generator) -> Part:
    """The shell over the scalp, and for medium/long/curly styles the part hanging below it."""
    round_tufts = a.hair_style == "curly"
    density = 0.6 if round_tufts else 1.0  # curls: fewer, rounder Gaussians
    u, v, du, dv = ring_grid(int(ROWS * density), int(EQUATOR * density), rng, v_min=-0.9, v_max=np.pi / 2)
    hang = a.hair_style in HANG
    noise = PlaneWaves(rng, 28.0, count=10)
    c = np.array(g.centre)

    def shell(uu, vv):
        d = sphere_dirs(uu, vv)
        p = head_points(g, d)
        return c + _shell_radius(g, a, d, p, noise)[:, None] * d

    def surface(uu, vv):
        s = shell(uu, vv)
        if not hang:
            return s
        # Below the equator, at the sides and back, the hair falls straight down from the equator's shell.
        top = shell(uu, np.zeros_like(vv))
        low = c[1] + HANG[a.hair_style]
        frac = np.clip(-vv / 0.9, 0, 1)
        hang_pt = top.copy()
        hang_pt[:, 1] = c[1] + (low - c[1]) * frac
        flare = 1.0 + 0.18 * frac
        hang_pt[:, 0] = c[0] + (top[:, 0] - c[0]) * flare
        hang_pt[:, 2] = c[2] + (top[:, 2] - c[2]) * flare
        w = (vv < 0) * smoothstep(OPEN_U[a.hair_style] - 0.08, OPEN_U[a.hair_style] + 0.08, np.abs(uu))
        return s * (1 - w[:, None]) + hang_pt * w[:, None]

    u, v, du, dv = refine_grid(surface, u, v, du, dv, 0.17, 1.5, max_stretch_v=3.0)  # strands may be long
    p = surface(u, v)
    d_u = (surface(u + 1e-4, v) - surface(u - 1e-4, v)) * (du / 2e-4)[:, None]
    d_v = (surface(u, v + 1e-4) - surface(u, v - 1e-4)) * (dv / 2e-4)[:, None]
    d = sphere_dirs(u, v)
    p_head = head_points(g, d)
    keep = hair_mask(g, a, p_head, d, soft=0.0005) > 0.5
    if hang:
        keep |= (v < 0) & (np.abs(u) > OPEN_U[a.hair_style])
    normal = np.cross(d_u, d_v)
    occ = 1.0 - 0.3 * smoothstep(0.0, -0.8, v)
    rgb = _colour(a, rng, u, normal, occlusion=occ)
    if round_tufts:  # curls: round tufts pushed in and out of the shell
        p = p + (0.006 * rng.uniform(-1, 1, size=len(p)))[:, None] * normalize(normal)
        part = surface_part(p, d_u, d_v, rgb, spread=0.8, thickness=0.7)  # lumpy: no reliable facing, two-sided
    else:  # strands: long along the meridian, thin across
        part = surface_part(p, d_v, d_u, rgb, spread=0.8, inside=c).scaled(np.array([1.35, 0.9, 1.0]))
    if hang:  # the hanging part is seen from inside too (around the face): two-sided
        part = Part(*(getattr(part, f) for f in Part.FIELDS[:-1]), part.normal * (v >= -0.05)[:, None])
    return part.select(keep)


def _tube(centre_line: np.ndarray, radius: np.ndarray, n_around: int, a: HeadAttributes,
          rng: np.random.Generator) -> Part:
    """A tube of strands along ``centre_line [L, 3]`` with ``radius [L]``."""
    L = centre_line.shape[0]
    tang = np.gradient(centre_line, axis=0)
    side = normalize(np.cross(tang, np.array([1.0, 0.0, 0.0])))
    up = normalize(np.cross(side, tang))
    ang = (np.arange(n_around)[None, :] + rng.uniform(0, 1, size=(L, 1))) / n_around * 2 * np.pi
    ring = np.cos(ang)[..., None] * side[:, None, :] + np.sin(ang)[..., None] * up[:, None, :]
    p = centre_line[:, None, :] + radius[:, None, None] * ring
    d_along = np.broadcast_to(tang[:, None, :], p.shape) * 1.0
    d_around = np.cross(tang[:, None, :], ring) * (radius[:, None, None] * 2 * np.pi / n_around)
    p, d_along, d_around, ring = (x.reshape(-1, 3) for x in (p, d_along, d_around, ring))
    rgb = _colour(a, rng, ang.ravel() * 3, ring)
    inside = np.repeat(centre_line, n_around, axis=0)
    return surface_part(p, d_along, d_around, rgb, spread=0.8, inside=inside).scaled(np.array([1.5, 0.9, 1.0]))


def hair_extras(g: HeadGeometry, a: HeadAttributes, rng: np.random.Generator) -> list[Part]:
    """The bun or the ponytail (empty for other styles)."""
    c = np.array(g.centre)
    if a.hair_style == "bun":
        d = normalize(np.array([[0.0, 0.55, -0.85]]))
        bun_r = 0.04 * a.hair_volume
        centre = c + (base_radius(g, d)[0] + 0.6 * bun_r) * d[0]
        u, v, du, dv = ring_grid(14, 36, rng)

        def ball(uu, vv):
            return centre + bun_r * sphere_dirs(uu, vv) * np.array([1.0, 0.85, 0.9])

        p = ball(u, v)
        d_u = (ball(u + 1e-4, v) - ball(u - 1e-4, v)) * (du / 2e-4)[:, None]
        d_v = (ball(u, v + 1e-4) - ball(u, v - 1e-4)) * (dv / 2e-4)[:, None]
        rgb = _colour(a, rng, u * 2, np.cross(d_u, d_v))
        return [surface_part(p, d_u, d_v, rgb, spread=0.8, inside=centre).scaled(np.array([1.3, 0.9, 1.0]))]
    if a.hair_style == "ponytail":
        d = normalize(np.array([[0.0, 0.2, -1.0]]))
        start = c + (base_radius(g, d)[0] + 0.004) * d[0]
        s = np.linspace(0, 1, 40)
        length = 0.25 * a.hair_volume
        line = start[None, :] + np.stack([0.004 * np.sin(6 * s), -length * s, -0.05 * np.sin(np.pi * s * 0.7) - 0.02 * s], -1)
        radius = 0.02 * (1.0 - 0.55 * s) * (0.8 + 0.2 * a.hair_volume) + 0.004 * np.exp(-((s - 0.04) / 0.03) ** 2)
        return [_tube(line, radius, 24, a, rng)]
    return []


def beard_part(g: HeadGeometry, a: HeadAttributes, surf: SampledSurface, rng: np.random.Generator) -> Part:
    """A thin shell of short strands over the beard area (full beard and goatee; stubble is painted only)."""
    from training.synthetic_heads.regions import beard_mask

    if a.beard not in ("full", "goatee"):
        return Part.empty()
    m = beard_mask(g, a, surf.p_base, surf.d)
    keep = m > 0.5
    t = (0.007 if a.beard == "full" else 0.005) * (0.6 + 0.4 * m[keep])
    t = t * (1 + 0.6 * smoothstep(-0.02, -0.06, surf.p_base[keep, 1] - g.mouth_y))  # fuller on the chin
    p = surf.p[keep] + t[:, None] * surf.d[keep]
    u = np.arctan2(surf.d[keep, 0], surf.d[keep, 2])
    normal = surf.normal[keep]
    rgb = _colour(a, rng, u * 3, normal) * 0.85
    part = surface_part(p, surf.d_v[keep], surf.d_u[keep], rgb, spread=0.8, inside=np.array(g.centre))
    return part.scaled(np.array([1.4, 0.8, 1.0]))
