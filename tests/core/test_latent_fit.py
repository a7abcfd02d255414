"""core.latent_fit (multi-view latent fit) and core.image_metrics (PSNR, SSIM) on tiny inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.camera import Cameras, orbit_cameras
from core.image_metrics import psnr, ssim
from core.latent_fit import FitTarget, LatentFitConfig, fit_latent, fit_latent_steps, orbit_refine, render_latent
from tiny_generators import lively_tiny_generator  # tests/tiny_generators.py


def test_psnr_and_ssim_match_their_definitions():
    skimage_metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(0)
    a = rng.random((3, 40, 48)).astype(np.float32)
    b = np.clip(a + 0.1 * rng.standard_normal(a.shape), 0, 1).astype(np.float32)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    assert float(psnr(ta, tb)) == pytest.approx(10 * math.log10(1 / np.mean((a - b) ** 2)), rel=1e-5)
    ref = skimage_metrics.structural_similarity(a, b, channel_axis=0, data_range=1.0, gaussian_weights=True,
                                                sigma=1.5, use_sample_covariance=False)
    assert float(ssim(ta, tb)) == pytest.approx(ref, abs=2e-3)  # skimage crops 3 sigma, we use 11 px
    assert float(ssim(ta, ta)) == pytest.approx(1.0, abs=1e-5)
    # weights: only the weighted half counts
    w = torch.zeros(1, 40, 48)
    w[..., :24] = 1.0
    b2 = tb.clone()
    b2[..., 24:] = 0.0  # ruin the unweighted half
    assert float(psnr(ta, b2, w)) == pytest.approx(float(psnr(ta[..., :24], tb[..., :24])), rel=1e-5)
    assert float(ssim(ta, b2, w)) > float(ssim(ta, b2)) + 0.1


def test_orbit_refine_is_an_orbit_about_the_pivot():
    cams = orbit_cameras(torch.tensor([0.0, 0.3]), 0.1)
    same = orbit_refine(cams, torch.zeros(2, 3), torch.zeros(2, 3))
    assert torch.allclose(same.cam2world, cams.cam2world, atol=1e-6)
    turned = orbit_refine(cams, torch.tensor([[0.0, 0.2, 0.0]] * 2), torch.zeros(2, 3))
    assert torch.allclose(turned.cam2world, orbit_cameras(torch.tensor([0.2, 0.5]), 0.1).cam2world, atol=1e-5)
    moved = orbit_refine(cams, torch.zeros(2, 3), torch.tensor([[0.0, 0.0, 0.5]] * 2))  # dolly in
    assert torch.allclose((moved.centers - cams.centers).norm(dim=-1), torch.tensor([0.5, 0.5]), atol=1e-5)
    assert torch.allclose(moved.centers.norm(dim=-1), torch.tensor([2.2, 2.2]), atol=1e-4)


@pytest.mark.slow
def test_fit_recovers_views_and_heads_are_independent():
    G = lively_tiny_generator()
    cams = orbit_cameras(torch.tensor([0.0, 0.5, -0.5]), 0.0)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        w_true = G.map(torch.randn(2, G.config.z_dim, generator=gen))  # [2, num_ws, w_dim]
        both_cams = Cameras(cams.cam2world.expand(2, 3, 4, 4), cams.intrinsics.expand(2, 3, 3, 3))
        images = render_latent(G, w_true, both_cams, 32)  # [2 heads, 3 views, 3, 32, 32]
    cfg = LatentFitConfig(steps=40, lr=0.05, space="w")
    both = fit_latent(G, FitTarget(images, cams), cfg)
    assert both.ws.shape == (2, 1, G.config.w_dim)
    first = [float(s.losses["mse"].sum()) for s in fit_latent_steps(G, FitTarget(images, cams), cfg)]
    assert first[-1] < 0.2 * first[0]
    few = LatentFitConfig(steps=3, lr=0.05, space="w")  # few steps: batched float sums differ in the last bits
    alone = fit_latent(G, FitTarget(images[1:], cams), few)
    assert torch.allclose(alone.ws[0], fit_latent(G, FitTarget(images, cams), few).ws[1], atol=1e-4)
    plus = fit_latent(G, FitTarget(images[:1], cams), LatentFitConfig(steps=3, space="w+", ssim_weight=1.0,
                                                                      views_per_step=2))
    assert plus.ws.shape == (1, G.config.num_ws, G.config.w_dim) and plus.pred.shape[1] == 2
    assert set(plus.losses) == {"mse", "ssim", "total"}


@pytest.mark.slow
def test_camera_decay_brings_the_camera_step_to_rest():
    """With ``camera_decay`` the camera's last moves shrink toward 0; without it they stay at Adam's step."""
    G = lively_tiny_generator()
    true = orbit_cameras(torch.tensor([0.2]), 0.0)
    with torch.no_grad():
        images = render_latent(G, G.map(torch.randn(1, G.config.z_dim, generator=torch.Generator().manual_seed(5))),
                               Cameras(true.cam2world[None], true.intrinsics[None]), 32)
    start = orbit_cameras(torch.tensor([0.0]), 0.0)

    def moves(decay: bool) -> list[float]:
        cfg = LatentFitConfig(steps=20, lr=0.02, space="w", camera_lr=0.01, camera_start=0.0, camera_decay=decay)
        centres = [s.cameras.centers[0, 0].clone() for s in fit_latent_steps(G, FitTarget(images, start), cfg)]
        return [float((b - a).norm()) for a, b in zip(centres, centres[1:])]

    plain, decayed = moves(False), moves(True)
    assert decayed[-1] < 0.15 * decayed[0] and decayed[-1] < 0.3 * plain[-1]
