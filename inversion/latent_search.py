"""Stage 1: latent inversion. Optimise one W or W+ latent against all target photos at once, each seen through
its own camera, optionally refining the cameras.

- Start: ``w_avg`` (the mapping network's running mean; or the mean of ``w_avg_samples`` mapped z when that is
  > 0, e.g. for a generator whose running mean was never tracked), one copy per block for W+.
- Each step renders the latent from the cameras of a batch of photos and minimises
  :class:`inversion.objective.Objective` with Adam (betas 0.9, 0.999) under a :class:`Schedule` (warm-up,
  cosine ramp-down). Like PTI's W projector, Gaussian noise of ``noise_strength * w_std`` is added to the latent
  during the first ``noise_ramp`` of the run, decaying quadratically.
- Camera refinement: a per-photo rotation (axis-angle, applied in camera space) and a world translation, Adam
  at ``camera_lr``, from step ``camera_start * steps`` on.

Use::

    for step in invert_latent(G, target, cfg, objective, cancel=event): ...
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Iterator, Literal

import torch

from core.camera import Cameras
from core.generator import Generator
from inversion.objective import LossWeights, Objective
from inversion.pose import rodrigues
from inversion.preprocess import InversionTarget
from inversion.steps import InversionStep, Schedule, batch_indices, cancelled, render_views, to_uint8

LatentSpace = Literal["w", "w+"]


@dataclass(frozen=True)
class LatentConfig:
    """Stage-1 settings.

    Attributes:
        steps, lr, warmup, rampdown: the :class:`Schedule` (fractions of the run).
        space: ``"w+"`` (one w per block) or ``"w"`` (one w for all).
        batch_size: photos per step (all of them when >= their number).
        losses: term weights.
        w_avg_samples: 0 = use the generator's ``w_avg``; else the mean of this many mapped random z.
        noise_strength, noise_ramp: latent noise as in PTI's projector (0 switches it off).
        refine_cameras, camera_lr, camera_start: camera refinement (radians / scene units per step scale).
        preview_every: attach a preview image every this many steps (and on the last); 0 = never.
        seed: for the batch choice, the w_avg samples and the noise.
    """

    steps: int = 500
    lr: float = 0.01
    warmup: float = 0.05
    rampdown: float = 0.25
    space: LatentSpace = "w+"
    batch_size: int = 4
    losses: LossWeights = field(default_factory=LossWeights)
    w_avg_samples: int = 0
    noise_strength: float = 0.05
    noise_ramp: float = 0.75
    refine_cameras: bool = True
    camera_lr: float = 1e-3
    camera_start: float = 0.1
    preview_every: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.space not in ("w", "w+"):
            raise ValueError(f"space must be 'w' or 'w+', got {self.space!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        Schedule(self.lr, self.steps, self.warmup, self.rampdown)


def start_latent(G: Generator, cfg: LatentConfig, device: torch.device) -> tuple[torch.Tensor, float]:
    """``([1, num_ws, w_dim] start latent, w_std)``: w_avg per :attr:`LatentConfig.w_avg_samples`."""
    c = G.config
    with torch.no_grad():
        gen = torch.Generator().manual_seed(cfg.seed)
        z = torch.randn(max(cfg.w_avg_samples, 256), c.z_dim, generator=gen).to(device)
        w = G.map(z)[:, 0]  # [S, w_dim]
        w_avg = w.mean(0) if cfg.w_avg_samples > 0 else G.mapping.w_avg.to(device, w.dtype)
        w_std = float(((w - w_avg) ** 2).sum(-1).mean().sqrt())
    num = c.num_ws if cfg.space == "w+" else 1
    return w_avg[None, None].repeat(1, num, 1).clone(), w_std


def apply_camera_deltas(cameras: Cameras, rot: torch.Tensor, shift: torch.Tensor) -> Cameras:
    """``cameras [N]`` with per-camera rotations ``rot [N, 3]`` (axis-angle, camera space, radians) and world
    translations ``shift [N, 3]`` applied (differentiable)."""
    c2w = cameras.cam2world
    R = c2w[:, :3, :3] @ rodrigues(rot)
    t = c2w[:, :3, 3] + shift
    top = torch.cat([R, t[..., None]], -1)
    return Cameras(torch.cat([top, c2w[:, 3:]], 1), cameras.intrinsics)


def invert_latent(G: Generator, target: InversionTarget, cfg: LatentConfig, objective: Objective,
                  cancel: threading.Event | None = None, start: torch.Tensor | None = None
                  ) -> Iterator[InversionStep]:
    """Stage 1 as a generator of :class:`InversionStep` (see the module docstring).

    Args:
        G: the generator (not modified; its parameters are frozen only inside this call's graph).
        target: the photos, weights and initial cameras (on G's device or any; moved here).
        cfg: settings. objective: the loss (its weights should be ``cfg.losses``).
        cancel: set it to stop before the next step.
        start: optional ``[1, num_ws or 1, w_dim]`` start latent instead of w_avg.
    """
    device = next(G.parameters()).device
    target = target.to(device)
    n, res = len(target), target.resolution
    schedule = Schedule(cfg.lr, cfg.steps, cfg.warmup, cfg.rampdown)
    w0, w_std = start_latent(G, cfg, device)
    if start is not None:
        w0 = start.detach().to(device, w0.dtype).clone()
    w = w0.requires_grad_(True)
    rot = torch.zeros(n, 3, device=device, requires_grad=True)
    shift = torch.zeros(n, 3, device=device, requires_grad=True)
    opt = torch.optim.Adam([w], betas=(0.9, 0.999), lr=cfg.lr)
    cam_opt = torch.optim.Adam([rot, shift], lr=cfg.camera_lr) if cfg.refine_cameras else None
    with torch.no_grad():
        embeddings = objective.embed(target.images, target.weights)
    rng = torch.Generator().manual_seed(cfg.seed)
    requires = [p.requires_grad for p in G.parameters()]
    G.requires_grad_(False)
    try:
        for step in range(cfg.steps):
            if cancelled(cancel):
                return
            lr = schedule.lr_at(step)
            for group in opt.param_groups:
                group["lr"] = lr
            idx = batch_indices(n, cfg.batch_size, rng)
            t = step / cfg.steps
            noise_scale = 0.0
            if cfg.noise_ramp > 0:
                noise_scale = w_std * cfg.noise_strength * max(0.0, 1.0 - t / cfg.noise_ramp) ** 2
            w_in = w + torch.randn(w.shape, generator=rng).to(device) * noise_scale if noise_scale > 0 else w
            cams = apply_camera_deltas(target.cameras, rot, shift)[idx.to(device)]
            pred = render_views(G, w_in, cams, res)
            terms = objective(pred, target.images[idx], target.weights[idx],
                              None if embeddings is None else embeddings[idx])
            opt.zero_grad(set_to_none=True)
            use_cams = cam_opt is not None and step >= cfg.camera_start * cfg.steps
            if cam_opt is not None:
                cam_opt.zero_grad(set_to_none=True)
            terms["total"].backward()
            opt.step()
            if use_cams:
                cam_opt.step()
            last = step + 1 == cfg.steps
            show = cfg.preview_every > 0 and (step % cfg.preview_every == 0 or last)
            with torch.no_grad():
                cams_now = apply_camera_deltas(target.cameras, rot, shift)
            yield InversionStep(
                "latent", step + 1, cfg.steps, {k: float(v.detach()) for k, v in terms.items()}, lr,
                w.detach().cpu().clone(),
                Cameras(cams_now.cam2world.detach().cpu(), cams_now.intrinsics.detach().cpu()),
                to_uint8(pred[0]) if show else None, int(idx[0]),
            )
    finally:
        for p, r in zip(G.parameters(), requires):
            p.requires_grad_(r)
