"""The skin surface of the head with everything painted on it: skin tone and blotches, cheeks, lips, mouth
and teeth, eyebrows, nostrils, scalp under the hair, stubble, and baked light (head units)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.synthetic_heads.attributes import HeadAttributes, hair_rgb, skin_rgb
from training.synthetic_heads.regions import beard_mask, hair_mask, hairline_y
from training.synthetic_heads.skull import HeadGeometry, head_points, mouth_line_y, relief
from training.synthetic_heads.surfaces import (
    Part, PlaneWaves, light_direction, refine_grid, ring_grid, shade, smoothstep, sphere_dirs, surface_part,
)

ROWS, EQUATOR = 52, 100  # latitude rows and samples on the equator of the head surface (~4k Gaussians)
FRONT_DENSITY = 2.0  # the face gets this many times more samples per angle than the back of the head
MAX_STRETCH = 1.5  # samples the relief stretches beyond this factor are split
_EPS = 1e-4


@dataclass(frozen=True)
class SampledSurface:
    """Samples of the radial head surface: directions, points and scaled parameter derivatives ``[N, 3]``."""

    d: np.ndarray
    p: np.ndarray
    p_base: np.ndarray
    d_u: np.ndarray
    d_v: np.ndarray

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.d_u, self.d_v)


def sample_head_surface(g: HeadGeometry, rng: np.random.Generator, rows: int = ROWS,
                        equator: int = EQUATOR) -> SampledSurface:
    """Sample the head surface in latitude rings, denser on the face (:func:`ring_grid`); where the relief
    stretches a sample (steep sides of the nose, lips, chin) to more than :data:`MAX_STRETCH` times its
    spacing on a sphere of radius 0.16, it is split along the stretched parameter."""
    u, v, du, dv = ring_grid(rows, equator, rng, front_density=FRONT_DENSITY, v_focus=(-0.15, FRONT_DENSITY))
    u, v, du, dv = refine_grid(lambda uu, vv: head_points(g, sphere_dirs(uu, vv)), u, v, du, dv, 0.16, MAX_STRETCH)
    return _sample(g, u, v, du, dv)


def _sample(g: HeadGeometry, u, v, du, dv) -> SampledSurface:
    d = sphere_dirs(u, v)
    p = head_points(g, d)
    p_base = head_points(g, d, with_relief=False)
    at = lambda uu, vv: head_points(g, sphere_dirs(uu, vv))  # noqa: E731
    d_u = (at(u + _EPS, v) - at(u - _EPS, v)) * (du / (2 * _EPS))[:, None]
    d_v = (at(u, v + _EPS) - at(u, v - _EPS)) * (dv / (2 * _EPS))[:, None]
    return SampledSurface(d, p, p_base, d_u, d_v)


def eyebrow_mask(g: HeadGeometry, a: HeadAttributes, p: np.ndarray, front: np.ndarray) -> np.ndarray:
    """``[N]`` eyebrows: an arch above each eye, thicker toward the nose, raised a little by a smile."""
    ax, y = np.abs(p[:, 0]), p[:, 1]
    s = (ax - (g.eye_x - 0.024)) / 0.052  # 0 at the inner end, 1 at the outer end
    arch = g.brow_y - 0.004 + 0.009 * np.sin(np.clip(s, 0, 1) * np.pi * 0.85) + 0.002 * a.smile
    half_h = (0.0022 + 0.0035 * a.eyebrow_thickness) * (1.15 - 0.6 * np.clip(s, 0, 1))
    inside = smoothstep(-0.06, 0.0, s) * smoothstep(1.06, 0.96, s)
    return inside * smoothstep(half_h, half_h * 0.55, np.abs(y - arch)) * front


def paint_face(g: HeadGeometry, a: HeadAttributes, surf: SampledSurface, rng: np.random.Generator) -> np.ndarray:
    """``[N, 3]`` unlit colour of every head-surface sample."""
    p, d = surf.p_base, surf.d
    x, y = p[:, 0], p[:, 1]
    ax = np.abs(x)
    front = smoothstep(0.2, 0.6, d[:, 2])
    skin = skin_rgb(a)
    blotch = PlaneWaves(rng, 12.0)(p)
    rgb = skin[None, :] * (1.0 + 0.035 * blotch)[:, None]
    # Warm cheeks and nose tip.
    redden = 0.10 * np.exp(-0.5 * (((ax - g.eye_x - 0.01) / 0.02) ** 2 + ((y - g.eye_y + 0.045) / 0.018) ** 2))
    rgb = rgb * (1 - redden[:, None]) + redden[:, None] * (skin * np.array([1.05, 0.62, 0.58]))
    # Lips.
    ml = mouth_line_y(g, x)
    w = np.exp(-0.5 * (x / g.mouth_half_w) ** 4)
    bow = 0.0015 * np.exp(-0.5 * (x / 0.006) ** 2)  # cupid's bow: a dip in the upper lip's middle
    upper = np.exp(-0.5 * ((y - ml - 0.004 + bow) / (0.0042 * g.lip_h / 0.0065)) ** 4)
    lower = np.exp(-0.5 * ((y - ml + 0.0055) / (0.0055 * g.lip_h / 0.0065)) ** 4)
    lip = w * np.maximum(upper, lower) * front
    lip_col = skin * np.array([0.9, 0.68, 0.66]) * (1 - a.lip_tint) + a.lip_tint * np.array([0.68, 0.27, 0.3])
    rgb = rgb * (1 - lip[:, None]) + lip[:, None] * lip_col
    # Mouth: a dark line, or teeth between parted lips.
    gap = 0.0032 if a.teeth else 0.0011
    line = w * smoothstep(gap + 0.0012, gap, np.abs(y - ml)) * front
    if a.teeth:
        inner = w * smoothstep(gap, gap - 0.0012, np.abs(y - ml)) * front * smoothstep(0.9, 0.7, ax / g.mouth_half_w)
        rgb = rgb * (1 - line[:, None]) + line[:, None] * np.array([0.22, 0.07, 0.07])
        rgb = rgb * (1 - inner[:, None]) + inner[:, None] * np.array([0.93, 0.91, 0.86])
    else:
        rgb = rgb * (1 - line[:, None]) + line[:, None] * (lip_col * 0.45)
    # Scalp under the hair, eyebrows and beard colours.
    hair = hair_rgb(a)
    scalp = hair_mask(g, a, p, d)
    rgb = rgb * (1 - scalp[:, None]) + scalp[:, None] * (0.75 * hair + 0.25 * skin * 0.5)
    brow_col = hair * 0.8 if a.hair_color != "grey" else np.array([0.45, 0.43, 0.41])
    if a.hair_style == "bald" and a.hair_color in ("blond", "grey"):
        brow_col = skin * 0.55
    brows = eyebrow_mask(g, a, p, front)
    rgb = rgb * (1 - 0.9 * brows[:, None]) + 0.9 * brows[:, None] * brow_col
    if a.beard != "none":
        beard = beard_mask(g, a, p, d) * (0.45 if a.beard == "stubble" else 1.0)
        rgb = rgb * (1 - beard[:, None]) + beard[:, None] * hair * 0.85
    return np.clip(rgb, 0, 1)


def skin_part(g: HeadGeometry, a: HeadAttributes, rng: np.random.Generator) -> tuple[Part, SampledSurface]:
    """The head surface as discs, painted and lit; also returns the samples (other parts reuse them)."""
    surf = sample_head_surface(g, rng)
    rgb = paint_face(g, a, surf, rng)
    dent = np.minimum(relief(g, surf.p_base, surf.d), 0.0)
    occlusion = 1.0 + 18.0 * dent  # eye sockets and the mouth groove are darker
    n = surf.normal / np.maximum(np.linalg.norm(surf.normal, axis=-1, keepdims=True), 1e-12)
    n = n * np.where((n * surf.d).sum(-1, keepdims=True) < 0, -1.0, 1.0)
    under_jaw = smoothstep(-0.4, -0.8, n[:, 1]) * smoothstep(-0.3, 0.3, surf.d[:, 2])  # faces down, under the chin
    occlusion = occlusion * (1.0 - 0.35 * under_jaw)
    rgb = shade(rgb, surf.normal, light_direction(a.light_azimuth_deg, a.light_elevation_deg), occlusion=occlusion)
    part = surface_part(surf.p, surf.d_u, surf.d_v, rgb, inside=np.array(g.centre))
    # Open the eyes: the eyeball caps (with painted lids) replace the skin in an almond around each eye.
    ex = (np.abs(surf.p_base[:, 0]) - g.eye_x) / g.eye_r
    ey = (surf.p_base[:, 1] - g.eye_y) / (0.62 * g.eye_r)
    keep = (ex ** 2 + ey ** 2 > 1.0) | (surf.d[:, 2] < 0.3)
    if a.hair_style not in ("bald", "curly"):  # the scalp well under a closed hair shell is never seen
        u = np.arctan2(surf.d[:, 0], surf.d[:, 2])
        keep &= surf.p_base[:, 1] - hairline_y(g, a, u) < 0.03
    return part.select(keep), surf
