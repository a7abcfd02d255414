"""Unit checks of the training maths against brute force and the fact sheet's formulas."""

from __future__ import annotations

import math

import pytest
import torch

from core.generator import PRESETS
from training.loop import Models, build_hyperparameters, build_models, resume_differences, update_ema
from training.losses import center_loss, knn_loss, multiview_labels, r1_penalty
from training.options import TrainOptions


def test_knn_loss_matches_brute_force():
    a = torch.randn(2, 20, 3, dtype=torch.float64)
    k = 5
    expected = []
    for b in range(2):
        for i in range(20):
            d = sorted(float(((a[b, i] - a[b, j]) ** 2).sum()) for j in range(20) if j != i)[:k]
            expected += [x / 3 for x in d]
    assert knn_loss(a, k).item() == pytest.approx(sum(expected) / len(expected), rel=1e-12)
    assert knn_loss(a, 100).item() == pytest.approx(knn_loss(a, 19).item())  # k capped at L - 1


def test_center_loss_is_the_squared_centroid():
    a = torch.zeros(3, 10, 3)
    a[..., 0] = 2.0
    assert center_loss(a).item() == pytest.approx(4.0 / 3)
    assert center_loss(a - a.mean(1, keepdim=True)).item() == 0.0


def test_multiview_labels_roll_one_more_sample_per_view():
    labels = torch.arange(5, dtype=torch.float32)[:, None].expand(5, 25)
    mv = multiview_labels(labels, 4)
    assert mv.shape == (5, 4, 25)
    for b in range(5):
        for v in range(4):
            assert mv[b, v, 0].item() == (b - v - 1) % 5  # view v of scene b: camera of sample b - v - 1


def test_r1_penalty_is_the_squared_input_gradient():
    x = torch.randn(3, 3, 4, 4, requires_grad=True)
    w = torch.randn(3, 4, 4)
    logits = (x * w).sum(dim=[1, 2, 3])  # d logit / dx = w
    torch.testing.assert_close(r1_penalty(x, logits), torch.full((3,), float(w.square().sum())))


def test_ema_beta_is_a_half_life_in_images():
    opts = TrainOptions(data="x", batch=32, ema_kimg=10.0, ema_rampup=None)
    G = torch.nn.Linear(1, 1, bias=False)
    G_ema = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        G.weight.fill_(1.0)
        G_ema.weight.fill_(0.0)
    m = Models(G, G_ema, G, None, None)
    steps = 10_000 // 32  # about one half-life of 10 kimg at batch 32
    for _ in range(steps):
        update_ema(m, opts, cur_nimg=10**9)
    assert G_ema.weight.item() == pytest.approx(1 - 0.5 ** (steps * 32 / 10_000), rel=1e-5)
    ramp = TrainOptions(data="x", batch=32, ema_kimg=10.0, ema_rampup=0.05)
    with torch.no_grad():
        G_ema.weight.fill_(0.0)
    update_ema(m, ramp, cur_nimg=32)  # ramp-up: EMA length 1.6 images, beta ~ 0
    assert G_ema.weight.item() == pytest.approx(1.0, abs=1e-6)


def test_optimizer_groups_and_lazy_regularization():
    opts = TrainOptions(data="x", preset="tiny", g_lr=0.0025, d_lr=0.002, betas=(0.0, 0.99), r1_interval=16,
                        d_channel_base=512, d_channel_max=32)
    m = build_models(opts, PRESETS["tiny"], 32, torch.device("cpu"))
    g = m.opt_G.param_groups
    assert g[0]["lr"] == 0.0025 and g[1]["lr"] == pytest.approx(0.000025) and len(g[1]["params"]) == 1
    assert g[1]["params"][0] is m.G.xyz_const
    d = m.opt_D.param_groups[0]
    assert d["lr"] == pytest.approx(0.002 * 16 / 17) and d["betas"][1] == pytest.approx(0.99 ** (16 / 17))
    hp = build_hyperparameters(TrainOptions(data="x", d_lr=0.001, r1_interval=4))
    assert hp["D"][0][0] == pytest.approx(0.001 * 4 / 5)


def test_resume_differences_name_what_breaks_exactness():
    saved = TrainOptions(data="d", batch=32, batch_gpu=8).to_dict()
    assert resume_differences(saved, TrainOptions(data="d", batch=32, batch_gpu=8, g_lr=0.001), 1, 1) == []
    diffs = resume_differences(saved, TrainOptions(data="d", batch=16, batch_gpu=8), 2, 1)
    assert any(d.startswith("batch:") for d in diffs) and "GPUs: 1 -> 2" in diffs


def test_options_validation():
    with pytest.raises(ValueError, match="knn_k"):
        TrainOptions(data="x", knn_k=0)
    with pytest.raises(ValueError, match="minibatch-std"):
        TrainOptions(data="x", batch_gpu=6)
    assert math.isclose(TrainOptions(data="x", batch=64).ema_kimg_value, 20.0)


def test_resume_takes_learning_rates_from_the_current_options():
    from core.checkpoint import Snapshot
    from training.loop import restore

    old = TrainOptions(data="x", preset="tiny", g_lr=0.1, d_lr=0.1, d_channel_base=512, d_channel_max=32)
    m = build_models(old, PRESETS["tiny"], 32, torch.device("cpu"))
    snap = Snapshot(kind="training", generator_config=m.G.config.to_dict(),
                    modules={"G": m.G.state_dict(), "G_ema": m.G_ema.state_dict(), "D": m.D.state_dict()},
                    optimizers={"G": m.opt_G.state_dict(), "D": m.opt_D.state_dict()},
                    training={"progress": {"cur_nimg": 64, "step": 2, "samples_drawn": 64}})
    new = TrainOptions(data="x", preset="tiny", g_lr=0.001, d_lr=0.002, d_channel_base=512, d_channel_max=32)
    m2 = build_models(new, PRESETS["tiny"], 32, torch.device("cpu"))
    assert restore(m2, snap, new) == (64, 2, 64)
    assert m2.opt_G.param_groups[0]["lr"] == 0.001 and m2.opt_G.param_groups[1]["lr"] == pytest.approx(1e-5)
    assert m2.opt_D.param_groups[0]["lr"] == pytest.approx(0.002 * 16 / 17)
    with pytest.raises(ValueError, match="does not fit"):
        restore(m2, Snapshot(kind="training", generator_config={}, modules={}, training={}), new)
