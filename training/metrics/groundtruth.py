"""Ground-truth fit: how well can a generator represent a new head? (``default_model_gt_fit_psnr``)

For each of the first ``heads`` held-out identities of a synthetic dataset (``test/``, written by
``python -m training.synthetic_heads --test-fraction F``), one W+ latent is optimised against all 10
evaluation views at once (training/synthetic_heads/cameras.py ``EVAL_VIEWS``: the front, the whole circle in
45-degree steps, and the front from above and below), each seen through its true camera, with the
multi-view latent fit of :mod:`core.latent_fit` (the same primitive as inversion stage 1; pixel MSE, Adam
with warm-up and cosine ramp-down, no latent noise, true cameras; 2,000 steps at lr 0.03, see "Protocol").
The fitted head is rendered from the same cameras on white, quantised to 8 bits like the stored images, and
compared:

``psnr``          mean over heads of the PSNR of all that head's views together (dB);
``ssim``          mean over heads and views of SSIM (training/metrics/image_quality.py);
``psnr_by_view``  / ``ssim_by_view``: the means over heads per evaluation view (does the back fit?);
``outside_gt``    share of the fitted heads' opacity outside the ground truth's dilated silhouette (the
                  floaters definition of training/metrics/floaters.py with the true head's silhouette;
                  counts wrong hair as well as floaters, so ``floaters`` is the figure for floaters).

It is an upper bound for inversion (the fit sees every side of the head and the true cameras) and a
measure of the generator's expressiveness on unseen heads, independent of any pretrained network.

Protocol (:class:`GtFitSettings`; measured on the H200, docs/default-model-v2.md "At 900 kimg, shipped"):
the fit must be close to converged, or the figure measures the optimiser instead of the generator. The first
protocol (500 steps at core.latent_fit's default lr 0.01) was not: the default model v2 at 900 kimg scored
23.7 dB there, 27.6 at 2,000 steps and 29.0 at 4,000. 2,000 steps at lr 0.03 (inversion stage 1's step
size) reach 28.7-28.8 dB (three runs within 0.11 dB) and rank v1 (24.9 dB) and v2 as every longer fit
does; lr 0.1 scores up to 1.4 dB more but varies 0.6 dB between identical runs (gsplat's backward is not
deterministic) and lr 0.3 diverges by 2,000 steps.

Resolution: the stored evaluation images have the dataset's resolution. With ``resolution`` set to another
size the ground truth is rendered again from its ``.ply`` at that size (torch reference on the CPU, the
dataset writer's renderer), so two generators can be compared at one resolution on one split.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from core.camera import Cameras
from core.gaussians import GaussianSet
from core.render import render
from training.metrics.eval_split import EvalIdentity
from training.metrics.floaters import FloaterResult, head_silhouette
from training.metrics.image_quality import psnr, ssim

WHITE = (1.0, 1.0, 1.0)


@dataclass(frozen=True)
class GtFitSettings:
    """Attributes:
        heads: held-out identities (the first ones of the split).
        steps: optimisation steps per head.
        lr: the fit's Adam step size (w units per step; :class:`core.latent_fit.LatentFitConfig`).
        space: ``"w+"`` (one w per generator block) or ``"w"``.
        resolution: evaluation resolution; None = the dataset's.
        seed: seeds the fit.
        batch: heads fitted together (independently, each with its own latent): all 16 at once on a GPU.
    """

    heads: int = 16
    steps: int = 2000
    lr: float = 0.03
    space: str = "w+"
    resolution: int | None = None
    seed: int = 0
    batch: int = 16

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ValueError(f"gt_fit needs lr > 0, got {self.lr}")
        if self.heads < 1 or self.steps < 1 or self.batch < 1:
            raise ValueError(f"gt_fit needs heads, steps and batch >= 1, got {self.heads}, {self.steps}, {self.batch}")
        if self.space not in ("w", "w+"):
            raise ValueError(f"gt_fit space must be 'w' or 'w+', got {self.space!r}")


@dataclass(frozen=True)
class HeadScore:
    """One head's per-view scores: ``psnr``/``ssim`` ``[V]``, its all-views PSNR, floater sums against the
    ground-truth silhouette, and the scored renders ``render`` (uint8 ``[V, R, R, 3]``) beside the targets
    ``truth`` (to look at)."""

    identity: int
    psnr_views: tuple[float, ...]
    ssim_views: tuple[float, ...]
    psnr_all: float
    outside_gt: FloaterResult
    render: np.ndarray | None = field(default=None, repr=False, compare=False)
    truth: np.ndarray | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class GtFitResult:
    """See the module docstring. ``heads``: the per-head scores it pools."""

    heads: tuple[HeadScore, ...] = field(default_factory=tuple)

    @property
    def psnr(self) -> float:
        return float(np.mean([h.psnr_all for h in self.heads])) if self.heads else math.nan

    @property
    def ssim(self) -> float:
        return float(np.mean([h.ssim_views for h in self.heads])) if self.heads else math.nan

    @property
    def psnr_by_view(self) -> list[float]:
        return np.mean([h.psnr_views for h in self.heads], axis=0).tolist() if self.heads else []

    @property
    def ssim_by_view(self) -> list[float]:
        return np.mean([h.ssim_views for h in self.heads], axis=0).tolist() if self.heads else []

    @property
    def outside_gt(self) -> float:
        return sum((h.outside_gt for h in self.heads), FloaterResult()).share

    def as_dict(self) -> dict:
        return {"psnr": self.psnr, "ssim": self.ssim, "psnr_by_view": self.psnr_by_view,
                "ssim_by_view": self.ssim_by_view, "outside_gt": self.outside_gt, "heads": len(self.heads)}


def eval_targets(identity: EvalIdentity, resolution: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 [V, R, R, 3], masks uint8 [V, R, R])`` of a held-out identity at ``resolution``: the
    stored ones, or fresh exact renders of its ground truth when the size differs (module docstring)."""
    stored = identity.images.shape[1]
    if resolution is None or resolution == stored:
        masks = identity.masks
        if masks is None:
            raise ValueError(f"held-out identity {identity.identity} has no masks (test/mask/)")
        return identity.images, masks
    with torch.no_grad():
        out = render(identity.gt, identity.cameras, resolution, resolution, background=list(WHITE), mode="rgb",
                     backend="torch")
    quantise = lambda t: (t.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).numpy()  # noqa: E731 (as the writer)
    return quantise(out.color), quantise(out.alpha[..., 0])


def score_scene(scene: GaussianSet, identity: EvalIdentity, images: np.ndarray, masks: np.ndarray) -> HeadScore:
    """Render ``scene`` from the identity's cameras at the targets' size and score it against ``images``
    (uint8 ``[V, R, R, 3]``) and the silhouettes of ``masks`` (uint8 ``[V, R, R]``)."""
    res = images.shape[1]
    with torch.no_grad():
        out = render(scene, identity.cameras.to(scene.device, scene.dtype), res, res, background=list(WHITE),
                     mode="rgb")
    pred = (out.color.clamp(0, 1) * 255.0 + 0.5).floor().cpu().double() / 255.0
    truth = torch.from_numpy(images).double() / 255.0
    per_view_psnr = psnr(pred, truth)
    mse_all = float(((pred - truth) ** 2).mean())
    alpha = out.alpha[..., 0].detach().double().cpu().numpy()
    outside = FloaterResult()
    for a, m in zip(alpha, masks):
        inside = head_silhouette(m.astype(np.float64) / 255.0)
        outside = outside + FloaterResult(float(a[~inside].sum()), float(a.sum()), 1)
    return HeadScore(identity.identity, tuple(per_view_psnr.tolist()), tuple(ssim(pred, truth).tolist()),
                     math.inf if mse_all == 0 else -10.0 * math.log10(mse_all), outside,
                     (pred * 255.0).round().to(torch.uint8).numpy(), images)


FitFn = Callable[[torch.nn.Module, torch.Tensor, Cameras, GtFitSettings], torch.Tensor]


def fit_latent_multiview(G: torch.nn.Module, images: torch.Tensor, cameras: Cameras,
                         settings: GtFitSettings) -> torch.Tensor:
    """Latents ``[B, num_ws or 1, w_dim]``, one per head, fitted to ``images [B, V, R, R, 3]`` (float in [0, 1],
    on white) seen from ``cameras [V]`` (shared by the heads), with :func:`core.latent_fit.fit_latent` (the
    multi-view fit that inversion stage 1 uses): MSE, no latent noise, fixed cameras, ``settings.steps`` at
    ``settings.lr``."""
    try:
        from core.latent_fit import FitTarget, LatentFitConfig, fit_latent
    except ImportError as exc:
        raise ImportError("gt_fit needs core.latent_fit (the multi-view latent fit of the inversion issue), "
                          f"which this checkout does not have ({exc})") from None
    target = FitTarget(images.permute(0, 1, 4, 2, 3).contiguous(), cameras)
    config = LatentFitConfig(steps=settings.steps, lr=settings.lr, space=settings.space, seed=settings.seed)
    return fit_latent(G, target, config).ws


def gt_fit(G: torch.nn.Module, split: Sequence[EvalIdentity], settings: GtFitSettings = GtFitSettings(),
           device: torch.device | str | None = None, fit: FitFn = fit_latent_multiview,
           progress: bool = False) -> GtFitResult:
    """The ground-truth fit over the first ``settings.heads`` identities of ``split`` (module docstring),
    ``settings.batch`` heads per fit (each head has its own latent; the fits do not interact)."""
    if len(split) < settings.heads:
        raise ValueError(f"gt_fit needs {settings.heads} held-out heads, the split has {len(split)}; make the "
                         "dataset with a larger --test-fraction or lower the number of heads")
    device = torch.device(device) if device is not None else next(G.parameters()).device
    heads = list(split[: settings.heads])
    cameras = heads[0].cameras
    if any(not torch.equal(h.cameras.cam2world, cameras.cam2world) for h in heads):
        raise ValueError("gt_fit expects every held-out head to have the same evaluation cameras")
    scores: list[HeadScore] = []
    for start in range(0, len(heads), settings.batch):
        chunk = heads[start:start + settings.batch]
        targets = [eval_targets(h, settings.resolution) for h in chunk]
        images = torch.from_numpy(np.stack([t[0] for t in targets])).to(device).float() / 255.0
        ws = fit(G, images, cameras.to(device), settings)
        with torch.no_grad():
            scenes = G.synthesis(ws.to(device)).gaussians
        for k, (h, (imgs, masks)) in enumerate(zip(chunk, targets)):
            scores.append(score_scene(scenes[k], h, imgs, masks))
            if progress:
                print(f"gt_fit: head {len(scores)}/{len(heads)} (identity {h.identity}): "
                      f"{scores[-1].psnr_all:.2f} dB", file=sys.stderr, flush=True)
    return GtFitResult(tuple(scores))
