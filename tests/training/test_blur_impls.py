"""The discriminator's blurs without depthwise convolutions (``d_blur="slices"``, ``"slices_bf16"``,
``"matmul"``) compute what the depthwise convolution blur computes: forward, first backward and the R1
penalty's double backward, float32 and bf16 autocast, NCHW and channels-last; the option travels through
TrainOptions, the command line, resume notes and a real training step (CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from training.discriminator import Discriminator, DiscriminatorConfig, EqualConv2d
from training.discriminator_conv import blur, blur_filter, blur_matmul, blur_matrix, blur_slices
from training.loop import build_models, resume_differences, train
from training.options import TrainOptions
from noise_data import write_noise_dataset  # tests/training/noise_data.py

# (padding, stride) of the D's blurs: the 1x1 skip path, and before the 3x3 stride-2 conv ((3 + 1) // 2).
D_BLURS = [(1, 2), (2, 1)]
BF16_ULP = 2.0**-7  # relative spacing of bf16 numbers in [1, 2)


def _x(channels_last: bool, shape=(2, 5, 12, 12), seed=0) -> torch.Tensor:
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


EXACT_IMPLS = {"slices": blur_slices, "matmul": blur_matmul}  # float32: the same sums as the convolution


@pytest.mark.parametrize("impl", list(EXACT_IMPLS))
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("padding, stride", D_BLURS + [(0, 1), (3, 2)])
def test_forward_and_backward_equal_the_depthwise_conv_float32(padding, stride, channels_last, impl):
    x1 = _x(channels_last).requires_grad_(True)
    x2 = x1.detach().clone().requires_grad_(True)
    a, b = blur(x1, blur_filter(), padding, stride), EXACT_IMPLS[impl](x2, padding, stride)
    n = (12 + 2 * padding - 4) // stride + 1
    assert b.shape == a.shape == (2, 5, n, n)
    torch.testing.assert_close(b, a, rtol=0, atol=1e-6)
    assert b.is_contiguous(memory_format=torch.channels_last) == channels_last
    g = torch.randn_like(a)
    (a * g).sum().backward()
    (b * g).sum().backward()
    torch.testing.assert_close(x2.grad, x1.grad, rtol=0, atol=1e-6)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("padding, stride", D_BLURS)
def test_bf16_autocast_differs_by_bf16_rounding_only(padding, stride, channels_last):
    x = _x(channels_last)
    xb = x.bfloat16().float()  # what both see under autocast
    ref = blur(xb, blur_filter(), padding, stride)  # float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a = blur(x, blur_filter(), padding, stride)
        b = blur_slices(x, padding, stride)
        b16 = blur_slices(x, padding, stride, reduced_sums=True)
        m = blur_matmul(x, padding, stride)
    assert a.dtype == b.dtype == b16.dtype == m.dtype == torch.bfloat16
    assert all(y.is_contiguous(memory_format=torch.channels_last) == channels_last for y in (a, b, b16, m))
    torch.testing.assert_close(b, ref.bfloat16(), rtol=0, atol=0)  # float32 sums, one rounding
    scale = ref.abs().clamp_min(1.0)
    # the convolution's and the matmul's rounding (one per axis); bf16 partial sums: up to 3 per axis
    for y in (a, b16, m):
        assert float(((y.float() - ref) / scale).abs().max()) <= 4 * BF16_ULP
    assert float(((b16.float() - ref) / scale).abs().max()) > 0  # the sums do round


@pytest.mark.parametrize("impl", list(EXACT_IMPLS))
def test_backward_of_bf16_blur_under_autocast_is_close(impl):
    x1 = _x(True).requires_grad_(True)
    x2 = x1.detach().clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a, b = blur(x1, blur_filter(), 2, 1), EXACT_IMPLS[impl](x2, 2, 1)
    g = torch.randn(a.shape).bfloat16()
    (a.float() * g).sum().backward()
    (b.float() * g).sum().backward()
    assert x2.grad.dtype == torch.float32
    torch.testing.assert_close(x2.grad, x1.grad, rtol=4 * BF16_ULP, atol=4 * BF16_ULP)


def _tiny_d(blur_impl: str, channels_last: bool = False, autocast_blocks: int = 0) -> Discriminator:
    torch.manual_seed(0)
    d = Discriminator(DiscriminatorConfig(resolution=16, channel_base=256, channel_max=16, cmap_dim=8,
                                          num_autocast_blocks=autocast_blocks), blur_impl=blur_impl)
    d.channels_last = channels_last
    return d


def _r1_gradients(d: Discriminator, autocast: bool, device: str = "cpu") -> dict[str, torch.Tensor]:
    """Gradients w.r.t. D's weights of an R1-like penalty: |d sum D(x) / dx|^2 (create_graph, as R1)."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 3, 16, 16, generator=g).to(device).requires_grad_(True)
    c = torch.randn(4, 25, generator=g).to(device)
    with torch.autocast(device, dtype=torch.bfloat16, enabled=autocast):
        logits = d(x, c)
    (gx,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    (gx.square().sum() + logits.square().sum()).backward()
    return {k: p.grad.detach().cpu().clone() for k, p in d.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("impl", list(EXACT_IMPLS))
@pytest.mark.parametrize("channels_last", [False, True])
def test_r1_double_backward_through_d_equals_the_conv_blur_float32(channels_last, impl):
    conv = _r1_gradients(_tiny_d("conv", channels_last), autocast=False)
    slices = _r1_gradients(_tiny_d(impl, channels_last), autocast=False)
    assert conv.keys() == slices.keys() and len(conv) > 10
    for k in conv:
        torch.testing.assert_close(slices[k], conv[k], rtol=1e-4, atol=1e-6, msg=k)
    assert any(k.startswith("blocks.b16.conv1") for k in conv)  # the blurred layers got gradients


def _flat(grads: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([g.flatten() / g.norm() for k, g in grads.items() if k.startswith("blocks")])


@pytest.mark.parametrize("impl", ["slices", "slices_bf16", "matmul"])
def test_r1_double_backward_under_bf16_autocast_is_as_close_to_float32_as_the_conv(impl):
    # bf16 R1 gradients of a tiny D are ~3-10 % off float32 whatever the blur (other seeds give either one the
    # edge); the slices must be bf16 noise of the same size, not different maths.
    ref = _flat(_r1_gradients(_tiny_d("conv", autocast_blocks=2), autocast=False))
    conv = _flat(_r1_gradients(_tiny_d("conv", autocast_blocks=2), autocast=True))
    slices = _flat(_r1_gradients(_tiny_d(impl, autocast_blocks=2), autocast=True))
    assert torch.isfinite(slices).all()
    err_conv, err_slices = float((conv - ref).norm() / ref.norm()), float((slices - ref).norm() / ref.norm())
    assert 0 < err_slices < max(2 * err_conv, 0.05), (err_slices, err_conv)


@pytest.mark.parametrize("n, padding, stride", [(12, 1, 2), (12, 2, 1), (7, 3, 2), (4, 0, 1)])
def test_blur_matrix_rows_hold_the_taps_at_the_strided_offsets(n, padding, stride):
    b = blur_matrix(n, padding, stride, torch.float32, torch.device("cpu"))
    m = (n + 2 * padding - 4) // stride + 1
    assert b.shape == (m, n)
    x = torch.arange(n, dtype=torch.float32) ** 2  # not linear, so a misplaced tap shows
    padded = torch.nn.functional.pad(x, (padding, padding))
    expect = torch.stack([(padded[stride * i:stride * i + 4] * torch.tensor([1, 3, 3, 1]) / 8).sum()
                          for i in range(m)])
    torch.testing.assert_close(b @ x, expect)
    assert b is blur_matrix(n, padding, stride, torch.float32, torch.device("cpu"))  # cached


def test_matrix_cache_survives_a_first_call_under_inference_mode():
    with torch.inference_mode():
        blur_matmul(torch.randn(1, 2, 13, 13), 1, 2)  # first use of this shape: the matrix is cached here
    x = torch.randn(1, 2, 13, 13, requires_grad=True)
    blur_matmul(x, 1, 2).square().sum().backward()  # autograd saves the cached matrix
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_resuming_a_run_saved_before_the_option_keeps_its_conv_blur(monkeypatch):
    import training.snapshots as snapshots
    from training.__main__ import resolve_defaults

    saved = TrainOptions(data="d").to_dict()
    del saved["d_blur"]  # options.json of a run from before 2026-12-02
    monkeypatch.setattr(snapshots, "find_resume_point", lambda source: type("P", (), {"options": saved})())
    defaults, _, _ = resolve_defaults(["--resume", "old-run"])
    assert defaults.d_blur == "conv"  # not today's default: the run continues as it was
    saved["d_blur"] = "slices"
    assert resolve_defaults(["--resume", "old-run"])[0].d_blur == "slices"


def test_blur_impl_is_checked_and_shown():
    with pytest.raises(ValueError, match="blur_impl"):
        _tiny_d("fft")
    with pytest.raises(ValueError, match="blur_impl"):
        EqualConv2d(4, 4, 3, down=2, blur_impl="fft")
    d = _tiny_d("slices")
    blurred = [m for m in d.modules() if isinstance(m, EqualConv2d) and m.down > 1]
    assert len(blurred) == 4 and all(m.blur_impl == "slices" for m in blurred)
    assert "blur=slices" in repr(d)
    assert d.state_dict().keys() == _tiny_d("conv").state_dict().keys()  # snapshots fit either


def test_option_round_trip_cli_and_resume_note():
    tyro = pytest.importorskip("tyro")  # the GPU machine may lack it; the rest of this file does not need it
    opts = TrainOptions(data="d", d_blur="slices")
    assert TrainOptions.from_dict(json.loads(json.dumps(opts.to_dict()))) == opts
    assert TrainOptions(data="d").d_blur == "matmul"
    with pytest.raises(ValueError, match="d_blur"):
        TrainOptions(data="d", d_blur="fft")
    assert tyro.cli(TrainOptions, args=["--data", "d", "--d-blur", "slices"]).d_blur == "slices"
    assert tyro.cli(TrainOptions, args=["--data", "d", "--d-blur", "slices_bf16"]).d_blur == "slices_bf16"
    assert tyro.cli(TrainOptions, args=["--data", "d", "--d-blur", "matmul"]).d_blur == "matmul"
    with pytest.raises(SystemExit):
        tyro.cli(TrainOptions, args=["--data", "d", "--d-blur", "fft"])
    saved = TrainOptions(data="d").to_dict()
    assert resume_differences(saved, TrainOptions(data="d", d_blur="slices"), 1, 1) == ["d_blur: 'matmul' -> 'slices'"]
    assert resume_differences(saved, TrainOptions(data="d"), 1, 1) == []
    del saved["d_blur"]  # a run saved before the option existed blurred with convolutions
    assert resume_differences(saved, TrainOptions(data="d", d_blur="slices"), 1, 1) == ["d_blur: 'conv' -> 'slices'"]
    assert resume_differences(saved, TrainOptions(data="d", d_blur="conv"), 1, 1) == []


def _tiny_run(data: Path, outdir: Path, **kw) -> TrainOptions:
    """A CPU training run of the tiny preset at 32 px, ticks of 0.004 kimg; ``kw`` sets the rest."""
    return TrainOptions(data=str(data), outdir=str(outdir), preset="tiny", resolution=32, batch=4, batch_gpu=4,
                        num_views=2, d_channel_base=512, d_channel_max=32, workers=0, device="cpu", knn_k=8,
                        tick_kimg=0.004, image_snap_kimg=1.0, **kw)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_noise_dataset(tmp_path_factory.mktemp("data"), 32)


def test_tiny_training_run_with_slices_blur(data, tmp_path):
    opts = _tiny_run(data, tmp_path, r1_interval=1, kimg=0.008, snap_kimg=0.008, d_bf16_blocks=1, d_blur="slices")
    from core.generator import PRESETS

    m = build_models(opts, PRESETS["tiny"], 32, torch.device("cpu"))
    assert m.D.blur_impl == "slices"
    run = train(opts, progress=False)
    ticks = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert ticks[-1]["kimg"] == pytest.approx(0.008)
    assert all(np.isfinite(ticks[-1][k]) for k in ("G_adv", "D_real", "D_fake"))
    saved = json.loads((run / "options.json").read_text())
    assert saved["options"]["d_blur"] == "slices"
    # `python -m training --resume RUN` keeps the run's blur unless --d-blur is given
    from training.__main__ import resolve_defaults

    defaults, _, _ = resolve_defaults(["--resume", str(run)])
    assert defaults.d_blur == "slices"
    tyro = pytest.importorskip("tyro")
    assert tyro.cli(TrainOptions, args=["--d-blur", "conv"], default=defaults).d_blur == "conv"


def test_tiny_training_runs_with_conv_and_matmul_blurs_log_the_same_losses(data, tmp_path):
    # The same linear map end to end: float32, same seed, deterministic kernels; 4 steps of the real loop,
    # R1 included. The first tick (one step, the same weights) agrees to float rounding; later ticks drift a
    # little, as Adam's normalised steps amplify rounding in near-zero gradients (and D_r1, a squared gradient
    # norm of ~3e-4, most), but a blur that computed something else would differ at once.
    stats = {}
    for impl in ("conv", "matmul"):
        opts = _tiny_run(data, tmp_path / impl, r1_interval=2, kimg=0.016, snap_kimg=1.0, deterministic=True,
                         d_blur=impl, seed=3)
        run = train(opts, progress=False)
        stats[impl] = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert not torch.are_deterministic_algorithms_enabled()  # train() gave the process its mode back
    assert len(stats["conv"]) == len(stats["matmul"]) == 4
    for i, (a, b) in enumerate(zip(stats["conv"], stats["matmul"])):
        for k in ("G_adv", "D_real", "D_fake", "D_r1"):
            if a.get(k) is not None:  # D_r1 only in ticks with an R1 step
                assert b[k] == pytest.approx(a[k], rel=1e-5 if i == 0 else 5e-2), (k, a["kimg"])


@pytest.mark.gpu
@pytest.mark.parametrize("impl", ["slices", "slices_bf16", "matmul"])
def test_cuda_channels_last_bf16_r1_matches_the_conv_blur(impl, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    ref = _flat(_r1_gradients(_tiny_d("conv", True, autocast_blocks=2).cuda(), autocast=False, device="cuda"))
    conv = _flat(_r1_gradients(_tiny_d("conv", True, autocast_blocks=2).cuda(), autocast=True, device="cuda"))
    slices = _flat(_r1_gradients(_tiny_d(impl, True, autocast_blocks=2).cuda(), autocast=True, device="cuda"))
    exact = _flat(_r1_gradients(_tiny_d(impl, True).cuda(), autocast=False, device="cuda"))
    torch.testing.assert_close(exact, ref, rtol=1e-4, atol=1e-6)
    err_conv, err_slices = float((conv - ref).norm() / ref.norm()), float((slices - ref).norm() / ref.norm())
    assert 0 < err_slices < max(2 * err_conv, 0.05), (err_slices, err_conv)
