"""The speed options of the training step compute what the plain step computes (CPU; one CUDA test).

Batched D calls (views and reals+fakes in one call, minibatch std per part), channels-last activations,
fused Adam and the on-device failure flag change no maths; bf16 D blocks do (checked for finiteness and
closeness only). See docs/training.md, "Training speed".
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.generator import PRESETS
from training.dataset import DatasetOptions, ImageLabelDataset
from training.discriminator import Discriminator, DiscriminatorConfig, minibatch_std
from training.distributed import DistInfo
from training.loop import STAT_KEYS, Trainer, TrainingStopped, build_models, train, update_ema
from training.no_sync import FAIL_D, FAIL_G, FailureFlag
from training.options import TrainOptions
from noise_data import write_noise_dataset  # tests/training/noise_data.py

RES = 32


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_noise_dataset(tmp_path_factory.mktemp("data"), RES)


def options(data: Path, tmp: Path, **kw) -> TrainOptions:
    base = dict(data=str(data), outdir=str(tmp), preset="tiny", resolution=RES, batch=8, batch_gpu=4, num_views=3,
                d_channel_base=512, d_channel_max=32, workers=0, device="cpu", r1_interval=1, knn_k=8,
                kimg=0.016, tick_kimg=0.008, snap_kimg=0.016, image_snap_kimg=1.0)
    base.update(kw)
    return TrainOptions(**base)


def one_step(opts: TrainOptions, models=None):
    """Models after one step (R1 included) from seed 0, and the step's losses."""
    torch.manual_seed(0)
    dataset = ImageLabelDataset(DatasetOptions(path=opts.data, xflip=False))
    m = models or build_models(opts, PRESETS["tiny"], RES, torch.device("cpu"))
    trainer = Trainer(opts, DistInfo(0, 1, torch.device("cpu")), dataset, m, RES)
    reals = [(torch.stack([dataset[i][0] for i in range(r * 4, r * 4 + 4)]),
              torch.stack([dataset[i][1] for i in range(r * 4, r * 4 + 4)])) for r in range(trainer.rounds)]
    stats = trainer.step(0, 0, reals)
    trainer.raise_if_failed(wait=True)
    return m, stats


def assert_models_close(a, b, rtol=1e-4, atol=1e-6):
    for name in ("G", "D"):
        for (k, p), q in zip(getattr(a, name).named_parameters(), getattr(b, name).parameters()):
            torch.testing.assert_close(p, q, rtol=rtol, atol=atol, msg=f"{name}.{k}")


def test_cuda_graphs_option_is_ignored_on_the_cpu(data, tmp_path):
    """g_cuda_graphs only changes how the D step's generator forward is launched on CUDA: on the CPU the step is
    the plain one, to the bit."""
    plain_m, plain = one_step(options(data, tmp_path / "a"))
    m, stats = one_step(options(data, tmp_path / "b", g_cuda_graphs=True))
    assert torch.equal(stats, plain)
    assert_models_close(m, plain_m, rtol=0, atol=0)


def test_minibatch_std_chunks_equal_separate_calls():
    x = torch.randn(24, 6, 4, 4)
    joint = minibatch_std(x, 4, 2, chunks=3)
    parts = torch.cat([minibatch_std(x[i * 8:(i + 1) * 8], 4, 2) for i in range(3)])
    torch.testing.assert_close(joint, parts)
    assert not torch.allclose(minibatch_std(x, 4, 2), joint)  # without chunks the groups would mix the parts
    with pytest.raises(ValueError, match="chunks"):
        minibatch_std(x, 4, 2, chunks=5)


def test_discriminator_chunks_and_channels_last_equal_plain_calls():
    torch.manual_seed(0)
    D = Discriminator(DiscriminatorConfig(resolution=16, channel_base=256, channel_max=32, cmap_dim=16))
    img, c = torch.randn(12, 3, 16, 16), torch.randn(12, 25)
    plain = torch.cat([D(img[i * 4:(i + 1) * 4], c[i * 4:(i + 1) * 4]) for i in range(3)])
    torch.testing.assert_close(D(img, c, chunks=3), plain, rtol=1e-5, atol=1e-6)
    D.channels_last = True
    torch.testing.assert_close(D(img, c, chunks=3), plain, rtol=1e-5, atol=1e-5)


def test_batched_d_calls_give_the_same_step(data, tmp_path):
    batched, stats_b = one_step(options(data, tmp_path, batch_d_calls=True))
    separate, stats_s = one_step(options(data, tmp_path, batch_d_calls=False))
    torch.testing.assert_close(stats_b, stats_s, rtol=1e-5, atol=1e-6)
    assert_models_close(batched, separate)


def test_bf16_d_blocks_stay_close_to_float32(data, tmp_path):
    opts = options(data, tmp_path, d_bf16_blocks=1)
    m, stats = one_step(opts)
    assert m.D.config.num_autocast_blocks == 1
    _, ref = one_step(options(data, tmp_path))
    assert torch.isfinite(stats).all()
    i = STAT_KEYS.index("D_real")
    assert abs(float(stats[i] - ref[i])) < 0.05  # bf16 rounds the convolutions, not the maths


def test_fused_adam_skips_the_update_after_a_failure():
    p = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.Adam([p], lr=0.1, betas=(0.0, 0.99), fused=True)
    flag = FailureFlag(torch.device("cpu"), STAT_KEYS)
    p.grad = torch.tensor([1.0, float("nan"), 1.0])
    flag.mark(torch.isfinite(p.grad).all(), FAIL_G, step=7)
    flag.mark(torch.tensor(False), FAIL_D, step=8)  # the first failure wins
    opt.found_inf = flag.found_inf()
    opt.step()
    assert torch.equal(p.detach(), torch.ones(3))
    assert "non-finite G gradients at step 7" in flag.read()
    ok = FailureFlag(torch.device("cpu"), STAT_KEYS)
    ok.mark(torch.tensor(True), FAIL_G, step=1)
    assert ok.read() is None and float(ok.found_inf()) == 0.0


def test_resumed_non_fused_optimizer_becomes_fused(data, tmp_path):
    from training.trainer import _use_fused

    opts = options(data, tmp_path)
    m = build_models(opts, PRESETS["tiny"], RES, torch.device("cpu"))
    old = torch.optim.Adam(m.D.parameters(), lr=0.002, betas=(0.0, 0.99), foreach=True)
    m.D(torch.randn(4, 3, RES, RES), torch.randn(4, 25)).sum().backward()
    old.step()
    fresh = torch.optim.Adam(m.D.parameters(), lr=0.002, betas=(0.0, 0.99), fused=True)
    fresh.load_state_dict(old.state_dict())  # as a resume from a snapshot of a non-fused run
    assert _use_fused(fresh) and all(g["fused"] for g in fresh.param_groups)
    fresh.step()  # runs fused with the converted step counters


def test_ema_update_is_the_lerp_formula(data, tmp_path):
    opts = options(data, tmp_path, ema_rampup=None)
    m = build_models(opts, PRESETS["tiny"], RES, torch.device("cpu"))
    with torch.no_grad():
        for p in m.G.parameters():
            p.add_(torch.randn_like(p))
    before = copy.deepcopy(m.G_ema)
    update_ema(m, opts, cur_nimg=10**6)
    beta = 0.5 ** (opts.batch / (opts.ema_kimg_value * 1000))
    for p_new, p_old, p in zip(m.G_ema.parameters(), before.parameters(), m.G.parameters()):
        assert torch.equal(p_new, p.detach().lerp(p_old, beta))


def test_tiny_run_with_every_speed_option(data, tmp_path):
    run = train(options(data, tmp_path, d_bf16_blocks=2, batch_d_calls=True, channels_last=True), progress=False)
    ticks = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert ticks[-1]["kimg"] == pytest.approx(0.016)
    assert all(np.isfinite(ticks[-1][k]) for k in ("G_adv", "D_real", "D_fake"))


def test_failure_found_late_still_stops_before_the_snapshot(data, tmp_path, monkeypatch):
    import training.trainer as trainer

    real = trainer.center_loss
    monkeypatch.setattr(trainer, "center_loss", lambda a: real(a) * float("inf"))
    with pytest.raises(TrainingStopped, match="non-finite G gradients at step 0"):
        train(options(data, tmp_path), progress=False)
    run = next(tmp_path.iterdir())
    assert not list(run.glob("network-snapshot-*"))  # nothing after the failure was saved


@pytest.mark.gpu
def test_cuda_step_with_every_speed_option(data, tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    opts = options(data, tmp_path, device="cuda", d_bf16_blocks=2, channels_last=True, batch_d_calls=True)
    torch.manual_seed(0)
    dataset = ImageLabelDataset(DatasetOptions(path=opts.data, xflip=False))
    dev = torch.device("cuda")
    m = build_models(opts, PRESETS["tiny"], RES, dev)
    assert m.D.channels_last
    trainer = Trainer(opts, DistInfo(0, 1, dev), dataset, m, RES)
    reals = [(torch.stack([dataset[i][0] for i in range(4)]), torch.stack([dataset[i][1] for i in range(4)]))] * 2
    stats = trainer.step(0, 0, reals)
    trainer.raise_if_failed(wait=True)
    assert torch.isfinite(stats).all()
    img, c = torch.randn(8, 3, RES, RES, device=dev), torch.randn(8, 25, device=dev)
    m.D.channels_last = False
    plain = m.D(img, c, chunks=2)
    m.D.channels_last = True
    torch.testing.assert_close(m.D(img, c, chunks=2), plain, rtol=2e-3, atol=2e-3)  # TF32 either way


@pytest.mark.gpu
def test_cuda_graph_for_the_d_step_fakes_changes_nothing(data, tmp_path):
    """g_cuda_graphs replays the D step's generator forward from a CUDA graph: three steps give the losses and
    weights of the eager steps, within the spread of two eager runs (gsplat's and cuDNN's backward kernels
    accumulate in no fixed order, so eager runs need not be bit-equal either) or 2 % of how far the three steps
    moved each weight tensor (Adam turns a rounding-level gradient difference into up to a whole step for a
    weight whose gradient is near zero; measured on the H200: 5.9e-5 where the steps moved the weights ~7e-3).
    A graph replaying stale weights would show in the per-step losses (the D step's fakes and their scores keep
    the tight bound) and in G's w_avg buffer; G's weights themselves move by its own, eager, step."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    torch.backends.cuda.matmul.allow_tf32 = False
    dev = torch.device("cuda")
    results = []
    for run, graphs in enumerate((False, False, True)):
        opts = options(data, tmp_path / str(run), device="cuda", g_cuda_graphs=graphs)
        torch.manual_seed(0)
        dataset = ImageLabelDataset(DatasetOptions(path=opts.data, xflip=False))
        m = build_models(opts, PRESETS["tiny"], RES, dev)
        initial = [torch.zeros(())] + [v.clone() for v in m.G.state_dict().values()]  # no bound for the stats
        trainer = Trainer(opts, DistInfo(0, 1, dev), dataset, m, RES)
        reals = [(torch.stack([dataset[i][0] for i in range(4)]), torch.stack([dataset[i][1] for i in range(4)]))] * 2
        stats = [trainer.step(s, s * opts.batch, reals) for s in range(3)]
        trainer.raise_if_failed(wait=True)
        assert bool(trainer._fakes_graph) == graphs and not trainer.notes
        results.append([torch.stack(stats)] + [v.clone() for v in m.G.state_dict().values()])
    eager, eager_again, graphed = results
    for i, (a, b, g) in enumerate(zip(eager, eager_again, graphed)):
        spread = float((a - b).abs().max())
        moved = float((a - initial[i].to(a.device)).abs().max()) if i else 0.0
        assert float((g - a).abs().max()) <= max(10 * spread, 1e-5 * (1 + float(a.abs().max())), 0.02 * moved)
