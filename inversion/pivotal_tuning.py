"""Stage 2: pivotal tuning (PTI, Roich et al. 2022). Tune a *copy* of the generator so that the fixed pivot
latent from stage 1 reproduces the photos; the original generator is never modified.

Loss per step: the stage-1 objective on the pivot's renders, plus the locality regulariser: a latent
``w_r = pivot + alpha * (w_z - pivot) / |w_z - pivot|`` (w_z mapped from a random z with truncation
``locality_psi``) rendered from a random target camera by the original and by the tuned generator; their
weighted MSE + LPIPS (``locality_weight`` each; PTI: 0.1, alpha 30, psi 0.5) keeps the rest of the latent
space where it was. Adam on every generator parameter, betas (0.9, 0.999); optional early stop once LPIPS
drops to ``lpips_stop``.

:class:`GeneratorSwap` is the small holder a viewer keeps: the original, the current (tuned or original) and
:meth:`GeneratorSwap.restore`.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from typing import Iterator

import torch

from core.camera import Cameras
from core.generator import Generator
from inversion.objective import LossWeights, Objective, lpips_size
from inversion.preprocess import InversionTarget
from inversion.steps import InversionStep, Schedule, batch_indices, cancelled, render_views, to_uint8


@dataclass(frozen=True)
class TuningConfig:
    """Stage-2 settings.

    Attributes:
        steps, lr, warmup, rampdown: the :class:`Schedule` (PTI: 350 steps at 3e-4, no ramps).
        batch_size: photos per step.
        losses: term weights (PTI: MSE 1, LPIPS 1).
        locality_weight, locality_alpha, locality_psi, locality_every: the regulariser (0 weight: off).
        lpips_stop: stop early once this step's LPIPS is at or below it (None: never).
        preview_every: attach a preview every this many steps (and on the last); 0 = never.
        seed: batch choice, locality samples.
    """

    steps: int = 300
    lr: float = 3e-4
    warmup: float = 0.0
    rampdown: float = 0.0
    batch_size: int = 4
    losses: LossWeights = field(default_factory=lambda: LossWeights(id=0.1, mse=1.0, lpips=1.0))
    locality_weight: float = 0.1
    locality_alpha: float = 30.0
    locality_psi: float = 0.5
    locality_every: int = 1
    lpips_stop: float | None = None
    preview_every: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        Schedule(self.lr, self.steps, self.warmup, self.rampdown)
        if self.batch_size < 1 or self.locality_every < 1 or self.locality_weight < 0:
            raise ValueError("batch_size and locality_every must be >= 1 and locality_weight >= 0")


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
        w_z = G.map(z, truncation_psi=cfg.locality_psi)[:, : pivot.shape[1]]
    direction = w_z - pivot
    return pivot + cfg.locality_alpha * direction / direction.norm().clamp(min=1e-8)


def tune_generator(G: Generator, pivot: torch.Tensor, target: InversionTarget, cfg: TuningConfig,
                   objective: Objective, cancel: threading.Event | None = None) -> Iterator[InversionStep]:
    """Stage 2 as a generator of :class:`InversionStep`; ``step.generator`` is the tuned copy.

    Args:
        G: the original generator; only read (its weights, ``requires_grad`` flags and mode are untouched).
        pivot: ``[1, num_ws or 1, w_dim]`` latent from stage 1 (fixed).
        target: the photos with the cameras to use (e.g. stage 1's refined ones).
        cfg: settings. objective: the loss (its weights should be ``cfg.losses``).
        cancel: set it to stop before the next step.
    """
    device = next(G.parameters()).device
    target = target.to(device)
    n, res = len(target), target.resolution
    schedule = Schedule(cfg.lr, cfg.steps, cfg.warmup, cfg.rampdown)
    tuned = copy.deepcopy(G).train(False).requires_grad_(True)
    pivot = pivot.detach().to(device)
    opt = torch.optim.Adam(tuned.parameters(), betas=(0.9, 0.999), lr=cfg.lr)
    with torch.no_grad():
        embeddings = objective.embed(target.images, target.weights)
    rng = torch.Generator().manual_seed(cfg.seed)
    cams_cpu = Cameras(target.cameras.cam2world.detach().cpu(), target.cameras.intrinsics.detach().cpu())
    for step in range(cfg.steps):
        if cancelled(cancel):
            return
        lr = schedule.lr_at(step)
        for group in opt.param_groups:
            group["lr"] = lr
        idx = batch_indices(n, cfg.batch_size, rng)
        pred = render_views(tuned, pivot, target.cameras[idx.to(device)], res)
        terms = objective(pred, target.images[idx], target.weights[idx],
                          None if embeddings is None else embeddings[idx])
        total = terms["total"]
        if cfg.locality_weight > 0 and step % cfg.locality_every == 0:
            w_r = locality_latent(G, pivot, cfg, rng)
            cam = target.cameras[torch.randint(n, (1,), generator=rng).to(device)]
            with torch.no_grad():
                before = render_views(G, w_r, cam, res)
            after = render_views(tuned, w_r, cam, res)
            local = ((after - before) ** 2).mean()
            if objective.lpips is not None:
                local = local + objective.lpips(lpips_size(after) * 2 - 1, lpips_size(before) * 2 - 1).mean()
            terms["locality"] = local
            total = total + cfg.locality_weight * local
            terms["total"] = total
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        values = {k: float(v.detach()) for k, v in terms.items()}
        last = step + 1 == cfg.steps
        stop = cfg.lpips_stop is not None and values["lpips"] <= cfg.lpips_stop
        show = cfg.preview_every > 0 and (step % cfg.preview_every == 0 or last or stop)
        yield InversionStep("tuning", step + 1, cfg.steps, values, lr, pivot.cpu().clone(), cams_cpu,
                            to_uint8(pred[0]) if show else None, int(idx[0]), tuned)
        if stop:
            return
