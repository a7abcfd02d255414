"""Multi-view latent fit: the W or W+ latent whose renders best match given images from given cameras.

The model-side primitive under inversion's stage 1 (:mod:`inversion.latent_search`) and the ground-truth fit
metric (the best latent the generator has for a held-out head, fitted to all its evaluation views).

    target = FitTarget(images, cameras, weights)           # [B, V, 3, H, W], Cameras [B, V], [B, V, 1, H, W]
    result = fit_latent(G, target, LatentFitConfig(steps=300, space="w+"))
    result.ws                                              # [B, num_ws, w_dim], one latent per head

B heads are fitted at once and independently (each has its own latent; the loss is the sum of per-head
losses, so each latent follows its own gradient); V views per head. What one step does:

1. latent ``ws`` (from ``ws_init`` or the generator's ``w_avg``; ``"w"``: one w for every block, ``"w+"``:
   one per block) plus Gaussian noise ``noise_strength * w_std`` decaying quadratically to 0 over the first
   ``noise_ramp`` of the run (StyleGAN2 / PTI projector);
2. render it from a subset of ``views_per_step`` views (all when 0) at the targets' resolution on
   ``target.background``;
3. loss per head: ``mse_weight * weighted MSE + ssim_weight * (1 - weighted SSIM)`` (:mod:`core.image_metrics`)
   plus the caller's ``extra_loss`` (e.g. LPIPS), summed over heads;
4. Adam (betas 0.9, 0.999) at the :class:`Schedule`'s learning rate (linear warm-up, cosine ramp-down);
5. optional camera refinement (``camera_lr > 0``, from ``camera_start`` of the run on): per view an orbit
   rotation about ``target.pivot`` (axis-angle, world, radians) and a camera-space translation (scene units,
   moving ``radius`` times as fast, so both move the image alike), their own Adam.

Everything stays on the device: a step never waits for the GPU (losses come back as tensors).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Callable, Iterator, Literal

import torch

from core.camera import Cameras
from core.gaussians import GaussianSet
from core.generator import Generator
from core.image_metrics import mse, ssim
from core.render import render

LatentSpace = Literal["w", "w+"]
ExtraLoss = Callable[[torch.Tensor, torch.Tensor], "dict[str, torch.Tensor]"]


@dataclass(frozen=True)
class Schedule:
    """Learning rate over ``steps`` steps: linear warm-up over the first ``warmup`` fraction, flat, then a
    cosine ramp-down to 0 over the last ``rampdown`` fraction (StyleGAN2 / PTI projector style)."""

    lr: float
    steps: int
    warmup: float = 0.05
    rampdown: float = 0.25

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.steps < 1:
            raise ValueError(f"need lr > 0 and steps >= 1, got lr={self.lr}, steps={self.steps}")
        if not (0 <= self.warmup <= 1 and 0 <= self.rampdown <= 1 and self.warmup + self.rampdown <= 1):
            raise ValueError("warmup and rampdown are fractions of the run whose sum is at most 1")

    def lr_at(self, step: int) -> float:
        """Learning rate of step ``step`` (0-based)."""
        t = (step + 0.5) / self.steps
        scale = 1.0
        if self.warmup > 0:
            scale = min(scale, t / self.warmup)
        if self.rampdown > 0 and t > 1 - self.rampdown:
            scale = min(scale, 0.5 - 0.5 * math.cos(math.pi * (1 - t) / self.rampdown))
        return self.lr * max(scale, 0.0)


@dataclass(frozen=True)
class LatentFitConfig:
    """Settings of :func:`fit_latent` (see the module docstring for what each does).

    Attributes:
        steps, lr, warmup, rampdown: the :class:`Schedule` (lr in w units per step; warm-up/ramp fractions).
        space: ``"w+"`` (one w per transformer block) or ``"w"`` (one w for all).
        noise_strength, noise_ramp: latent noise as a fraction of ``w_std`` / of the run (0: none).
        mse_weight, ssim_weight: pixel loss weights (>= 0).
        views_per_step: views rendered per step (0: all V).
        camera_lr, camera_start: camera refinement step size (radians; 0: cameras fixed) and when it starts.
        camera_decay: the camera step decays linearly from ``camera_lr`` at ``camera_start`` towards 0 (the
            last step takes ``camera_lr / (steps - start)``).
        seed: view subsets and noise.
    """

    steps: int = 300
    lr: float = 0.01
    warmup: float = 0.05
    rampdown: float = 0.25
    space: LatentSpace = "w+"
    noise_strength: float = 0.0
    noise_ramp: float = 0.75
    mse_weight: float = 1.0
    ssim_weight: float = 0.0
    views_per_step: int = 0
    camera_lr: float = 0.0
    camera_start: float = 0.1
    camera_decay: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.space not in ("w", "w+"):
            raise ValueError(f"space must be 'w' or 'w+', got {self.space!r}")
        if min(self.mse_weight, self.ssim_weight, self.noise_strength, self.camera_lr) < 0:
            raise ValueError("loss weights, noise_strength and camera_lr must be >= 0")
        if self.views_per_step < 0:
            raise ValueError(f"views_per_step must be >= 0, got {self.views_per_step}")
        Schedule(self.lr, self.steps, self.warmup, self.rampdown)

    @property
    def schedule(self) -> Schedule:
        return Schedule(self.lr, self.steps, self.warmup, self.rampdown)


@dataclass(frozen=True, eq=False)
class FitTarget:
    """What to fit: V views of each of B heads.

    Attributes:
        images: ``[B, V, 3, H, W]`` RGB in [0, 1], composited on ``background``.
        cameras: :class:`Cameras` with batch shape ``[B, V]`` (or ``[V]``, shared by every head).
        weights: ``[B, V, 1, H, W]`` per-pixel loss weights in [0, 1] (e.g. foreground masks), or None
            (uniform).
        background: RGB in [0, 1] the renders are composited on (the targets' background; white by default).
        pivot: world point the camera refinement orbits about (the head centre; scene units).
    """

    images: torch.Tensor
    cameras: Cameras
    weights: torch.Tensor | None = None
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    pivot: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if self.images.dim() != 5 or self.images.shape[2] != 3:
            raise ValueError(f"images must be [B, V, 3, H, W], got {list(self.images.shape)}")
        B, V = self.images.shape[:2]
        if tuple(self.cameras.batch_shape) not in ((B, V), (V,)):
            raise ValueError(f"cameras must have batch shape [B, V] = [{B}, {V}] or [V], "
                             f"got {list(self.cameras.batch_shape)}")
        if self.weights is not None and tuple(self.weights.shape) != (B, V, 1) + tuple(self.images.shape[3:]):
            raise ValueError(f"weights must be [B, V, 1, H, W], got {list(self.weights.shape)}")

    @property
    def heads(self) -> int:
        return self.images.shape[0]

    @property
    def views(self) -> int:
        return self.images.shape[1]

    def to(self, device: torch.device | str) -> FitTarget:
        B, V = self.images.shape[:2]
        cams = self.cameras.to(device)
        if tuple(cams.batch_shape) == (V,):
            cams = Cameras(cams.cam2world.expand(B, V, 4, 4), cams.intrinsics.expand(B, V, 3, 3))
        return FitTarget(self.images.to(device), cams, None if self.weights is None else self.weights.to(device),
                         self.background, self.pivot)


@dataclass(frozen=True, eq=False)
class LatentFitStep:
    """One step of :func:`fit_latent_steps` (tensors on the fit's device, detached).

    Attributes:
        step: 1-based; total: planned steps. lr: the learning rate used.
        ws: ``[B, num_ws or 1, w_dim]`` latent after the update (the live tensor's data: clone to keep it).
        cameras: ``[B, V]`` cameras after the update.
        losses: term -> ``[B]`` per-head values of this step, before the update (``total``, ``mse``,
            ``ssim`` (as 1 - SSIM) and the extra terms).
        pred: ``[B, v, 3, H, W]`` this step's renders (before the update); views: ``[v]`` their view indices.
    """

    step: int
    total: int
    lr: float
    ws: torch.Tensor
    cameras: Cameras
    losses: dict[str, torch.Tensor]
    pred: torch.Tensor
    views: torch.Tensor


def w_statistics(G: Generator, samples: int = 2048, seed: int = 0) -> tuple[torch.Tensor, float]:
    """``(w_avg [w_dim], w_std)``: the mapping network's running mean and the RMS distance of mapped random z
    from it (StyleGAN2's projector ``w_std``)."""
    device = next(G.parameters()).device
    with torch.no_grad():
        z = torch.randn(samples, G.config.z_dim, generator=torch.Generator().manual_seed(seed)).to(device)
        w = G.map(z)[:, 0].float()
        w_avg = G.mapping.w_avg.to(device, torch.float32)
        w_std = float(((w - w_avg) ** 2).sum(-1).mean().sqrt())
    return w_avg, w_std


def start_latent(G: Generator, space: LatentSpace, heads: int = 1) -> torch.Tensor:
    """``[heads, num_ws or 1, w_dim]`` copies of ``w_avg`` (one per block for W+)."""
    w_avg = G.mapping.w_avg.to(next(G.parameters()).device, torch.float32)
    num = G.config.num_ws if space == "w+" else 1
    return w_avg[None, None].repeat(heads, num, 1).clone()


def orbit_refine(cameras: Cameras, rot: torch.Tensor, shift: torch.Tensor,
                 pivot: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> Cameras:
    """``cameras [...]`` rotated rigidly about ``pivot`` by ``rot [..., 3]`` (axis-angle, world, radians), then
    moved by ``shift [..., 3]`` along their own axes (camera space, scene units). Differentiable."""
    zero = torch.zeros_like(rot[..., 0])
    rx, ry, rz = rot.unbind(-1)
    skew = torch.stack([zero, -rz, ry, rz, zero, -rx, -ry, rx, zero], -1).reshape(rot.shape[:-1] + (3, 3))
    R = torch.linalg.matrix_exp(skew)
    c2w = cameras.cam2world
    p = torch.tensor(pivot, dtype=c2w.dtype, device=c2w.device)
    rot_cam = R @ c2w[..., :3, :3]
    pos = (R @ (c2w[..., :3, 3] - p)[..., None])[..., 0] + p + (rot_cam @ shift[..., None])[..., 0]
    top = torch.cat([rot_cam, pos[..., None]], -1)
    return Cameras(torch.cat([top, c2w[..., 3:, :]], -2), cameras.intrinsics)


def render_latent(G: Generator, ws: torch.Tensor, cameras: Cameras, resolution: int,
                  background: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> torch.Tensor:
    """``ws [B, n, w_dim]`` seen from ``cameras [B, v]`` -> ``[B, v, 3, R, R]`` RGB (differentiable)."""
    return render_gaussians(G.synthesis(ws).gaussians, cameras, resolution, background)


def render_gaussians(gaussians: GaussianSet, cameras: Cameras, resolution: int,
                     background: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> torch.Tensor:
    """``gaussians [B, N]`` seen from ``cameras [B, v]`` -> ``[B, v, 3, R, R]`` RGB (differentiable)."""
    rgb = render(gaussians, cameras, resolution, resolution, background=list(background), mode="rgb").color
    return rgb.permute(0, 1, 4, 2, 3)


def fit_latent_steps(G: Generator, target: FitTarget, config: LatentFitConfig = LatentFitConfig(),
                     ws_init: torch.Tensor | None = None, extra_loss: ExtraLoss | None = None,
                     cancel: threading.Event | None = None, cuda_graphs: bool | None = None
                     ) -> Iterator[LatentFitStep]:
    """The fit as a generator of :class:`LatentFitStep` (module docstring); set ``cancel`` to stop before the
    next step.

    Args:
        G: the generator; not modified (its parameters take no gradient inside the fit, flags restored).
        target: the images, cameras and weights (moved to G's device).
        config: settings.
        ws_init: ``[B or 1, num_ws or 1, w_dim]`` start latent (default: ``w_avg``); W+ starting from a single
            w repeats it per block, W from a W+ latent takes the mean over blocks.
        extra_loss: ``(pred [B, v, 3, H, W], views [v]) -> {term: [B]}``; its ``"total"`` (already weighted)
            is added to the loss, the other terms are reported only.
        cuda_graphs: replay the generator from CUDA graphs (:mod:`core.cuda_graphs`; same result, several
            times faster on a GPU). None: when usable (CUDA, float32 features); True: required.
    """
    device = next(G.parameters()).device
    target = target.to(device)
    B, V = target.heads, target.views
    res = target.images.shape[-1]
    num = G.config.num_ws if config.space == "w+" else 1
    if ws_init is None:
        w0 = start_latent(G, config.space, B)
    else:
        w0 = ws_init.detach().to(device, torch.float32)
        w0 = w0.mean(1, keepdim=True) if w0.shape[1] != num and num == 1 else w0
        w0 = w0.expand(B, num, -1).clone()
    w = w0.requires_grad_(True)
    opt = torch.optim.Adam([w], lr=config.lr, betas=(0.9, 0.999))
    refine = config.camera_lr > 0
    rot = torch.zeros(B, V, 3, device=device, requires_grad=refine)
    shift = torch.zeros(B, V, 3, device=device, requires_grad=refine)
    radius = float((target.cameras.centers - torch.tensor(target.pivot, device=device)).norm(dim=-1).mean())
    cam_opt = torch.optim.Adam([{"params": [rot], "lr": config.camera_lr},
                                {"params": [shift], "lr": config.camera_lr * radius}]) if refine else None
    w_std = w_statistics(G, seed=config.seed)[1] if config.noise_strength > 0 else 0.0
    rng = torch.Generator().manual_seed(config.seed)
    noise_rng = torch.Generator(device=device).manual_seed(config.seed)
    schedule = config.schedule
    per_step = V if config.views_per_step <= 0 else min(config.views_per_step, V)
    requires = [p.requires_grad for p in G.parameters()]
    G.requires_grad_(False)
    try:
        synthesis = _synthesis(G, tuple(w.shape), cuda_graphs)
        for step in range(config.steps):
            if cancel is not None and cancel.is_set():
                return
            lr = schedule.lr_at(step)
            for group in opt.param_groups:
                group["lr"] = lr
            views = torch.arange(V) if per_step == V else torch.randperm(V, generator=rng)[:per_step]
            t = step / config.steps
            w_in = w
            if w_std > 0 and config.noise_ramp > 0 and t < config.noise_ramp:
                scale = w_std * config.noise_strength * (1.0 - t / config.noise_ramp) ** 2
                w_in = w + torch.randn(w.shape, generator=noise_rng, device=device) * scale
            vi = views.to(device)
            cams = target.cameras[:, vi] if not refine else orbit_refine(
                target.cameras[:, vi], rot[:, vi], shift[:, vi], target.pivot)
            pred = render_gaussians(synthesis(w_in), cams, res, target.background)
            goal = target.images[:, vi]
            weight = None if target.weights is None else target.weights[:, vi]
            losses = {"mse": mse(pred, goal, weight).mean(1)}
            total = config.mse_weight * losses["mse"]
            if config.ssim_weight > 0:
                losses["ssim"] = 1.0 - ssim(pred, goal, weight).mean(1)
                total = total + config.ssim_weight * losses["ssim"]
            if extra_loss is not None:
                extra = extra_loss(pred, vi)
                losses.update({k: v for k, v in extra.items() if k != "total"})
                if "total" in extra:
                    total = total + extra["total"]
            losses["total"] = total
            opt.zero_grad(set_to_none=True)
            use_cams = cam_opt is not None and step >= config.camera_start * config.steps
            if cam_opt is not None:
                cam_opt.zero_grad(set_to_none=True)
            total.sum().backward()
            opt.step()
            if use_cams:
                if config.camera_decay:
                    start = config.camera_start * config.steps
                    scale = 1.0 - (step - start) / max(config.steps - start, 1.0)
                    for group, base in zip(cam_opt.param_groups, (config.camera_lr, config.camera_lr * radius)):
                        group["lr"] = base * scale
                cam_opt.step()
            with torch.no_grad():
                now = orbit_refine(target.cameras, rot, shift, target.pivot) if refine else target.cameras
            yield LatentFitStep(step + 1, config.steps, lr, w.detach(), Cameras(now.cam2world.detach(),
                                now.intrinsics.detach()), {k: v.detach() for k, v in losses.items()},
                                pred.detach(), views)
    finally:
        for p, r in zip(G.parameters(), requires):
            p.requires_grad_(r)


def _synthesis(G: Generator, ws_shape: tuple[int, ...], cuda_graphs: bool | None
               ) -> Callable[[torch.Tensor], GaussianSet]:
    """``ws -> GaussianSet``: graphed (see ``cuda_graphs`` of :func:`fit_latent_steps`) or eager."""
    from core.cuda_graphs import cuda_graphs_usable, graphed_synthesis

    if cuda_graphs is False:
        return lambda ws: G.synthesis(ws).gaussians
    reason = cuda_graphs_usable(G)
    if reason is not None:
        if cuda_graphs:
            raise RuntimeError(reason)
        return lambda ws: G.synthesis(ws).gaussians
    return graphed_synthesis(G, ws_shape, ws_requires_grad=True)


def fit_latent(G: Generator, target: FitTarget, config: LatentFitConfig = LatentFitConfig(),
               ws_init: torch.Tensor | None = None, extra_loss: ExtraLoss | None = None,
               cuda_graphs: bool | None = None) -> LatentFitStep:
    """Run :func:`fit_latent_steps` to the end; its last step, with ``ws`` cloned (``[B, num_ws or 1, w_dim]``).

    The ground-truth fit of a held-out head, for instance::

        imgs = ...                     # [16, 10, 3, R, R] evaluation renders on white, masks [16, 10, 1, R, R]
        fit = fit_latent(G, FitTarget(imgs, eval_cams, masks), LatentFitConfig(steps=500, space="w+"))
        renders = render_latent(G, fit.ws, eval_cams_bv, R)    # compare with core.image_metrics.psnr / ssim
    """
    last = None
    for last in fit_latent_steps(G, target, config, ws_init, extra_loss, cuda_graphs=cuda_graphs):
        pass
    if last is None:
        raise ValueError("the fit took no step")
    return LatentFitStep(last.step, last.total, last.lr, last.ws.clone(), last.cameras, last.losses, last.pred,
                         last.views)
