"""3D-measured attributes: quantities read directly from generated Gaussians, their sliders, and target
matching (move the latent until the measured value matches a picked colour or a typed value).

What is measured is described by :class:`core.editing.measured_spec.Measurement` (a box in world space and a
quantity). Gaussians are weighted by ``opacity * box weight``, where the box weight falls from 1 to 0 over
``EDGE`` scene units at the box faces (so the value changes smoothly as Gaussians move). Colours are the
view-independent DC colours (:func:`core.gaussians.sh_dc_to_rgb`, clamped to [0, 1]). Interior Gaussians
count as much as surface ones: the value is a property of the 3D head, not of one view.

Sliders: a colour gets three directions (ridge regressions of lightness ``(r+g+b)/3``, warmth ``r - b`` and
tint ``g - (r+b)/2`` on w), a width one (regression of the width). Target matching solves for the values of
these sliders with damped Gauss-Newton steps (Jacobian by forward differences, one batched synthesis per
step), so the result is an ordinary slider setting: reversible, saved with the latent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generator

import numpy as np
import torch

from core.editing.boundary import fit_regression_direction
from core.editing.directions import Direction, DirectionSet
from core.editing.latent_edit import LatentEdit, apply_sliders
from core.editing.measured_spec import Measurement
from core.gaussians import GaussianSet, sh_dc_to_rgb

EDGE = 0.01  # scene units over which the box weight falls from 1 to 0
WIDTH_QUANTILES = (0.03, 0.97)


def box_weights(means: torch.Tensor, m: Measurement) -> torch.Tensor:
    """``means [..., N, 3]`` -> ``[..., N]`` in [0, 1]: 1 well inside the box, 0 outside (soft edges)."""
    c = torch.tensor(m.box.center, dtype=means.dtype, device=means.device)
    h = torch.tensor(m.box.half_size, dtype=means.dtype, device=means.device)
    inside = (h - (means - c).abs()) / EDGE + 0.5  # 0.5 on the face
    return inside.clamp(0, 1).prod(dim=-1)


def measure(gaussians: GaussianSet, m: Measurement) -> torch.Tensor:
    """The measured value of one scene (``[N]`` fields: returns ``[size]``) or a batch (``[B, size]``).

    Colour: RGB in [0, 1]; width: scene units. A box holding no opaque Gaussian gives NaN.
    """
    means = gaussians.means.float()
    weight = torch.sigmoid(gaussians.opacity_logits.float()) * box_weights(means, m)  # [..., N]
    if m.quantity == "color":
        rgb = sh_dc_to_rgb(gaussians.sh[..., 0, :].float()).clamp(0, 1)
        total = weight.sum(-1, keepdim=True)
        value = (weight[..., None] * rgb).sum(-2) / total
        return torch.where(total > 1e-6, value, torch.full_like(value, float("nan")))
    x = means[..., 0]
    order = x.argsort(dim=-1)
    xs, ws = x.gather(-1, order), weight.gather(-1, order)
    cdf = ws.cumsum(-1)
    total = cdf[..., -1:]
    cdf = cdf / total.clamp_min(1e-12)
    q = torch.tensor(WIDTH_QUANTILES, dtype=cdf.dtype, device=cdf.device).expand(*cdf.shape[:-1], 2).contiguous()
    idx = torch.searchsorted(cdf.contiguous(), q).clamp(max=xs.shape[-1] - 1)
    lo_hi = xs.gather(-1, idx)
    width = (lo_hi[..., 1:] - lo_hi[..., :1])
    return torch.where(total > 1e-6, width, torch.full_like(width, float("nan")))


def color_features(rgb: torch.Tensor | np.ndarray) -> np.ndarray:
    """``[..., 3]`` RGB -> ``[..., 3]`` (lightness, warmth, tint): ``(r+g+b)/3``, ``r - b``, ``g - (r+b)/2``."""
    c = np.asarray(rgb, dtype=np.float64)
    r, g, b = c[..., 0], c[..., 1], c[..., 2]
    return np.stack([(r + g + b) / 3, r - b, g - (r + b) / 2], axis=-1)


def measure_ws(G: torch.nn.Module, ws: torch.Tensor, m: Measurement, batch: int = 16) -> np.ndarray:
    """``ws [B, num_ws, w_dim]`` (or ``[B, w_dim]``) -> ``[B, size]`` float64 measured values."""
    device = next(G.parameters()).device
    out = []
    with torch.no_grad():
        for start in range(0, ws.shape[0], batch):
            gs = G.synthesis(ws[start:start + batch].to(device=device, dtype=torch.float32)).gaussians
            out.append(measure(gs, m).double().cpu())
    return torch.cat(out).numpy()


def fit_measured_directions(G: torch.nn.Module, m: Measurement, directions: DirectionSet, ws: torch.Tensor,
                            ridge: float = 1e-2) -> tuple[Direction, ...]:
    """The sliders of ``m`` from sampled ``ws [N, w_dim]`` (w of random z): synthesise each, measure it,
    regress the features on w. Samples whose box is empty are dropped (at least 8 must remain)."""
    values = measure_ws(G, ws, m)
    ok = np.isfinite(values).all(axis=1)
    if ok.sum() < 8:
        raise ValueError(f"measurement {m.name!r}: only {int(ok.sum())} of {len(ok)} samples have opaque "
                         "Gaussians in its box; check the box against the model's head")
    feats = color_features(values[ok]) if m.quantity == "color" else values[ok]
    out = []
    for j, name in enumerate(m.direction_names):
        b = fit_regression_direction(ws[ok], feats[:, j], ridge=ridge)
        note = f"regression of {m.quantity} feature {j} on w, R^2 {b.train_score:.2f}"
        out.append(directions.make_direction(name, "measured", b.normal, note=note))
    return tuple(out)


@dataclass(frozen=True, eq=False)
class TargetMatch:
    """Result of :func:`match_target`.

    Attributes:
        edit: the input edit with the measurement's sliders set to the solution.
        target: ``[size]`` what was asked for; start, value: ``[size]`` measured before and after.
        steps: Gauss-Newton steps taken.
    """

    edit: LatentEdit
    target: np.ndarray
    start: np.ndarray
    value: np.ndarray
    steps: int

    @property
    def start_error(self) -> float:
        return float(np.linalg.norm(self.start - self.target))

    @property
    def error(self) -> float:
        return float(np.linalg.norm(self.value - self.target))


def match_target(G: torch.nn.Module, edit: LatentEdit, directions: DirectionSet, measurement: str,
                 target: tuple[float, ...] | np.ndarray, steps: int = 8, fd_step: float = 0.3,
                 max_value: float = 5.0, tol: float = 1e-3) -> TargetMatch:
    """Set the sliders of ``measurement`` so the measured value of the edited latent approaches ``target``
    (RGB in [0, 1] for a colour, scene units for a width); every other slider keeps its value.

    Args:
        fd_step: forward-difference step in slider units; max_value: sliders are kept in [-max, max];
        tol: stop when the error (Euclidean, in the quantity's units) is below this.
    """
    run = match_target_steps(G, edit, directions, measurement, target, steps, fd_step, max_value, tol)
    while True:
        try:
            next(run)
        except StopIteration as done:
            return done.value


def match_target_steps(G: torch.nn.Module, edit: LatentEdit, directions: DirectionSet, measurement: str,
                       target: tuple[float, ...] | np.ndarray, steps: int = 8, fd_step: float = 0.3,
                       max_value: float = 5.0, tol: float = 1e-3) -> Generator[int, None, TargetMatch]:
    """:func:`match_target` one synthesis at a time: yields the Gauss-Newton step in progress after every
    synthesis (so a caller such as the viewer's render worker can do other work in between) and returns the
    :class:`TargetMatch`."""
    m = directions.measurement(measurement)
    names = m.direction_names
    tgt = np.asarray(target, dtype=np.float64).reshape(-1)
    if tgt.shape != (m.size,) or not np.isfinite(tgt).all():
        raise ValueError(f"target of {measurement!r} must be {m.size} finite number(s), got {target!r}")
    a = np.array([edit.value(n) for n in names], dtype=np.float64)
    k = len(names)
    taken = 0

    def evaluate(points: np.ndarray):  # [P, k] slider values -> [P, size], one synthesis per yield
        out = []
        for p in points:
            ws = apply_sliders(edit.base, directions, {**edit.slider_values, **dict(zip(names, p))})
            out.append(measure_ws(G, ws[None], m, batch=1)[0])
            yield taken
        return np.stack(out)

    value = start = (yield from evaluate(a[None]))[0]
    lam = 1e-2
    for taken in range(1, steps + 1):
        if not np.isfinite(value).all() or np.linalg.norm(value - tgt) < tol:
            taken -= 1
            break
        probes = a[None] + fd_step * np.eye(k)
        J = (((yield from evaluate(probes)) - value[None]) / fd_step).T  # [size, k]
        r = value - tgt
        JtJ = J.T @ J
        delta = -np.linalg.solve(JtJ + lam * (np.trace(JtJ) / k + 1e-12) * np.eye(k), J.T @ r)
        cand = np.clip(a + delta, -max_value, max_value)
        new_value = (yield from evaluate(cand[None]))[0]
        if np.isfinite(new_value).all() and np.linalg.norm(new_value - tgt) < np.linalg.norm(r):
            a, value, lam = cand, new_value, lam * 0.3
        else:
            lam *= 10
    return TargetMatch(edit.with_values(dict(zip(names, a.tolist()))), tgt, start, value, taken)
