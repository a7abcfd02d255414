"""Camera search: several camera hypotheses per view, fitted briefly side by side, the best one kept.

A camera estimate from landmarks scatters by several degrees; the gradient refinement of
:func:`core.latent_fit.fit_latent_steps` only walks downhill from it. The search orbits every view's camera
about the head centre (``target.pivot``) by a grid of yaw/pitch offsets, fits one latent per hypothesis for a
short prefix (core.latent_fit batches them as heads: head ``b * K + k`` is hypothesis ``k`` of head ``b``),
then scores every hypothesis of every view with the fit's pixel loss and keeps, per view, the lowest::

    yaw, pitch = grid_offsets(9, 4.0)                      # [9] degrees each: a 3x3 grid of +-4 deg
    found = search_cameras(G, target, LatentFitConfig(space="w"), yaw, pitch, steps=20)
    found.cameras                                          # Cameras [B, V], the chosen hypotheses
    found.ws                                               # [B, n, w_dim]: the prefix latent of each head's best
    rest = fit_latent(G, dataclasses.replace(target, cameras=found.cameras), config, ws_init=found.ws)

Offsets: ``yaw`` turns the camera about world +y through the pivot (positive toward +x, core/camera.py's
orbit convention), ``pitch`` about the camera's own right axis (positive: the camera rises).
"""

from __future__ import annotations

import dataclasses
import math
import threading
from dataclasses import dataclass
from typing import Iterator

import torch

from core.camera import Cameras
from core.generator import Generator
from core.image_metrics import mse, ssim
from core.latent_fit import FitTarget, LatentFitConfig, LatentFitStep, fit_latent_steps, orbit_refine, render_latent


def grid_offsets(candidates: int, step_deg: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(yaw_deg [K], pitch_deg [K])`` with the unchanged camera first: 1 (none), 3 (yaw -d, +d), 5 (a cross:
    yaw and pitch +-d) or n*n for odd n (an n x n grid spanning +-d in yaw and pitch)."""
    if step_deg < 0:
        raise ValueError(f"the search step must be >= 0 degrees, got {step_deg}")
    d = float(step_deg)
    if candidates == 1:
        pairs = [(0.0, 0.0)]
    elif candidates == 3:
        pairs = [(0.0, 0.0), (-d, 0.0), (d, 0.0)]
    elif candidates == 5:
        pairs = [(0.0, 0.0), (-d, 0.0), (d, 0.0), (0.0, -d), (0.0, d)]
    else:
        n = math.isqrt(candidates) if candidates > 0 else 0
        if n * n != candidates or n % 2 == 0:
            raise ValueError(f"camera candidates must be 1, 3, 5 or the square of an odd number, got {candidates}")
        ticks = torch.linspace(-d, d, n).tolist()
        pairs = [(0.0, 0.0)] + [(y, p) for p in ticks for y in ticks if (y, p) != (0.0, 0.0)]
    yaw, pitch = zip(*pairs)
    return torch.tensor(yaw), torch.tensor(pitch)


def _axis_angle(axis: torch.Tensor, angle_rad: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(axis, dim=-1) * angle_rad[..., None]


def offset_cameras(cameras: Cameras, yaw_deg: torch.Tensor, pitch_deg: torch.Tensor,
                   pivot: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> Cameras:
    """``cameras [...]`` orbited about ``pivot`` by every offset ``yaw_deg [K]``, ``pitch_deg [K]`` (degrees;
    pitch first, about the camera's right axis, then yaw about world +y) -> ``Cameras [K, ...]``."""
    K, lead = yaw_deg.shape[0], tuple(cameras.batch_shape)
    c2w = cameras.cam2world.expand((K,) + lead + (4, 4))
    cams = Cameras(c2w, cameras.intrinsics.expand((K,) + lead + (3, 3)))
    like = c2w[..., 0, 0]
    view = (K,) + (1,) * len(lead)
    pitch = torch.deg2rad(pitch_deg.to(like)).reshape(view).expand_as(like)
    yaw = torch.deg2rad(yaw_deg.to(like)).reshape(view).expand_as(like)
    zero = torch.zeros(like.shape + (3,), dtype=like.dtype, device=like.device)
    # the camera's right axis (cam2world column 0); rotating the centre about it by -pitch raises the camera
    cams = orbit_refine(cams, _axis_angle(c2w[..., :3, 0], -pitch), zero, pivot)
    up = torch.tensor([0.0, 1.0, 0.0], dtype=like.dtype, device=like.device).expand_as(zero)
    return orbit_refine(cams, _axis_angle(up, yaw), zero, pivot)


def hypothesis_target(target: FitTarget, yaw_deg: torch.Tensor, pitch_deg: torch.Tensor) -> FitTarget:
    """``target`` (B heads, V views) as ``B * K`` heads, head ``b * K + k`` seen through offset ``k``."""
    B, V = target.heads, target.views
    K = yaw_deg.shape[0]
    cams = target.cameras
    if tuple(cams.batch_shape) == (V,):
        cams = Cameras(cams.cam2world.expand(B, V, 4, 4), cams.intrinsics.expand(B, V, 3, 3))
    off = offset_cameras(cams, yaw_deg, pitch_deg, target.pivot)            # [K, B, V]
    c2w = off.cam2world.transpose(0, 1).reshape(B * K, V, 4, 4)
    K3 = off.intrinsics.transpose(0, 1).reshape(B * K, V, 3, 3)
    rep = lambda x: None if x is None else x.repeat_interleave(K, 0)  # noqa: E731
    return FitTarget(rep(target.images), Cameras(c2w.contiguous(), K3.contiguous()), rep(target.weights),
                     target.background, target.pivot)


def prefix_config(config: LatentFitConfig, steps: int) -> LatentFitConfig:
    """The search prefix's settings: ``steps`` steps of ``config`` at its rate (warm-up, no ramp-down), every
    view each step, the cameras held at their hypotheses (so the scores compare the hypotheses themselves)."""
    return dataclasses.replace(config, steps=steps, rampdown=0.0, camera_lr=0.0, views_per_step=0)


@dataclass(frozen=True, eq=False)
class CameraSearch:
    """The outcome of a search over K hypotheses for B heads of V views (tensors on the fit's device).

    Attributes:
        cameras: ``[B, V]`` each view's chosen hypothesis.
        ws: ``[B, n, w_dim]`` the prefix latent of each head's best hypothesis (lowest loss summed over views).
        choice: ``[B, V]`` long, the index of each view's chosen offset.
        scores: ``[B, K, V]`` each hypothesis's pixel loss per view after the prefix (lower is better).
        yaw_deg, pitch_deg: ``[K]`` the offsets tried.
    """

    cameras: Cameras
    ws: torch.Tensor
    choice: torch.Tensor
    scores: torch.Tensor
    yaw_deg: torch.Tensor
    pitch_deg: torch.Tensor


def score_hypotheses(G: Generator, hyp: FitTarget, ws: torch.Tensor, config: LatentFitConfig) -> torch.Tensor:
    """``[B * K, V]`` pixel loss (the fit's MSE + SSIM terms) of each hypothesis head ``ws`` against its views."""
    with torch.no_grad():
        pred = render_latent(G, ws, hyp.cameras, hyp.images.shape[-1], hyp.background)
        score = config.mse_weight * mse(pred, hyp.images, hyp.weights)
        if config.ssim_weight > 0:
            score = score + config.ssim_weight * (1.0 - ssim(pred, hyp.images, hyp.weights))
    return score


def pick_hypotheses(hyp: FitTarget, ws: torch.Tensor, scores: torch.Tensor, yaw_deg: torch.Tensor,
                    pitch_deg: torch.Tensor) -> CameraSearch:
    """Per view the hypothesis of lowest ``scores [B * K, V]``; per head the latent of the lowest sum.

    With several photos of one head (V > 1) the views may keep cameras from different hypotheses while the
    latent comes from the one that fits all views best: each photo's camera is its own unknown, the head's
    latent is shared, and the rest of stage 1 refines both from there. With one photo (the usual case) the
    camera and the latent come from the same hypothesis."""
    K = yaw_deg.shape[0]
    BK, V = scores.shape
    B = BK // K
    s = scores.reshape(B, K, V)
    choice = s.argmin(1)                                                       # [B, V]
    heads = torch.arange(B, device=s.device)[:, None] * K + choice            # [B, V] rows of hyp
    views = torch.arange(V, device=s.device)[None].expand(B, V)
    cams = Cameras(hyp.cameras.cam2world[heads, views], hyp.cameras.intrinsics[heads, views])
    best = torch.arange(B, device=s.device) * K + s.sum(2).argmin(1)
    return CameraSearch(cams, ws[best].clone(), choice, s, yaw_deg, pitch_deg)


def search_steps(G: Generator, target: FitTarget, config: LatentFitConfig, yaw_deg: torch.Tensor,
                 pitch_deg: torch.Tensor, steps: int, ws_init: torch.Tensor | None = None,
                 cancel: threading.Event | None = None, cuda_graphs: bool | None = None
                 ) -> Iterator[LatentFitStep | CameraSearch]:
    """The search as a generator: the prefix's :class:`LatentFitStep` (``B * K`` heads), then one
    :class:`CameraSearch` (not yielded if cancelled before the prefix's end)."""
    device = next(G.parameters()).device
    hyp = hypothesis_target(target.to(device), yaw_deg.to(device), pitch_deg.to(device))
    cfg = prefix_config(config, steps)
    if ws_init is not None:
        ws_init = ws_init.to(device).repeat_interleave(yaw_deg.shape[0], 0) if ws_init.shape[0] > 1 else ws_init
    last = None
    for last in fit_latent_steps(G, hyp, cfg, ws_init=ws_init, cancel=cancel, cuda_graphs=cuda_graphs):
        yield last
    if last is None or last.step < steps:
        return
    ws = last.ws.clone()
    yield pick_hypotheses(hyp, ws, score_hypotheses(G, hyp, ws, config), yaw_deg, pitch_deg)


def search_cameras(G: Generator, target: FitTarget, config: LatentFitConfig, yaw_deg: torch.Tensor,
                   pitch_deg: torch.Tensor, steps: int, ws_init: torch.Tensor | None = None) -> CameraSearch:
    """Run :func:`search_steps` to the end and return its :class:`CameraSearch`."""
    out = None
    for out in search_steps(G, target, config, yaw_deg, pitch_deg, steps, ws_init):
        pass
    if not isinstance(out, CameraSearch):
        raise ValueError("the camera search took no step")
    return out


def _best_of(step: LatentFitStep, K: int) -> LatentFitStep:
    """A prefix step (``B * K`` heads) as B heads: each head's hypothesis of lowest total loss this step."""
    BK = step.ws.shape[0]
    B = BK // K
    best = torch.arange(B, device=step.ws.device) * K + step.losses["total"].reshape(B, K).argmin(1)
    return LatentFitStep(step.step, step.total, step.lr, step.ws[best], step.cameras[best],
                         {k: v[best] for k, v in step.losses.items()}, step.pred[best], step.views)


def fit_latent_searched(G: Generator, target: FitTarget, config: LatentFitConfig, yaw_deg: torch.Tensor,
                        pitch_deg: torch.Tensor, steps: int, ws_init: torch.Tensor | None = None,
                        extra_loss=None, cancel: threading.Event | None = None, cuda_graphs: bool | None = None
                        ) -> Iterator[LatentFitStep]:
    """:func:`core.latent_fit.fit_latent_steps` preceded by a camera search: ``steps`` of ``config.steps`` search
    the offsets (pixel terms only: ``extra_loss`` is not applied to the hypotheses), the rest fit from the
    chosen cameras and latent with ``config`` (its schedule and camera refinement over the remaining steps).
    Yields ``config.steps`` steps of B heads numbered 1 .. ``config.steps`` (a prefix step shows each head's
    best hypothesis so far). With one offset or ``steps`` 0 it is the plain fit."""
    if yaw_deg.shape[0] <= 1 or steps <= 0:
        yield from fit_latent_steps(G, target, config, ws_init, extra_loss, cancel, cuda_graphs)
        return
    if steps >= config.steps:
        raise ValueError(f"the camera search ({steps} steps) must leave steps of the fit ({config.steps})")
    K, found = yaw_deg.shape[0], None
    for s in search_steps(G, target, config, yaw_deg, pitch_deg, steps, ws_init, cancel, cuda_graphs):
        if isinstance(s, CameraSearch):
            found = s
        else:
            b = _best_of(s, K)
            yield LatentFitStep(b.step, config.steps, b.lr, b.ws, b.cameras, b.losses, b.pred, b.views)
    if found is None:
        return
    rest = dataclasses.replace(config, steps=config.steps - steps)
    moved = FitTarget(target.images, found.cameras, target.weights, target.background, target.pivot)
    for s in fit_latent_steps(G, moved, rest, found.ws, extra_loss, cancel, cuda_graphs):
        yield LatentFitStep(s.step + steps, config.steps, s.lr, s.ws, s.cameras, s.losses, s.pred, s.views)
