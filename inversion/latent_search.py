"""Stage 1: latent inversion. One W or W+ latent fitted to all target photos at once, each seen through its own
camera, optionally refining the cameras: :func:`core.latent_fit.fit_latent_steps` (the multi-view latent fit,
one head) with the photos' weight maps and the perceptual terms of :class:`inversion.objective.Objective`.

- Start: ``w_avg``, one copy per block for W+ (or ``start``).
- Loss: weighted MSE and ``1 - SSIM`` (core.image_metrics) plus LPIPS and ID when their weights are > 0.
- Adam under a :class:`core.latent_fit.Schedule` (warm-up, cosine ramp-down); optional latent noise
  ``noise_strength * w_std`` decaying over the first ``noise_ramp`` of the run (off by default: it helps a
  single-view fit of a 2D GAN explore, but here it only blurs the 3D fit).
- Camera refinement: each photo's camera orbits the head centre (axis-angle) and moves along its own axes,
  from ``camera_start`` of the run on (:func:`core.latent_fit.orbit_refine`).
- Camera search (``camera_candidates > 1``): the first ``camera_search_steps`` steps fit one latent per camera
  hypothesis (yaw/pitch offsets of ``camera_search_deg`` around each photo's estimate, pixel terms only), each
  photo keeps its best hypothesis and the rest of the run continues from it (:mod:`core.camera_search`).

Use::

    for step in invert_latent(G, target, cfg, objective, cancel=event): ...
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Iterator

import torch

from core.camera import Cameras
from core.camera_search import fit_latent_searched, grid_offsets
from core.generator import Generator
from core.latent_fit import FitTarget, LatentFitConfig, LatentFitStep, LatentSpace
from inversion.objective import GraphedLoss, LossWeights, Objective
from inversion.preprocess import InversionTarget, check_max_resolution
from inversion.steps import InversionStep, to_uint8


@dataclass(frozen=True)
class LatentConfig:
    """Stage-1 settings.

    Attributes:
        steps, lr, warmup, rampdown: the schedule (lr in w units per step; fractions of the run).
        space: ``"w+"`` (one w per block) or ``"w"`` (one w for all).
        batch_size: photos per step (all of them when >= their number).
        losses: term weights (``mse`` and ``ssim`` are computed in core; ``lpips``/``id`` need networks).
        noise_strength, noise_ramp: latent noise as a fraction of ``w_std`` / of the run (0: none).
        refine_cameras, camera_lr, camera_start: camera refinement (radians per step; fraction of the run).
        camera_decay: the camera step decays linearly to 0 over the run (from ``camera_start``).
        camera_candidates: camera hypotheses per photo searched first (1: no search; 3, 5 or 9: see
            :func:`core.camera_search.grid_offsets`), camera_search_deg: their offset (degrees),
            camera_search_steps: the steps of the run spent on the search (fewer than ``steps``).
        preview_every: attach a preview image every this many steps (and on the last); 0 = never.
        max_resolution: fit at most at this many px (photos downsampled, renders at that size; 0: the photos'
            own). The render's cost grows with the pixels: the ``quick`` preset fits at 128 on the CPU.
        seed: photo subsets and noise.
    """

    steps: int = 300
    lr: float = 0.03
    warmup: float = 0.05
    rampdown: float = 0.25
    space: LatentSpace = "w"
    batch_size: int = 4
    losses: LossWeights = field(default_factory=lambda: LossWeights(id=0.1, mse=1.0, lpips=1.0, ssim=0.5))
    noise_strength: float = 0.0
    noise_ramp: float = 0.75
    refine_cameras: bool = True
    camera_lr: float = 2e-3
    camera_start: float = 0.1
    camera_decay: bool = False
    camera_candidates: int = 1
    camera_search_deg: float = 4.0
    camera_search_steps: int = 20
    preview_every: int = 1
    max_resolution: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        check_max_resolution(self.max_resolution)
        self.fit_config()  # validates the rest
        self.camera_offsets()
        if self.camera_candidates > 1 and not 0 < self.camera_search_steps < self.steps:
            raise ValueError(f"camera_search_steps must be in (0, steps={self.steps}), got {self.camera_search_steps}")

    def camera_offsets(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(yaw_deg [K], pitch_deg [K])`` of the camera search (K = ``camera_candidates``)."""
        return grid_offsets(self.camera_candidates, self.camera_search_deg)

    def fit_steps(self, G: Generator, target: FitTarget, ws_init: torch.Tensor | None = None, extra_loss=None,
                  cancel: threading.Event | None = None, cuda_graphs: bool | None = None
                  ) -> Iterator[LatentFitStep]:
        """Stage 1's core fit with these settings, the camera search first when it is on."""
        yaw, pitch = self.camera_offsets()
        return fit_latent_searched(G, target, self.fit_config(), yaw, pitch, self.camera_search_steps, ws_init,
                                   extra_loss, cancel, cuda_graphs)

    def fit_config(self) -> LatentFitConfig:
        """The core fit's settings for these (pixel terms; the network terms come from the objective)."""
        return LatentFitConfig(
            steps=self.steps, lr=self.lr, warmup=self.warmup, rampdown=self.rampdown, space=self.space,
            noise_strength=self.noise_strength, noise_ramp=self.noise_ramp, mse_weight=self.losses.mse,
            ssim_weight=self.losses.ssim, views_per_step=self.batch_size,
            camera_lr=self.camera_lr if self.refine_cameras else 0.0, camera_start=self.camera_start,
            camera_decay=self.camera_decay,
            seed=self.seed)


def fit_target(target: InversionTarget) -> FitTarget:
    """The photos as one head seen from N views: images ``[1, N, 3, R, R]``, cameras ``[1, N]``."""
    cams = target.cameras
    return FitTarget(target.images[None], Cameras(cams.cam2world[None], cams.intrinsics[None]),
                     target.weights[None])


def perceptual_loss(objective: Objective, target: InversionTarget, cuda_graphs: bool | None = None):
    """``(pred [B, v, 3, R, R], views [v]) -> {term: [B]}``: LPIPS and ID of the chosen views against the
    photos (None when both weights are 0). B is 1 here (one person). On CUDA the networks run from CUDA
    graphs unless ``cuda_graphs`` is False."""
    if objective.lpips is None and objective.facenet is None:
        return None
    with torch.no_grad():
        embeddings = objective.embed(target.images, target.weights)
    has_id = embeddings is not None
    if embeddings is None:
        embeddings = target.images.new_zeros(len(target), 1)

    def terms(pred, images, weights, emb):
        t = objective.perceptual(pred, images, weights, emb if has_id else None)
        return {k: t[k] for k in ("lpips", "id", "total")}

    graphed = GraphedLoss(terms, target.images.is_cuda and cuda_graphs is not False)

    def extra(pred: torch.Tensor, views: torch.Tensor) -> dict[str, torch.Tensor]:
        out = graphed(pred[0], target.images[views], target.weights[views], embeddings[views])
        return {k: v[None] for k, v in out.items()}

    return extra


def invert_latent(G: Generator, target: InversionTarget, cfg: LatentConfig, objective: Objective,
                  cancel: threading.Event | None = None, start: torch.Tensor | None = None,
                  cuda_graphs: bool | None = None) -> Iterator[InversionStep]:
    """Stage 1 as a generator of :class:`InversionStep` (see the module docstring).

    Args:
        G: the generator (not modified).
        target: the photos, weights and initial cameras (moved to G's device).
        cfg: settings. objective: the loss networks (its weights should be ``cfg.losses``).
        cancel: set it to stop before the next step.
        start: optional ``[1, num_ws or 1, w_dim]`` start latent instead of w_avg.
        cuda_graphs: see :func:`core.latent_fit.fit_latent_steps`.
    """
    device = next(G.parameters()).device
    target = target.to(device).at_most(cfg.max_resolution)
    fit = cfg.fit_steps(G, fit_target(target), ws_init=start,
                        extra_loss=perceptual_loss(objective, target, cuda_graphs), cancel=cancel,
                        cuda_graphs=cuda_graphs)
    for s in fit:
        names = list(s.losses)
        values = torch.stack([s.losses[k][0] for k in names]).tolist()  # one host sync per step
        show = cfg.preview_every > 0 and ((s.step - 1) % cfg.preview_every == 0 or s.step == s.total)
        yield InversionStep(
            "latent", s.step, s.total, dict(zip(names, values)), s.lr, s.ws.cpu().clone(),
            Cameras(s.cameras.cam2world[0].cpu(), s.cameras.intrinsics[0].cpu()),
            to_uint8(s.pred[0, 0]) if show else None, int(s.views[0]))
