"""Building blocks shared by the body parts: flat oriented Gaussians on parametric surfaces.

Every part is a :class:`Part`: activated values in numpy float64 (means, unit quaternions, per-axis standard
deviations, RGB, opacity). A surface point becomes a thin disc: its two in-plane axes follow the surface
tangents, with standard deviations :data:`SPREAD` times the local sample spacing so neighbours overlap and
the surface looks solid; its third axis (the normal) is :data:`THICKNESS` times thinner.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.gaussians import GaussianSet

SPREAD = 0.8  # in-plane std-dev / sample spacing
THICKNESS = 0.2  # normal std-dev / in-plane std-dev
OPACITY = 0.97


@dataclass(frozen=True)
class Part:
    """A set of activated Gaussians (numpy, float64), N of them.

    Attributes:
        means: ``[N, 3]`` world space. quats: ``[N, 4]`` unit (w, x, y, z). scales: ``[N, 3]`` std-devs, > 0.
        rgb: ``[N, 3]`` in [0, 1]. opacity: ``[N]`` in (0, 1).
        normal: ``[N, 3]`` unit outward normal of a disc on a closed surface (one that is hidden whenever it
            faces away from the camera), or zeros for two-sided parts (ears, hanging hair, glasses).
    """

    means: np.ndarray
    quats: np.ndarray
    scales: np.ndarray
    rgb: np.ndarray
    opacity: np.ndarray
    normal: np.ndarray

    FIELDS = ("means", "quats", "scales", "rgb", "opacity", "normal")

    def __len__(self) -> int:
        return self.means.shape[0]

    def select(self, keep: np.ndarray) -> Part:
        return Part(*(getattr(self, f)[keep] for f in self.FIELDS))

    def scaled(self, s: float | np.ndarray) -> Part:
        """The same Gaussians with ``scales`` multiplied by ``s`` (per axis if ``[3]``)."""
        return Part(self.means, self.quats, self.scales * s, self.rgb, self.opacity, self.normal)

    @staticmethod
    def empty() -> Part:
        return Part(*(np.zeros((0, k)) for k in (3, 4, 3, 3)), np.zeros(0), np.zeros((0, 3)))

    @staticmethod
    def cat(parts: list[Part]) -> Part:
        return Part(*(np.concatenate([getattr(p, f) for p in parts]) for f in Part.FIELDS))

    def to_gaussians(self) -> GaussianSet:
        """A float32 :class:`GaussianSet` (SH degree 0) holding these Gaussians."""
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
        scales = np.maximum(self.scales, 1e-6)
        return GaussianSet.from_activated(t(self.means), t(np.clip(self.rgb, 0, 1)), t(self.opacity), t(scales),
                                          t(self.quats))


def normalize(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def frame_quats(tangent: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """``[N, 4]`` quaternions (w, x, y, z) of the rotation whose columns are (tangent', bitangent, normal).

    ``tangent`` is made orthogonal to ``normal`` first; both ``[N, 3]``.
    """
    n = normalize(normal)
    t = normalize(tangent - (tangent * n).sum(-1, keepdims=True) * n)
    b = np.cross(n, t)
    R = np.stack([t, b, n], axis=-1)  # columns
    return matrix_to_quat(R)


def matrix_to_quat(R: np.ndarray) -> np.ndarray:
    """``[N, 3, 3]`` rotation matrices -> ``[N, 4]`` unit quaternions (w, x, y, z) (Shepperd's method)."""
    m00, m11, m22 = R[:, 0, 0], R[:, 1, 1], R[:, 2, 2]
    trace = m00 + m11 + m22
    q = np.empty((R.shape[0], 4))
    cands = np.stack([trace, m00, m11, m22], -1).argmax(-1)
    for k in range(4):
        sel = cands == k
        if not sel.any():
            continue
        r = R[sel]
        if k == 0:
            s = np.sqrt(1.0 + trace[sel]) * 2
            q[sel] = np.stack([0.25 * s, (r[:, 2, 1] - r[:, 1, 2]) / s, (r[:, 0, 2] - r[:, 2, 0]) / s, (r[:, 1, 0] - r[:, 0, 1]) / s], -1)
        elif k == 1:
            s = np.sqrt(1.0 + r[:, 0, 0] - r[:, 1, 1] - r[:, 2, 2]) * 2
            q[sel] = np.stack([(r[:, 2, 1] - r[:, 1, 2]) / s, 0.25 * s, (r[:, 0, 1] + r[:, 1, 0]) / s, (r[:, 0, 2] + r[:, 2, 0]) / s], -1)
        elif k == 2:
            s = np.sqrt(1.0 + r[:, 1, 1] - r[:, 0, 0] - r[:, 2, 2]) * 2
            q[sel] = np.stack([(r[:, 0, 2] - r[:, 2, 0]) / s, (r[:, 0, 1] + r[:, 1, 0]) / s, 0.25 * s, (r[:, 1, 2] + r[:, 2, 1]) / s], -1)
        else:
            s = np.sqrt(1.0 + r[:, 2, 2] - r[:, 0, 0] - r[:, 1, 1]) * 2
            q[sel] = np.stack([(r[:, 1, 0] - r[:, 0, 1]) / s, (r[:, 0, 2] + r[:, 2, 0]) / s, (r[:, 1, 2] + r[:, 2, 1]) / s, 0.25 * s], -1)
    return normalize(q)


def surface_part(points: np.ndarray, d_u: np.ndarray, d_v: np.ndarray, rgb: np.ndarray,
                 opacity: float | np.ndarray = OPACITY, spread: float = SPREAD,
                 thickness: float = THICKNESS, inside: np.ndarray | None = None) -> Part:
    """Discs on a sampled parametric surface.

    Args:
        points: ``[N, 3]`` surface samples. d_u, d_v: ``[N, 3]`` the surface's derivative along each
            parameter times that parameter's sample step, so their lengths are the local spacings.
        rgb: ``[N, 3]``. opacity: scalar or ``[N]``.
        inside: ``[3]`` or ``[N, 3]`` a point inside the closed surface the discs lie on (their normals are
            turned away from it); ``None`` for an open, two-sided surface (normals stored as zeros).
    """
    normal = np.cross(d_u, d_v)
    su = np.maximum(np.linalg.norm(d_u, axis=-1), 1e-6)  # spacing along u
    sv = np.maximum(np.linalg.norm(normal, axis=-1) / su, 1e-6)  # spacing across u (area / su)
    scales = np.stack([spread * su, spread * sv, thickness * spread * np.minimum(su, sv)], -1)
    quats = frame_quats(d_u + 1e-12, normal + 1e-12)
    op = np.broadcast_to(np.asarray(opacity, dtype=np.float64), (points.shape[0],)).copy()
    if inside is None:
        n = np.zeros_like(points)
    else:
        n = normalize(normal)
        n = n * np.where((n * (points - inside)).sum(-1, keepdims=True) < 0, -1.0, 1.0)
    return Part(points, quats, scales, np.ascontiguousarray(rgb), op, n)


def ring_grid(n_rows: int, n_equator: int, rng: np.random.Generator, v_min: float = -np.pi / 2,
              v_max: float = np.pi / 2, front_density: float = 1.0,
              v_focus: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sample a sphere-like (u, v) domain in rings: ``v`` (latitude, rad) in ``n_rows`` rows between v_min and
    v_max, each row with ``~n_equator * cos(v)`` samples of ``u`` (longitude in (-pi, pi], 0 = front +z),
    shifted by a random phase per row so rows do not line up.

    ``front_density`` > 1 packs samples toward the front (u = 0) at the expense of the back (``u = s - k sin s``
    with uniform ``s``; density ratio front/back = ``front_density``); ``v_focus = (latitude, ratio)`` packs
    rows toward that latitude (row density there ``ratio`` times the density far from it).
    Returns ``u [N]``, ``v [N]`` and the local steps ``du [N]``, ``dv [N]`` (rad).
    """
    k = (front_density - 1) / (front_density + 1)
    w = np.linspace(0, 1, n_rows + 1)
    w = 0.5 * (w[1:] + w[:-1])
    vs, dvs = v_min + (v_max - v_min) * w, np.full(n_rows, (v_max - v_min) / n_rows)
    if v_focus is not None:  # map uniform t to v with the row density peaking at v_focus[0]
        t = (np.arange(n_rows) + 0.5) / n_rows
        grid = np.linspace(v_min, v_max, 2049)
        dens = 1.0 + (v_focus[1] - 1) * np.exp(-0.5 * ((grid - v_focus[0]) / 0.5) ** 2)
        cdf = np.concatenate([[0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(grid))])
        cdf /= cdf[-1]
        vs = np.interp(t, cdf, grid)
        dvs = (1.0 / n_rows) / (np.interp(vs, grid, dens) / np.trapezoid(dens, grid))
    counts = np.maximum(3, np.round(n_equator * np.cos(vs)).astype(int))
    u_list, v_list, du_list, dv_list = [], [], [], []
    for v, dv, n in zip(vs, dvs, counts):
        step = 2 * np.pi / n
        s = -np.pi + (np.arange(n) + rng.uniform()) * step
        u_list.append(s - k * np.sin(s))
        v_list.append(np.full(n, v))
        du_list.append(step * (1 - k * np.cos(s)))
        dv_list.append(np.full(n, dv))
    return tuple(np.concatenate(x) for x in (u_list, v_list, du_list, dv_list))


def sphere_dirs(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``[N, 3]`` unit directions for longitude ``u`` (0 = +z, positive toward +x) and latitude ``v`` (+y up)."""
    cv = np.cos(v)
    return np.stack([cv * np.sin(u), np.sin(v), cv * np.cos(u)], -1)


class PlaneWaves:
    """Smooth random scalar field: ``sum_k a_k sin(w_k . p + phi_k)`` normalised to std ~1 (deterministic
    for a given ``rng``); ``freq`` is the mean spatial frequency in cycles per scene unit."""

    def __init__(self, rng: np.random.Generator, freq: float, count: int = 8) -> None:
        dirs = normalize(rng.normal(size=(count, 3)))
        self.w = dirs * (2 * np.pi * freq * rng.uniform(0.6, 1.4, size=(count, 1)))
        self.phase = rng.uniform(0, 2 * np.pi, size=count)
        self.amp = np.sqrt(2.0 / count)

    def __call__(self, p: np.ndarray) -> np.ndarray:
        return self.amp * np.sin(p @ self.w.T + self.phase).sum(-1)


def smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def light_direction(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """``[3]`` unit vector toward the key light (azimuth about +y from +z toward +x, elevation up)."""
    a, e = np.radians(azimuth_deg), np.radians(elevation_deg)
    return np.array([np.cos(e) * np.sin(a), np.sin(e), np.cos(e) * np.cos(a)])


def shade(rgb: np.ndarray, normal: np.ndarray, light: np.ndarray, ambient: float = 0.5,
          diffuse: float = 0.62, occlusion: np.ndarray | float = 1.0) -> np.ndarray:
    """Bake a simple light into colours: ``rgb * occlusion * (ambient + diffuse * wrap(n . l))`` plus a soft
    sky term (up-facing brighter), so the 3D shape reads in 2D. ``normal [N, 3]``, ``light [3]`` unit."""
    n = normalize(normal)
    ndl = n @ light
    wrap = np.clip((ndl + 0.25) / 1.25, 0, 1)
    sky = 0.08 * n[:, 1]
    f = (ambient + diffuse * wrap + sky) * occlusion
    return np.clip(rgb * f[:, None], 0, 1)


def ellipsoid_surface(centre: np.ndarray, axes: np.ndarray, radii: np.ndarray, spacing: float,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Samples of an ellipsoid ``centre + axes @ (radii * unit_sphere)`` about ``spacing`` apart.

    ``axes [3, 3]`` has the ellipsoid's axes as columns (orthonormal). Returns ``points``, ``d_u``, ``d_v``
    (scaled derivatives, see :func:`surface_part`) and the unit-sphere directions, each ``[N, 3]``.
    """
    big = float(np.max(radii))
    rows = max(4, int(np.ceil(np.pi * big / spacing)))
    u, v, du, dv = ring_grid(rows, 2 * rows, rng)

    def at(uu, vv):
        return centre + (sphere_dirs(uu, vv) * radii) @ axes.T

    p = at(u, v)
    d_u = (at(u + 1e-4, v) - at(u - 1e-4, v)) * (du / 2e-4)[:, None]
    d_v = (at(u, v + 1e-4) - at(u, v - 1e-4)) * (dv / 2e-4)[:, None]
    return p, d_u, d_v, sphere_dirs(u, v)


def refine_grid(points_fn, u: np.ndarray, v: np.ndarray, du: np.ndarray, dv: np.ndarray, radius: float,
                max_stretch: float = 1.5, max_stretch_v: float | None = None, rounds: int = 2
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split (u, v) samples that the surface ``points_fn(u, v) -> [N, 3]`` stretches to more than
    ``max_stretch`` (along v: ``max_stretch_v``, default the same) times their spacing on a sphere of
    ``radius`` (steep walls, sharp relief), so that no disc grows much beyond its neighbours; each split
    sample becomes a ku x kv grid over the same cell (k <= 6)."""
    max_stretch_v = max_stretch if max_stretch_v is None else max_stretch_v
    for _ in range(rounds):
        d_u = (points_fn(u + 1e-4, v) - points_fn(u - 1e-4, v)) * (du / 2e-4)[:, None]
        d_v = (points_fn(u, v + 1e-4) - points_fn(u, v - 1e-4)) * (dv / 2e-4)[:, None]
        nominal_u, nominal_v = radius * np.maximum(np.cos(v), 0.2) * du, radius * dv
        ku = np.ceil(np.linalg.norm(d_u, axis=-1) / (max_stretch * nominal_u)).astype(int).clip(1, 6)
        kv = np.ceil(np.linalg.norm(d_v, axis=-1) / (max_stretch_v * nominal_v)).astype(int).clip(1, 6)
        if (ku == 1).all() and (kv == 1).all():
            break
        k = ku * kv
        idx = np.repeat(np.arange(u.size), k)
        j = np.arange(idx.size) - np.repeat(np.cumsum(k) - k, k)
        ju, jv = j % ku[idx], j // ku[idx]
        nu, nv = du[idx] / ku[idx], dv[idx] / kv[idx]
        u, v = u[idx] + (ju - (ku[idx] - 1) / 2) * nu, v[idx] + (jv - (kv[idx] - 1) / 2) * nv
        du, dv = nu, nv
    return u, v, du, dv
