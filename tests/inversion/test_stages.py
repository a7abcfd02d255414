"""Stage 1 and stage 2 on a tiny generator with explicitly requested stand-in loss networks."""

from __future__ import annotations

import threading

import pytest
import torch

from inversion.framing import SYNTHETIC_HEADS
from inversion.latent_search import LatentConfig, invert_latent
from inversion.objective import LossNetworks, LossWeights, Objective
from inversion.pivotal_tuning import GeneratorSwap, TuningConfig, tune_generator
from inversion.steps import last_step, render_views

STAND_INS = LossNetworks(allow_random=True)  # random LPIPS/ID backbones: tests only


def _mse_objective() -> Objective:
    return Objective(LossWeights(id=0.0, mse=1.0, lpips=0.0), SYNTHETIC_HEADS, STAND_INS)


@pytest.mark.slow
def test_stage1_reduces_the_loss(tiny_G, tiny_target):
    cfg = LatentConfig(steps=8, lr=0.1, warmup=0.0, rampdown=0.0, space="w+", batch_size=2,
                       noise_strength=0.0, refine_cameras=False, losses=LossWeights(id=0.0, mse=1.0, lpips=0.0))
    steps = list(invert_latent(tiny_G, tiny_target, cfg, _mse_objective()))
    assert [s.step for s in steps] == list(range(1, 9))
    first, last = steps[0], steps[-1]
    with torch.no_grad():
        pred = render_views(tiny_G, last.ws, tiny_target.cameras, 32)
    final = float(((pred - tiny_target.images) ** 2).mean())
    assert final < 0.5 * first.losses["mse"]
    assert last.ws.shape == (1, tiny_G.config.num_ws, tiny_G.config.w_dim)
    assert last.preview.shape == (32, 32, 3) and last.preview.dtype.name == "uint8"
    assert set(last.losses) == {"total", "mse"}


@pytest.mark.slow
def test_stage1_all_losses_w_space_and_camera_refinement(tiny_G, tiny_target):
    obj = Objective(LossWeights(id=0.1, mse=1.0, lpips=1.0, ssim=0.5), SYNTHETIC_HEADS, STAND_INS)
    assert obj.sources == {"lpips": "random stand-in", "id": "random stand-in"}
    cfg = LatentConfig(steps=3, lr=0.05, space="w", batch_size=1, camera_start=0.0, camera_lr=0.01,
                       losses=obj.weights)
    steps = list(invert_latent(tiny_G, tiny_target, cfg, obj))
    assert steps[-1].ws.shape == (1, 1, tiny_G.config.w_dim)
    moved = (steps[-1].cameras.cam2world - tiny_target.cameras.cam2world).abs().sum(dim=(1, 2))
    assert (moved > 0).any()  # the cameras of the photos seen so far moved
    assert all(s.losses["id"] >= 0 and s.losses["lpips"] >= 0 and 0 <= s.losses["ssim"] <= 2 for s in steps)


@pytest.mark.slow
def test_stage1_camera_search_finds_the_cameras_of_the_photos(tiny_G, tiny_target):
    """Both photos' estimates are 10 deg off in yaw; the search (from the true latent, so the scores measure
    the cameras) moves each to the camera that rendered it, then the run goes on (with LPIPS/ID) to its end."""
    from core.camera_search import offset_cameras

    ws = torch.randn(1, tiny_G.config.num_ws, tiny_G.config.w_dim, generator=torch.Generator().manual_seed(1)) * 2
    off = offset_cameras(tiny_target.cameras, torch.tensor([-10.0]), torch.tensor([0.0]))[0]
    target = tiny_target.with_cameras(off)
    obj = Objective(LossWeights(id=0.1, mse=1.0, lpips=1.0, ssim=0.5), SYNTHETIC_HEADS, STAND_INS)
    cfg = LatentConfig(steps=5, lr=1e-3, space="w+", batch_size=2, refine_cameras=False, losses=obj.weights,
                       camera_candidates=9, camera_search_deg=10.0, camera_search_steps=2)
    steps = list(invert_latent(tiny_G, target, cfg, obj, start=ws))
    assert [s.step for s in steps] == [1, 2, 3, 4, 5] and {s.total_steps for s in steps} == {5}
    assert torch.allclose(steps[-1].cameras.cam2world, tiny_target.cameras.cam2world, atol=1e-4)
    assert "lpips" in steps[-1].losses and "lpips" not in steps[0].losses  # the search scores pixels only
    with pytest.raises(ValueError, match="camera_search_steps"):
        LatentConfig(steps=5, camera_candidates=9, camera_search_steps=5)


@pytest.mark.slow
def test_stage2_leaves_the_original_untouched_and_restores(tiny_G, tiny_target):
    before = {k: v.clone() for k, v in tiny_G.state_dict().items()}
    flags = [p.requires_grad for p in tiny_G.parameters()]
    pivot = tiny_G.mapping.w_avg[None, None].repeat(1, tiny_G.config.num_ws, 1)
    cfg = TuningConfig(steps=3, lr=1e-2, batch_size=2, losses=LossWeights(id=0.0, mse=1.0, lpips=0.0),
                       locality_weight=0.1, locality_alpha=5.0)
    steps = list(tune_generator(tiny_G, pivot, tiny_target, cfg, _mse_objective()))
    tuned = steps[-1].generator
    assert tuned is not tiny_G and "locality" in steps[-1].losses
    for k, v in tiny_G.state_dict().items():
        assert torch.equal(v, before[k]), f"original generator changed: {k}"
    assert [p.requires_grad for p in tiny_G.parameters()] == flags
    assert any(not torch.equal(a, b) for a, b in zip(tuned.parameters(), tiny_G.parameters()))
    assert steps[-1].losses["mse"] < steps[0].losses["mse"]
    swap = GeneratorSwap(tiny_G)
    swap.use(tuned)
    assert swap.is_tuned and swap.current is tuned
    assert swap.restore() is tiny_G and not swap.is_tuned


def test_cancel_event_and_close_stop_a_stage(tiny_G, tiny_target):
    cancel = threading.Event()
    cfg = LatentConfig(steps=50, batch_size=2, refine_cameras=False, preview_every=0,
                       losses=LossWeights(id=0.0, mse=1.0, lpips=0.0))
    seen = []
    for step in invert_latent(tiny_G, tiny_target, cfg, _mse_objective(), cancel=cancel):
        seen.append(step.step)
        if step.step == 2:
            cancel.set()
    assert seen == [1, 2]
    gen = tune_generator(tiny_G, torch.zeros(1, 1, tiny_G.config.w_dim), tiny_target,
                         TuningConfig(steps=50, losses=LossWeights(id=0.0, mse=1.0, lpips=0.0),
                                      locality_weight=0.0),
                         _mse_objective())
    assert next(gen).step == 1
    gen.close()  # the viewer's other way out
    assert last_step(gen) is None
    cancel2 = threading.Event()
    cancel2.set()
    assert last_step(invert_latent(tiny_G, tiny_target, cfg, _mse_objective(), cancel=cancel2)) is None
    assert all(p.requires_grad for p in tiny_G.parameters())  # flags restored after a cancelled stage 1


def test_both_stages_fit_at_most_max_resolution(tiny_G, tiny_target):
    """``max_resolution`` fits a downsampled copy of the photos (the quick preset's 128 px on the CPU): the
    previews come out at that size, the cameras are unchanged (their intrinsics are resolution-free), and a
    photo already that small is used as it is."""
    from inversion.config import PRESETS, preset_settings

    half = tiny_target.at_most(16)
    assert tuple(half.images.shape) == (2, 3, 16, 16) and tuple(half.weights.shape) == (2, 1, 16, 16)
    assert half.cameras is tiny_target.cameras and tiny_target.at_most(32) is tiny_target
    assert tiny_target.at_most(0) is tiny_target
    assert torch.allclose(half.images.mean(), tiny_target.images.mean(), atol=0.02)  # an average, not a crop
    mse = LossWeights(id=0.0, mse=1.0, lpips=0.0)
    cfg = LatentConfig(steps=2, batch_size=2, refine_cameras=False, losses=mse, max_resolution=16)
    latent = list(invert_latent(tiny_G, tiny_target, cfg, _mse_objective()))
    assert latent[-1].preview.shape == (16, 16, 3)
    pivot = latent[-1].ws.expand(1, tiny_G.config.num_ws, -1).contiguous()
    tuned = list(tune_generator(tiny_G, pivot, tiny_target, TuningConfig(
        steps=1, batch_size=2, losses=LossWeights(id=0.0, mse=1.0, lpips=0.0), max_resolution=16),
        _mse_objective()))
    assert tuned[-1].preview.shape == (16, 16, 3)
    for bad in (8, -1):
        with pytest.raises(ValueError, match="max_resolution"):
            LatentConfig(max_resolution=bad)
        with pytest.raises(ValueError, match="max_resolution"):
            TuningConfig(max_resolution=bad)
    quick = preset_settings("quick", resolution=256)
    assert PRESETS["quick"].max_resolution == 128
    assert quick.latent.max_resolution == quick.tuning.max_resolution == 128
    assert preset_settings("standard", resolution=256).latent.max_resolution == 0
