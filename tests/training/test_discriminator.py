"""The camera-conditioned discriminator (training/discriminator.py) and the D-input blur (training/blur.py).

Small on purpose (16-32 px, at most 64 channels): shapes, conditioning, minibatch-std grouping, R1's double
backward (checked against finite differences in float64), gradients to every parameter, equalized-lr scales,
reduced precision (bf16 autocast, conv clamp), configs, parameter counts (on the meta device), and the blur
kernel and its schedule.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from training.blur import blur_images, blur_kernel, blur_sigma
from training.discriminator import (
    Discriminator, DiscriminatorConfig, EqualConv2d, minibatch_std,
)

SMALL = dict(channel_base=512, channel_max=64, cmap_dim=32)


def make_d(resolution: int = 16, seed: int = 0, **kw) -> Discriminator:
    torch.manual_seed(seed)
    return Discriminator(DiscriminatorConfig(resolution=resolution, **{**SMALL, **kw}))


def inputs(b: int, resolution: int = 16, seed: int = 1,
           dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    img = torch.rand(b, 3, resolution, resolution, generator=g, dtype=dtype) * 2 - 1
    c = torch.randn(b, 25, generator=g, dtype=dtype)
    return img, c


# ------------------------------------------------------------------------------------------ architecture


@pytest.mark.parametrize("resolution", [16, 32])
def test_output_shape_and_blocks(resolution):
    d = make_d(resolution)
    img, c = inputs(4, resolution)
    out = d(img, c)
    assert out.shape == (4, 1) and out.dtype == torch.float32 and torch.isfinite(out).all()
    # One block per resolution down to 8 (no spare block), fromRGB only in the first.
    names = list(d.blocks.keys())
    assert names == [f"b{r}" for r in d.config.block_resolutions]
    assert names[-1] == "b8" and names[0] == f"b{resolution}"
    assert [b.fromrgb is not None for b in d.blocks.values()] == [True] + [False] * (len(names) - 1)
    assert len(d.mapping.layers) == 2


def test_channels_follow_base_and_max():
    d = make_d(32)
    cfg = d.config
    assert [cfg.channels(r) for r in (32, 16, 8, 4)] == [16, 32, 64, 64]
    b32 = d.blocks["b32"]
    assert b32.fromrgb.weight.shape == (16, 3, 1, 1)
    assert b32.conv0.weight.shape == (16, 16, 3, 3)
    assert b32.conv1.weight.shape == (32, 16, 3, 3)
    assert b32.skip.weight.shape == (32, 16, 1, 1) and b32.skip.bias is None
    assert d.epilogue.conv.weight.shape == (64, 65, 3, 3)  # + 1 minibatch-std channel
    assert d.epilogue.fc.weight.shape == (64, 64 * 16)
    assert d.epilogue.out.weight.shape == (32, 64)
    assert d.mapping.embed.weight.shape == (32, 25)


@pytest.mark.parametrize("kernel_size", [1, 3])
@pytest.mark.parametrize("size", [4, 8, 16])
def test_downsample_halves_exactly(kernel_size, size):
    conv = EqualConv2d(5, 7, kernel_size, down=2)
    assert conv(torch.randn(2, 5, size, size)).shape == (2, 7, size // 2, size // 2)
    f = torch.outer(conv.blur, conv.blur)  # separable: the 1-D factor is stored
    assert torch.allclose(f, torch.outer(torch.tensor([1., 3, 3, 1]), torch.tensor([1., 3, 3, 1])) / 64)


def test_skip_downsample_is_blur_then_subsample():
    # The 1x1 skip path equals: blur [1,3,3,1] with 1 px of zero padding, keep every other pixel, 1x1 conv.
    torch.manual_seed(0)
    conv = EqualConv2d(2, 3, 1, bias=False, down=2)
    x = torch.randn(1, 2, 8, 8)
    f = torch.outer(torch.tensor([1., 3, 3, 1]), torch.tensor([1., 3, 3, 1])) / 64
    xp = torch.nn.functional.pad(x, (1, 1, 1, 1))
    blurred = torch.cat([torch.nn.functional.conv2d(xp[:, i:i + 1], f[None, None]) for i in range(2)], 1)
    sub = blurred[:, :, ::2, ::2]
    expect = torch.einsum("oi,bihw->bohw", conv.weight[:, :, 0, 0] / math.sqrt(2), sub)
    assert torch.allclose(conv(x), expect, atol=1e-6)


@pytest.mark.parametrize("stride,padding,groups,bias", [
    (1, 1, 1, True), (2, 0, 1, True), (2, 1, 1, False), ((1, 2), (0, 1), 4, False), ((2, 1), (1, 0), 2, True),
])
def test_conv_double_backward_matches_native(stride, padding, groups, bias):
    # The conv behind every layer and the blur: same values, first and second derivatives as F.conv2d
    # (gradgradcheck also runs the weight-gradient op's own backward).
    from training.discriminator_conv import conv2d as _conv2d

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 7, 6, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(8, 4 // groups, 3, 2, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(8, dtype=torch.float64, generator=g, requires_grad=True) if bias else None
    args = (x, w) + ((b,) if bias else ())

    def ours(x, w, b=None):
        return _conv2d(x, w, b, stride, padding, groups)

    def native(x, w, b=None):
        return torch.nn.functional.conv2d(x, w, b, stride, padding, 1, groups)

    assert torch.allclose(ours(*args), native(*args))
    assert torch.autograd.gradcheck(ours, args)
    assert torch.autograd.gradgradcheck(ours, args)
    # R1-like: the gradient of |d out / d x|^2 w.r.t. every input equals the native one.
    res = []
    for fn in (ours, native):
        (gx,) = torch.autograd.grad(fn(*args).square().sum(), x, create_graph=True)
        res.append(torch.autograd.grad(gx.square().sum(), args))
    for a, n in zip(*res):
        assert torch.allclose(a, n)


def test_conditioning_matters():
    d = make_d()
    img, c = inputs(4)
    c2 = torch.randn(4, 25, generator=torch.Generator().manual_seed(9))
    a, b = d(img, c), d(img, c2)
    assert (a - b).abs().min() > 1e-3 * a.abs().mean()
    # The camera reaches the logit through the projection: the gradient w.r.t. c is nonzero.
    c = c.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(d(img, c).sum(), c)
    assert g.abs().sum(1).min() > 0


def test_unconditional():
    d = make_d(c_dim=0)
    assert d.mapping is None and d.epilogue.out.out_features == 1
    img, _ = inputs(4)
    assert d(img).shape == (4, 1)


def test_input_validation():
    d = make_d()
    img, c = inputs(4)
    with pytest.raises(ValueError, match="img must have shape"):
        d(img[:, :, :8, :8], c)
    with pytest.raises(ValueError, match="img must have shape"):
        d(img[:, :1], c)
    with pytest.raises(ValueError, match="c must have shape"):
        d(img, c[:, :24])
    with pytest.raises(ValueError, match="c must have shape"):
        d(img, c[:3])
    with pytest.raises(ValueError, match="c must have shape"):
        d(img)


# ------------------------------------------------------------------------------------ minibatch std


def test_minibatch_std_couples_within_group_only():
    d = make_d()
    img, c = inputs(8)
    base = d(img, c)
    img2 = img.clone()
    img2[0] += 0.5 * torch.randn(3, 16, 16, generator=torch.Generator().manual_seed(3))
    changed = (d(img2, c) - base).abs()[:, 0]
    # B = 8, G = 4: sample 0 is grouped with 2, 4, 6 (strided, as StyleGAN2); odd samples are untouched.
    assert (changed[[0, 2, 4, 6]] > 1e-6).all()
    assert torch.equal(d(img2, c)[1::2], base[1::2])
    # Without minibatch std nothing couples.
    d0 = make_d(mbstd_channels=0)
    changed0 = (d0(img2, c) - d0(img, c)).abs()[:, 0]
    assert changed0[0] > 1e-6 and (changed0[1:] == 0).all()


def test_minibatch_std_values():
    x = torch.randn(6, 4, 2, 2, generator=torch.Generator().manual_seed(0))
    y = minibatch_std(x, group_size=3, num_channels=2)
    assert y.shape == (6, 6, 2, 2) and torch.equal(y[:, :4], x)
    for n in range(6):
        group = x[n % 2::2]  # G = 3, M = 2: members n mod 2
        std = group.var(dim=0, unbiased=False).add(1e-8).sqrt()
        for f in range(2):
            expect = std[2 * f:2 * f + 2].mean()
            assert torch.allclose(y[n, 4 + f], expect.expand(2, 2), atol=1e-6)
    # Group size larger than the batch: the whole batch is one group; a batch of 1 has std sqrt(1e-8).
    assert torch.allclose(minibatch_std(x[:1], 4)[:, -1], torch.full((1, 2, 2), 1e-4))


def test_minibatch_std_batch_must_divide():
    d = make_d()
    img, c = inputs(6)
    with pytest.raises(ValueError, match="not divisible"):
        d(img, c)
    for b in (1, 2, 3, 12):  # min(4, B) divides B
        img, c = inputs(b)
        assert d(img, c).shape == (b, 1)


# ----------------------------------------------------------------------------------- gradients, R1


def test_gradients_reach_every_parameter():
    d = make_d()
    img, c = inputs(4)
    torch.nn.functional.softplus(d(img, c)).sum().backward()
    for name, p in d.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def r1_penalty(d: Discriminator, img: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    img = img.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(d(img, c).sum(), img, create_graph=True)
    return g.square().sum()


def test_r1_double_backward_matches_finite_differences():
    d = make_d().double()
    img, c = inputs(4, dtype=torch.float64)
    r1 = r1_penalty(d, img, c)
    r1.backward()
    grads = {n: p.grad for n, p in d.named_parameters()}
    # The output FC's bias only shifts the logit, so the input gradient does not depend on it (autograd
    # leaves its .grad None). Past the minibatch std the net is piecewise linear in its features, so the
    # biases there only move the leaky-ReLU kinks: their R1 gradient is zero almost everywhere.
    assert grads.pop("epilogue.out.bias") is None
    for name in ("epilogue.conv.bias", "epilogue.fc.bias"):
        assert (grads.pop(name) == 0).all(), name
    # Everything else gets a finite, nonzero R1 gradient (the pre-mbstd biases through the group std).
    for name, g in grads.items():
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0, name

    # d R1 / d theta along a random direction in a few parameters, against central differences.
    torch.manual_seed(5)
    params = [d.blocks["b16"].conv0.weight, d.epilogue.fc.weight, d.mapping.layers[0].weight]
    dirs = [torch.randn_like(p) for p in params]
    analytic = sum((p.grad * v).sum() for p, v in zip(params, dirs))
    h = 1e-5
    with torch.no_grad():
        for p, v in zip(params, dirs):
            p.add_(h * v)
    plus = r1_penalty(d, img, c).detach()
    with torch.no_grad():
        for p, v in zip(params, dirs):
            p.sub_(2 * h * v)
    minus = r1_penalty(d, img, c).detach()
    numeric = (plus - minus) / (2 * h)
    assert torch.allclose(analytic, numeric, rtol=1e-6, atol=1e-8 * float(r1.detach()))


def test_r1_double_backward_wrt_image():
    # Second derivative w.r.t. the image itself (d R1 / d img) against finite differences.
    d = make_d().double()
    img, c = inputs(2, dtype=torch.float64)
    img = img.requires_grad_(True)
    (g,) = torch.autograd.grad(d(img, c).sum(), img, create_graph=True)
    (h_img,) = torch.autograd.grad(g.square().sum(), img)
    # Only the minibatch std makes R1 curved in the image (the rest is piecewise linear), so this
    # derivative is small; a step of 1e-6 stays clear of the leaky-ReLU kinks for these seeds.
    v = torch.randn(img.shape, generator=torch.Generator().manual_seed(4), dtype=img.dtype)
    eps = 1e-6
    numeric = (r1_penalty(d, img + eps * v, c) - r1_penalty(d, img - eps * v, c)) / (2 * eps)
    analytic = (h_img * v).sum()
    assert analytic.abs() > 1e-7
    assert torch.allclose(analytic, numeric.detach(), rtol=1e-5)


# ------------------------------------------------------------------------------- equalized learning rate


def test_equalized_lr_stored_weights_and_activation_scale():
    d = make_d(32)
    for name, p in d.named_parameters():
        if name.endswith("bias"):
            assert (p == 0).all(), name  # all biases start at zero
            continue
        lr_mul = 0.01 if name.startswith("mapping.layers") else 1.0
        if p.numel() >= 2000:
            assert 0.9 < p.std().item() * lr_mul < 1.1, name  # stored as N(0, 1 / lr_mul^2)

    rms = {}
    stages = [*d.blocks.items(), ("epilogue.conv", d.epilogue.conv), ("epilogue.fc", d.epilogue.fc),
              ("epilogue.out", d.epilogue.out), ("mapping", d.mapping)]

    def hook(name):
        return lambda mod, inp, out: rms.__setitem__(name, out.square().mean().sqrt().item())

    hooks = [m.register_forward_hook(hook(n)) for n, m in stages]
    img, c = inputs(16, 32)
    out = d(img, c)
    for h in hooks:
        h.remove()
    # Input rms is 0.58 (uniform in [-1, 1]); every stage stays O(1) without any run-time normalisation.
    assert all(0.15 < v < 3.0 for v in rms.values()), rms
    assert 0.05 < out.std().item() < 3.0 and out.abs().max() < 10


def test_mapping_layers_configurable():
    d = make_d(mapping_layers=8)
    assert len(d.mapping.layers) == 8
    assert all(layer.lr_mul == 0.01 and layer.activation == "lrelu" for layer in d.mapping.layers)
    assert d.mapping.embed.lr_mul == 1.0 and d.mapping.embed.activation == "linear"
    assert len(make_d(mapping_layers=0).mapping.layers) == 0
    img, c = inputs(2)
    assert make_d(mapping_layers=0)(img, c).shape == (2, 1)


# ----------------------------------------------------------------------------------- reduced precision


def test_bf16_autocast_cpu():
    d = make_d(32)
    img, c = inputs(4, 32)
    ref = d(img, c)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = d(img, c)
        r1 = r1_penalty(d, img, c)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert (out - ref).abs().max() < 0.05 * ref.abs().max() + 0.02
    r1.backward()
    assert all(torch.isfinite(p.grad).all() for p in d.parameters() if p.grad is not None)


def test_num_autocast_blocks_zero_is_float32():
    d = make_d(num_autocast_blocks=0)
    img, c = inputs(4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = d(img, c)
    assert torch.equal(out, d(img, c))


def test_conv_clamp_only_in_reduced_precision():
    img, c = inputs(4)
    clamped, free = make_d(conv_clamp=0.05), make_d(conv_clamp=None)
    free.load_state_dict(clamped.state_dict())
    assert torch.equal(clamped(img, c), free(img, c))  # float32: never clamped
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a, b = clamped(img, c), free(img, c)
    assert (a - b).abs().max() > 1e-3
    conv = EqualConv2d(3, 4, 3, "lrelu", conv_clamp=0.05)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv(img * 10)
    assert y.dtype == torch.bfloat16 and y.abs().max() <= 0.05


def test_conv_clamp_as_hardtanh_equals_clamp_to_second_order():
    """EqualConv2d clamps with hardtanh (a one-kernel backward): values, input gradients and the gradient of
    the gradient (R1) equal torch.clamp's wherever no value sits exactly on the bound (there clamp passes the
    gradient and hardtanh does not)."""
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(1)
    x = torch.randn(256, generator=g).mul(3).bfloat16().requires_grad_()
    w = torch.randn(256, generator=g).bfloat16().requires_grad_()
    bound = 0.25  # exact in bf16, so "on the bound" means the same to both

    def run(clamp):
        y = clamp(F.leaky_relu(x * w, 0.2))
        (gx,) = torch.autograd.grad(y.float().square().sum(), x, create_graph=True)
        (gw,) = torch.autograd.grad(gx.float().square().sum(), w)
        return y, gx, gw

    ours, ref = run(lambda y: F.hardtanh(y, -bound, bound)), run(lambda y: y.clamp(-bound, bound))
    pre = F.leaky_relu(x * w, 0.2).detach().abs()
    inside = pre < bound
    assert 0 < int(inside.sum()) < 256 and not bool((pre == bound).any())  # some clamped, none on the bound
    assert bool((ref[1][~inside] == 0).all()) and bool((ref[1][inside] != 0).any())
    for a, b in zip(ours, ref):
        assert torch.equal(a, b)
    # the layer itself clamps with hardtanh: an output exactly on the bound passes no gradient (clamp's would)
    conv = EqualConv2d(1, 1, 1, "linear", bias=False, conv_clamp=bound)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    img = torch.tensor([bound, 0.1]).view(1, 1, 1, 2).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv(img)
    (grad,) = torch.autograd.grad(y.float().sum(), img)
    assert grad.flatten().tolist() == [0.0, 1.0]


def test_state_dict_has_no_filter_buffers():
    d = make_d()
    assert not any("blur" in k for k in d.state_dict())
    assert set(d.state_dict()) == {n for n, _ in d.named_parameters()}


# --------------------------------------------------------------------------------------------- config


def test_config_round_trip():
    cfg = DiscriminatorConfig(resolution=64, mapping_layers=8, conv_clamp=None, **SMALL)
    assert DiscriminatorConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert DiscriminatorConfig.from_dict(DiscriminatorConfig(resolution=512).to_dict()).cmap_dim == 512
    with pytest.raises(ValueError, match="unknown discriminator config keys"):
        DiscriminatorConfig.from_dict({**cfg.to_dict(), "b8_pose": True})
    with pytest.raises(ValueError, match="resolution"):
        DiscriminatorConfig.from_dict({"c_dim": 25})


@pytest.mark.parametrize("kw", [
    dict(resolution=8), dict(resolution=24), dict(resolution=0), dict(resolution=True), dict(resolution=16.0),
    dict(resolution=16, channel_base=8), dict(resolution=16, channel_max=0), dict(resolution=16, c_dim=-1),
    dict(resolution=16, mapping_layers=-1), dict(resolution=16, mapping_lr_mul=0.0),
    dict(resolution=16, mbstd_group=0), dict(resolution=16, mbstd_channels=3),
    dict(resolution=16, conv_clamp=0.0), dict(resolution=16, cmap_dim=0),
    dict(resolution=16, num_autocast_blocks=-1),
])
def test_invalid_configs(kw):
    with pytest.raises(ValueError, match="invalid DiscriminatorConfig"):
        DiscriminatorConfig(**kw)


@pytest.mark.parametrize("resolution,mapping_layers,c_dim,expect", [
    (512, 2, 25, 29_783_616), (512, 8, 25, 31_359_552), (512, 2, 0, 28_982_849),
    (256, 2, 25, 29_664_896), (1024, 2, 25, 29_813_280),
])
def test_parameter_counts(resolution, mapping_layers, c_dim, expect):
    # The numbers in training/discriminator.py's docstring; built on the meta device (no memory, no time).
    with torch.device("meta"):
        cfg = DiscriminatorConfig(resolution=resolution, mapping_layers=mapping_layers, c_dim=c_dim)
        d = Discriminator(cfg)
    assert sum(p.numel() for p in d.parameters()) == expect


# ----------------------------------------------------------------------------------------------- GPU


@pytest.mark.gpu
def test_cuda_float32_bf16_and_r1():
    d = make_d(32)
    img, c = inputs(8, 32)
    ref = d(img, c)
    d = d.cuda()
    img, c = img.cuda(), c.cuda()
    torch.backends.cudnn.allow_tf32 = False
    assert torch.allclose(d(img, c).cpu(), ref, atol=1e-4, rtol=1e-4)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = d(img, c)
        r1 = r1_penalty(d, img, c)
    assert out.dtype == torch.float32 and (out.cpu() - ref).abs().max() < 0.05 * ref.abs().max() + 0.02
    r1.backward()
    assert all(torch.isfinite(p.grad).all() for p in d.parameters() if p.grad is not None)
    assert torch.allclose(blur_images(img, 2.0).cpu(), blur_images(img.cpu(), 2.0), atol=1e-5)


# ---------------------------------------------------------------------------------------------- blur


def test_blur_delta_gives_normalised_kernel():
    sigma = 2.0
    img = torch.zeros(1, 1, 31, 31)
    img[0, 0, 15, 15] = 1.0
    out = blur_images(img, sigma)
    x = torch.arange(-6, 7, dtype=torch.float64)  # radius floor(3 sigma) = 6
    k = 2.0 ** (-(x / sigma) ** 2)
    k = k / k.sum()
    assert torch.allclose(blur_kernel(sigma, torch.float64), k)
    expect = torch.zeros(31, 31, dtype=torch.float64)
    expect[9:22, 9:22] = torch.outer(k, k)
    assert torch.allclose(out[0, 0].double(), expect, atol=1e-7)
    assert math.isclose(out.sum().item(), 1.0, rel_tol=1e-6)


@pytest.mark.parametrize("sigma, shape", [(2.0, (2, 3, 16, 16)), (1.4, (1, 3, 9, 20)), (10.0, (2, 1, 16, 12))])
def test_blur_equals_the_zero_padded_separable_convolution(sigma, shape):
    # The reference: the kernel as two zero-padded convolutions (the official filter's definition),
    # including a radius (30 at sigma 10) larger than the image.
    img = torch.randn(*shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    f = blur_kernel(sigma, torch.float64)
    r = (f.numel() - 1) // 2
    b, c, h, w = shape
    ref = torch.nn.functional.conv2d(img.reshape(b * c, 1, h, w), f.view(1, 1, 1, -1), padding=(0, r))
    ref = torch.nn.functional.conv2d(ref, f.view(1, 1, -1, 1), padding=(r, 0)).reshape(shape)
    x = img.clone().requires_grad_(True)
    out = blur_images(x, sigma)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    # linear and self-adjoint per axis (symmetric kernel): <blur(x), y> = <x, blur(y)>, also as autograd sees it
    y = torch.randn_like(img)
    (g,) = torch.autograd.grad((out * y).sum(), x, create_graph=True)
    torch.testing.assert_close(g, blur_images(y, sigma), rtol=0, atol=1e-12)
    # second order, as R1 needs: d/dx sum(d/dx |blur(x)|^2) = d/dx sum(2 blur(blur(x))) = 2 blur(blur(1))
    (g2,) = torch.autograd.grad(out.square().sum(), x, create_graph=True)
    (gg,) = torch.autograd.grad(g2.sum(), x)
    torch.testing.assert_close(gg, 2 * blur_images(blur_images(torch.ones_like(img), sigma), sigma),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("sigma", [0.0, -1.0, 0.3])
def test_blur_identity(sigma):
    img = torch.randn(2, 3, 8, 8)
    assert blur_images(img, sigma) is img  # sigma <= 0, or radius floor(3 * 0.3) = 0


def test_blur_preserves_sums_in_the_interior():
    # Content at least a radius away from the border loses no mass through the zero padding.
    sigma = 1.5  # radius 4
    img = torch.zeros(2, 3, 24, 24)
    img[:, :, 4:20, 4:20] = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    out = blur_images(img, sigma)
    assert torch.allclose(out.sum(dim=(2, 3)), img.sum(dim=(2, 3)), rtol=1e-5)
    # A constant image stays constant away from the border; the zero padding darkens the border.
    const = torch.full((1, 1, 24, 24), 0.7)
    out = blur_images(const, sigma)
    assert torch.allclose(out[..., 4:20, 4:20], const[..., 4:20, 4:20], atol=1e-6)
    assert out[0, 0, 0, 0] < 0.7


def test_blur_separable_per_channel_and_large_sigma():
    img = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    out = blur_images(img, 1.2)
    assert out.shape == img.shape and out.dtype == img.dtype
    assert torch.allclose(blur_images(img.transpose(2, 3), 1.2), out.transpose(2, 3), atol=1e-6)
    assert torch.allclose(blur_images(img[1:2, 2:3], 1.2), out[1:2, 2:3], atol=1e-6)
    big = blur_images(img, 10.0)  # radius 30 > image size: still same-size output
    assert big.shape == img.shape and torch.isfinite(big).all()
    assert blur_images(img.double(), 1.2).dtype == torch.float64


def test_blur_sigma_schedule():
    assert blur_sigma(0, 200) == 10.0
    assert math.isclose(blur_sigma(100_000, 200), 5.0)
    assert math.isclose(blur_sigma(50_000, 200, sigma0=4.0), 3.0)
    assert blur_sigma(200_000, 200) == 0.0
    assert blur_sigma(10**7, 200) == 0.0
    assert blur_sigma(0, 0) == 0.0  # fade of 0 kimg: no blur
