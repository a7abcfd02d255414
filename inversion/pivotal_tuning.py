"""Stage 2: pivotal tuning (PTI, Roich et al. 2022) made 3D-safe. A *copy* of the generator is tuned so that the
fixed pivot latent from stage 1 reproduces the photos; the original generator is never modified.

A single photo constrains only what it shows, and every generator weight moves every Gaussian, so unconstrained
tuning tears the head apart where the photo cannot see (the 12 dB side views of the first version). The loss
per step is therefore

- the stage-1 objective (MSE, 1 - SSIM, LPIPS, ID) of the pivot's renders from the photos' cameras, plus
- ``geometry_weight`` x the geometry anchor: the pivot's Gaussian centres (in pixels at the render
  resolution), log-scales, opacity logits and rotations stay where stage 1 put them (mean squared change);
  colours are free, so what the photo shows is painted onto the stage-1 surface;
- ``view_weight`` x the view anchor: renders of the pivot from ``anchor_views`` cameras turned away from the
  photos (yaw + 90, 180, 270 deg, one per step in turn) stay as after stage 1 (MSE), so regions no photo
  sees keep the generator's prior;
- ``locality_weight`` x PTI's locality regulariser: a latent ``alpha`` from the pivot toward a psi-truncated
  random latent, rendered from a random view by the original and by the tuned generator (MSE, + LPIPS when the
  objective has it). The ``locality_pool`` latents, views and original renders are drawn once before the run
  (PTI draws a new one each step; 0 does that).

Adam on every generator parameter, betas (0.9, 0.999); optional early stop once LPIPS drops to
``lpips_stop``. On CUDA the tuned copy's synthesis runs from CUDA graphs (:mod:`core.cuda_graphs`).

:class:`GeneratorSwap` is the small holder a viewer keeps: the original, the current (tuned or original) and
:meth:`GeneratorSwap.restore`.
"""

from __future__ import annotations

import copy
import math
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch

from core.camera import Cameras, orbit_angles, orbit_cameras
from core.gaussians import SH_C0, GaussianSet
from core.generator import Generator
from core.latent_fit import Schedule, render_gaussians
from inversion.objective import GraphedLoss, LossWeights, Objective, lpips_size
from inversion.preprocess import InversionTarget, check_max_resolution
from inversion.steps import InversionStep, batch_indices, cancelled, to_uint8


@dataclass(frozen=True)
class TuningConfig:
    """Stage-2 settings.

    Attributes:
        steps, lr, warmup, rampdown: the :class:`Schedule` (PTI: 350 steps at 3e-4, no ramps).
        batch_size: photos per step.
        losses: term weights of the photo loss.
        geometry_weight: the geometry anchor (module docstring; 0: off).
        hidden_weight: the hidden-Gaussian anchor: Gaussians the photos do not see (their share of the
            photos' pixels, measured once on the stage-1 render) keep their stage-1 colour and geometry (0: off).
        weight_anchor: L2 pull of every generator weight toward its original value (added to the gradients:
            ``2 * weight_anchor * (theta - theta_0)``; 0: off). Adam moves every weight by about ``lr`` per step
            whatever its gradient, so without it weights the photos barely constrain drift at random.
        view_weight, anchor_views: the view anchor and how many turned-away views it cycles through (0: off).
        locality_weight, locality_alpha, locality_psi, locality_every, locality_pool: PTI's regulariser
            (0 weight: off; PTI: 0.1, 30, 0.5, every step, a fresh sample per step = pool 0).
        lpips_stop: stop early once this step's LPIPS is at or below it (None: never).
        preview_every: attach a preview every this many steps (and on the last); 0 = never.
        max_resolution: tune at most at this many px (as :class:`inversion.latent_search.LatentConfig`).
        seed: batch choice, locality samples.
    """

    steps: int = 300
    lr: float = 3e-4
    warmup: float = 0.0
    rampdown: float = 0.0
    batch_size: int = 4
    losses: LossWeights = field(default_factory=lambda: LossWeights(id=0.1, mse=1.0, lpips=1.0, ssim=0.5))
    geometry_weight: float = 0.01
    hidden_weight: float = 0.0
    weight_anchor: float = 0.0
    view_weight: float = 0.1
    anchor_views: int = 3
    locality_weight: float = 0.1
    locality_alpha: float = 30.0
    locality_psi: float = 0.5
    locality_every: int = 1
    locality_pool: int = 16
    lpips_stop: float | None = None
    preview_every: int = 1
    max_resolution: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        Schedule(self.lr, self.steps, self.warmup, self.rampdown)
        check_max_resolution(self.max_resolution)
        if self.batch_size < 1 or self.locality_every < 1:
            raise ValueError("batch_size and locality_every must be >= 1")
        if min(self.locality_weight, self.geometry_weight, self.hidden_weight, self.weight_anchor, self.view_weight, self.anchor_views,
               self.locality_pool) < 0:
            raise ValueError("regulariser weights, anchor_views and locality_pool must be >= 0")


class GeneratorSwap:
    """The model a viewer shows: the untouched ``original`` and the ``current`` one (tuned after stage 2)."""

    def __init__(self, original: Generator) -> None:
        self.original = original
        self.current = original

    def use(self, tuned: Generator) -> Generator:
        """Show ``tuned`` (e.g. ``step.generator`` of the last tuning step)."""
        self.current = tuned
        return tuned

    def restore(self) -> Generator:
        """Go back to the original generator (whose weights tuning never changed) and return it."""
        self.current = self.original
        return self.original

    @property
    def is_tuned(self) -> bool:
        return self.current is not self.original


def locality_latent(G: Generator, pivot: torch.Tensor, cfg: TuningConfig, rng: torch.Generator) -> torch.Tensor:
    """``[1, num_ws, w_dim]``: the pivot moved ``alpha`` along the direction to a random truncated latent."""
    z = torch.randn(1, G.config.z_dim, generator=rng).to(pivot.device)
    with torch.no_grad():
        w_z = G.map(z, truncation_psi=cfg.locality_psi)
    direction = w_z - pivot
    return pivot + cfg.locality_alpha * direction / direction.norm().clamp(min=1e-8)


def anchor_cameras(cameras: Cameras, count: int) -> Cameras:
    """``[count]`` cameras on the first photo's orbit sphere, turned 360 / (count + 1) deg apart from it in yaw
    (e.g. +90, +180, +270 for 3), at pitch 0."""
    yaw, _, radius = orbit_angles(cameras[0])
    turns = torch.arange(1, count + 1, dtype=yaw.dtype) * (2 * math.pi / (count + 1))
    focal = cameras.intrinsics[0, 1, 1].cpu()
    return orbit_cameras(yaw.cpu() + turns, 0.0, radius.cpu(), focal=focal).to(cameras.device)


def random_views(cameras: Cameras, count: int, rng: torch.Generator) -> Cameras:
    """``[count]`` cameras at the photos' distance, yaw uniform in +-90 deg, pitch in +-20 deg."""
    _, _, radius = orbit_angles(cameras[0])
    yaw = (torch.rand(count, generator=rng) * 2 - 1) * (math.pi / 2)
    pitch = (torch.rand(count, generator=rng) * 2 - 1) * math.radians(20)
    return orbit_cameras(yaw, pitch, radius.cpu(), focal=cameras.intrinsics[0, 1, 1].cpu()).to(cameras.device)


COLOUR_UNIT = 0.02  # an RGB change of 0.02 (5 levels of 255) costs as much as a 1 px shift


def geometry_change(now: GaussianSet, before: GaussianSet, px: float) -> torch.Tensor:
    """``[..., N]`` squared change of each Gaussian's geometry: centre in units of ``px`` (scene units per
    pixel), log-scales, opacity logit, normalised rotation (sign-invariant)."""
    q0 = torch.nn.functional.normalize(before.quats, dim=-1)
    q1 = torch.nn.functional.normalize(now.quats, dim=-1)
    rot = 1.0 - (q0 * q1).sum(-1) ** 2
    return (((now.means - before.means) / px) ** 2).sum(-1) + ((now.log_scales - before.log_scales) ** 2).sum(-1) \
        + (now.opacity_logits - before.opacity_logits) ** 2 + rot


def colour_change(now: GaussianSet, before: GaussianSet) -> torch.Tensor:
    """``[..., N]`` squared RGB change of each Gaussian (degree-0 colour) in units of :data:`COLOUR_UNIT`."""
    return ((SH_C0 * (now.sh[..., 0, :] - before.sh[..., 0, :]) / COLOUR_UNIT) ** 2).sum(-1)


def photo_visibility(gaussians: GaussianSet, cameras: Cameras, resolution: int) -> torch.Tensor:
    """``[1, N]`` in [0, 1]: how much each Gaussian shows in the photos (1 from half a pixel's worth of
    compositing weight on), from the gradient of the rendered colours with respect to its colour."""
    sh = gaussians.sh.detach().clone().requires_grad_(True)
    g = GaussianSet(gaussians.means.detach(), gaussians.quats.detach(), gaussians.log_scales.detach(),
                    gaussians.opacity_logits.detach(), sh)
    with torch.enable_grad():
        render_gaussians(g, cameras.reshape(1, -1), resolution).sum().backward()
    weight = sh.grad[..., 0, :].abs().mean(-1) / SH_C0  # [1, N] summed compositing weight, in pixels
    return (weight / 0.5).clamp(max=1.0)


@dataclass(frozen=True, eq=False)
class _Anchors:
    """What the regularisers compare with, computed once with the original generator."""

    gaussians: GaussianSet | None  # pivot's Gaussians [1, N] after stage 1
    hidden: torch.Tensor | None  # [1, N] 1 - photo visibility
    views: Cameras | None  # [A] turned-away cameras
    view_images: torch.Tensor | None  # [A, 3, R, R] their stage-1 renders
    pool_ws: torch.Tensor | None  # [K, num_ws, w_dim] locality latents
    pool_views: Cameras | None  # [K]
    pool_images: torch.Tensor | None  # [K, 3, R, R] original renders


@torch.no_grad()
def _anchors(G: Generator, pivot: torch.Tensor, target: InversionTarget, cfg: TuningConfig,
             rng: torch.Generator) -> _Anchors:
    res = target.resolution
    before = G.synthesis(pivot).gaussians
    gaussians = before if cfg.geometry_weight > 0 or cfg.hidden_weight > 0 else None
    hidden = 1.0 - photo_visibility(before, target.cameras, res) if cfg.hidden_weight > 0 else None
    views = images = None
    if cfg.view_weight > 0 and cfg.anchor_views > 0:
        views = anchor_cameras(target.cameras, cfg.anchor_views)
        images = render_gaussians(before, views.reshape(1, -1), res)[0]
    pool_ws = pool_views = pool_images = None
    pool = min(cfg.locality_pool, -(-cfg.steps // cfg.locality_every))  # never more than the steps use
    if cfg.locality_weight > 0 and pool > 0:
        pool_ws = torch.cat([locality_latent(G, pivot, cfg, rng) for _ in range(pool)])
        pool_views = random_views(target.cameras, pool, rng)
        pool_images = torch.cat([render_gaussians(G.synthesis(pool_ws[k:k + 1]).gaussians,
                                                  pool_views[k:k + 1].reshape(1, 1), res)[0]
                                 for k in range(pool)])
    return _Anchors(gaussians, hidden, views, images, pool_ws, pool_views, pool_images)


def _synthesis(tuned: Generator, batch: int, cuda_graphs: bool | None) -> Callable[[torch.Tensor], GaussianSet]:
    from core.cuda_graphs import cuda_graphs_usable, graphed_synthesis

    usable = cuda_graphs is not False and cuda_graphs_usable(tuned) is None
    if cuda_graphs and not usable:
        raise RuntimeError(cuda_graphs_usable(tuned) or "CUDA graphs are off")
    if not usable:
        return lambda ws: tuned.synthesis(ws).gaussians
    c = tuned.config
    return graphed_synthesis(tuned, (batch, c.num_ws, c.w_dim), ws_requires_grad=False)


def tune_generator(G: Generator, pivot: torch.Tensor, target: InversionTarget, cfg: TuningConfig,
                   objective: Objective, cancel: threading.Event | None = None,
                   cuda_graphs: bool | None = None) -> Iterator[InversionStep]:
    """Stage 2 as a generator of :class:`InversionStep`; ``step.generator`` is the tuned copy.

    Args:
        G: the original generator; only read (its weights, ``requires_grad`` flags and mode are untouched).
        pivot: ``[1, num_ws or 1, w_dim]`` latent from stage 1 (fixed).
        target: the photos with the cameras to use (e.g. stage 1's refined ones).
        cfg: settings. objective: the loss (its weights should be ``cfg.losses``).
        cancel: set it to stop before the next step.
        cuda_graphs: replay the tuned copy's synthesis from CUDA graphs (None: when usable).
    """
    device = next(G.parameters()).device
    target = target.to(device)
    photo_res = target.resolution  # the geometry anchor's unit is a photo pixel, whatever max_resolution is
    target = target.at_most(cfg.max_resolution)
    n, res = len(target), target.resolution
    c = G.config
    schedule = Schedule(cfg.lr, cfg.steps, cfg.warmup, cfg.rampdown)
    pivot = pivot.detach().to(device, torch.float32).expand(1, c.num_ws, c.w_dim).contiguous()
    rng = torch.Generator().manual_seed(cfg.seed)
    anchors = _anchors(G, pivot, target, cfg, rng)
    tuned = copy.deepcopy(G).train(False).requires_grad_(True)
    params = [p for p in tuned.parameters()]
    originals = [p.detach().clone() for p in params] if cfg.weight_anchor > 0 else None
    opt = torch.optim.Adam(tuned.parameters(), betas=(0.9, 0.999), lr=cfg.lr,
                           fused=device.type == "cuda")
    with torch.no_grad():
        embeddings = objective.embed(target.images, target.weights)
    has_id = embeddings is not None
    if embeddings is None:
        embeddings = target.images.new_zeros(n, 1)
    on_gpu = device.type == "cuda" and cuda_graphs is not False
    photo_loss = GraphedLoss(lambda p, i, w, e: objective(p, i, w, e if has_id else None), on_gpu)
    lpips_loss = None
    if objective.lpips is not None:
        lpips_loss = GraphedLoss(lambda a, b: {"lpips": objective.lpips(lpips_size(a) * 2 - 1,
                                                                        lpips_size(b) * 2 - 1).mean()}, on_gpu)
    local = cfg.locality_weight > 0
    # one graph call per step: pivot and locality latent together (a graph's batch is fixed)
    synthesis = _synthesis(tuned, 2 if local else 1, cuda_graphs if not local or cfg.locality_every == 1 else False)
    focal_px = float(target.cameras.intrinsics[0, 0, 0]) * photo_res
    px = float(orbit_angles(target.cameras[0])[2]) / focal_px
    cams_cpu = Cameras(target.cameras.cam2world.detach().cpu(), target.cameras.intrinsics.detach().cpu())
    for step in range(cfg.steps):
        if cancelled(cancel):
            return
        lr = schedule.lr_at(step)
        for group in opt.param_groups:
            group["lr"] = lr
        idx = batch_indices(n, cfg.batch_size, rng).to(device)
        k = (step // cfg.locality_every) % len(anchors.pool_ws) if anchors.pool_ws is not None else 0
        use_local = local and step % cfg.locality_every == 0
        if use_local and anchors.pool_ws is not None:
            w_r, r_view, r_image = anchors.pool_ws[k:k + 1], anchors.pool_views[k:k + 1], anchors.pool_images[k]
        elif use_local:
            w_r = locality_latent(G, pivot, cfg, rng)
            r_view = random_views(target.cameras, 1, rng)
            with torch.no_grad():
                r_image = render_gaussians(G.synthesis(w_r).gaussians, r_view.reshape(1, 1), res)[0, 0]
        gs = synthesis(torch.cat([pivot, w_r]) if use_local else pivot)
        g0 = gs.map(lambda t: t[0:1]) if use_local else gs
        views = target.cameras[idx]
        a = step % cfg.anchor_views if anchors.views is not None else None
        if a is not None:
            views = Cameras(torch.cat([views.cam2world, anchors.views.cam2world[a:a + 1]]),
                            torch.cat([views.intrinsics, anchors.views.intrinsics[a:a + 1]]))
        renders = render_gaussians(g0, views.reshape(1, -1), res)[0]
        pred = renders[: len(idx)]
        terms = dict(photo_loss(pred, target.images[idx], target.weights[idx], embeddings[idx]))
        total = terms["total"]
        if anchors.gaussians is not None:
            geo = geometry_change(g0, anchors.gaussians, px)
            if cfg.geometry_weight > 0:
                terms["geometry"] = geo.mean()
                total = total + cfg.geometry_weight * terms["geometry"]
            if anchors.hidden is not None:
                terms["hidden"] = (anchors.hidden * (geo + colour_change(g0, anchors.gaussians))).mean()
                total = total + cfg.hidden_weight * terms["hidden"]
        if a is not None:
            terms["views"] = ((renders[-1] - anchors.view_images[a]) ** 2).mean()
            total = total + cfg.view_weight * terms["views"]
        if use_local:
            after = render_gaussians(gs.map(lambda t: t[1:2]), r_view.reshape(1, 1), res)[0, 0]
            loc = ((after - r_image) ** 2).mean()
            if lpips_loss is not None:
                loc = loc + lpips_loss(after[None], r_image[None])["lpips"]
            terms["locality"] = loc
            total = total + cfg.locality_weight * loc
        terms["total"] = total
        opt.zero_grad(set_to_none=True)
        total.backward()
        if originals is not None:
            with torch.no_grad():
                drift = torch._foreach_sub([p.detach() for p in params], originals)
                grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
                for p, g in zip(params, grads):
                    p.grad = g
                torch._foreach_add_(grads, drift, alpha=2.0 * cfg.weight_anchor)
                terms["weights"] = torch.stack(torch._foreach_norm(drift)).square().sum()
        opt.step()
        names = list(terms)
        values = dict(zip(names, torch.stack([terms[k].detach().float() for k in names]).tolist()))
        last = step + 1 == cfg.steps
        stop = cfg.lpips_stop is not None and values["lpips"] <= cfg.lpips_stop
        show = cfg.preview_every > 0 and (step % cfg.preview_every == 0 or last or stop)
        yield InversionStep("tuning", step + 1, cfg.steps, values, lr, pivot.cpu(),
                            cams_cpu, to_uint8(pred[0]) if show else None, int(idx[0]), tuned)
        if stop:
            return
