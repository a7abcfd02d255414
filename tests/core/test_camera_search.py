"""core.camera_search: camera hypotheses around an estimate, fitted side by side, the best kept."""

from __future__ import annotations

import math

import pytest
import torch

from core.camera import Cameras, orbit_angles, orbit_cameras
from core.camera_search import (fit_latent_searched, grid_offsets, hypothesis_target, offset_cameras,
                                search_cameras)
from core.latent_fit import FitTarget, LatentFitConfig, render_latent
from tiny_generators import lively_tiny_generator  # tests/tiny_generators.py


def test_grid_offsets_start_with_the_estimate_and_reject_odd_counts():
    yaw, pitch = grid_offsets(9, 4.0)
    assert (yaw[0], pitch[0]) == (0.0, 0.0) and len(set(zip(yaw.tolist(), pitch.tolist()))) == 9
    assert set(yaw.tolist()) == {-4.0, 0.0, 4.0} and set(pitch.tolist()) == {-4.0, 0.0, 4.0}
    assert grid_offsets(5, 2.0)[1].abs().max() == 2.0 and grid_offsets(3, 2.0)[1].abs().max() == 0.0
    assert grid_offsets(1, 3.0)[0].tolist() == [0.0]
    for bad in (2, 4, 16):
        with pytest.raises(ValueError, match="candidates"):
            grid_offsets(bad, 1.0)


def test_offsets_orbit_the_pivot_by_yaw_and_pitch():
    cams = orbit_cameras(torch.tensor([math.radians(20.0), math.radians(-30.0)]),
                         torch.tensor([math.radians(3.0), math.radians(0.0)]))          # [2]
    moved = offset_cameras(cams, torch.tensor([0.0, 10.0, -5.0]), torch.tensor([0.0, 5.0, -8.0]))
    assert tuple(moved.batch_shape) == (3, 2)
    yaw, pitch, radius = orbit_angles(moved)
    expect_yaw = torch.tensor([[20.0, -30.0], [30.0, -20.0], [15.0, -35.0]])
    expect_pitch = torch.tensor([[3.0, 0.0], [8.0, 5.0], [-5.0, -8.0]])
    assert torch.allclose(torch.rad2deg(yaw), expect_yaw, atol=1e-3)
    assert torch.allclose(torch.rad2deg(pitch), expect_pitch, atol=1e-3)
    assert torch.allclose(radius, torch.full((3, 2), 2.7), atol=1e-4)
    # still looking at the pivot, no roll: the forward axis points at the origin, the right axis is level
    fwd = moved.cam2world[..., :3, 2]
    assert torch.allclose(fwd, -torch.nn.functional.normalize(moved.centers, dim=-1), atol=1e-5)
    assert moved.cam2world[..., 1, 0].abs().max() < 1e-5


def _scene(G, yaw_true_deg: list[list[float]], res: int = 32):
    """Heads [B] seen from orbit cameras at ``yaw_true_deg [B][V]``; the estimates are all at yaw 0 + 15 * v."""
    B, V = len(yaw_true_deg), len(yaw_true_deg[0])
    gen = torch.Generator().manual_seed(3)
    true = orbit_cameras(torch.deg2rad(torch.tensor(yaw_true_deg)), 0.0)               # [B, V]
    est = orbit_cameras(torch.deg2rad(torch.tensor([[15.0 * v for v in range(V)]] * B)), 0.0)
    with torch.no_grad():
        w = G.map(torch.randn(B, G.config.z_dim, generator=gen), truncation_psi=0.7)[:, :1]
        images = render_latent(G, w, true, res)
    return images, true, est, w


@pytest.mark.slow
def test_search_picks_the_hypothesis_that_made_each_view():
    G = lively_tiny_generator()
    # head 0 is off by +10 deg in yaw in both views; head 1 by -10 in view 0 and by 0 in view 1
    images, true, est, w = _scene(G, [[10.0, 25.0], [-10.0, 15.0]])
    # from the true latents at a small rate: the scores then measure the cameras alone (a tiny random model's
    # W fit can match a blob from any nearby camera)
    cfg = LatentFitConfig(lr=1e-3, space="w", ssim_weight=0.5)
    yaw, pitch = grid_offsets(9, 10.0)
    found = search_cameras(G, FitTarget(images, est), cfg, yaw, pitch, steps=2, ws_init=w)
    picked = torch.stack([yaw[found.choice], pitch[found.choice]], -1)                 # [B, V, 2]
    assert picked.tolist() == [[[10.0, 0.0], [10.0, 0.0]], [[-10.0, 0.0], [0.0, 0.0]]], found.scores
    assert torch.allclose(found.cameras.cam2world, true.cam2world, atol=1e-4)
    assert found.ws.shape == (2, 1, G.config.w_dim)
    # the scores are the chosen hypotheses' minima
    assert torch.equal(found.scores.argmin(1), found.choice)


@pytest.mark.slow
def test_searched_fit_runs_the_whole_schedule_from_the_chosen_cameras():
    G = lively_tiny_generator()
    images, true, est, w = _scene(G, [[10.0]])
    cfg = LatentFitConfig(steps=12, lr=1e-3, space="w", camera_lr=1e-3)
    yaw, pitch = grid_offsets(3, 10.0)
    steps = list(fit_latent_searched(G, FitTarget(images, est), cfg, yaw, pitch, steps=5, ws_init=w))
    assert [s.step for s in steps] == list(range(1, 13)) and {s.total for s in steps} == {12}
    assert all(s.ws.shape[0] == 1 and tuple(s.cameras.batch_shape) == (1, 1) for s in steps)
    err = lambda c: float((c.centers - true.centers).norm())  # noqa: E731
    assert err(steps[-1].cameras) < 0.3 * err(est)          # it started from the +10 deg hypothesis
    plain = list(fit_latent_searched(G, FitTarget(images, est), cfg, yaw[:1], pitch[:1], steps=5, ws_init=w))
    assert len(plain) == 12 and err(plain[-1].cameras) > err(steps[-1].cameras)
    with pytest.raises(ValueError, match="must leave steps"):
        next(fit_latent_searched(G, FitTarget(images, est), cfg, yaw, pitch, steps=12))


def test_hypothesis_target_repeats_heads_in_blocks():
    images = torch.rand(2, 1, 3, 8, 8)
    est = orbit_cameras(torch.zeros(2, 1), 0.0)
    hyp = hypothesis_target(FitTarget(images, est), *grid_offsets(3, 5.0))
    assert hyp.heads == 6 and torch.equal(hyp.images[3], images[1])
    yaw = torch.rad2deg(orbit_angles(Cameras(hyp.cameras.cam2world, hyp.cameras.intrinsics))[0])[:, 0]
    assert torch.allclose(yaw, torch.tensor([0.0, -5.0, 5.0] * 2), atol=1e-3)
