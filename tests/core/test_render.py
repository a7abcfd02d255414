"""core.render: analytic cases, an independent per-pixel reference, batching, gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from core.camera import Cameras, default_camera, normalized_intrinsics, orbit_cameras
from core.gaussians import GaussianSet, rgb_to_sh_dc
from core.render import render
from core.sh import sh_basis

W = H = 32


def identity_camera(focal: float = 1.0, dtype=torch.float64) -> Cameras:
    """At the origin, looking down +z (OpenCV), fx = focal * width."""
    return Cameras(torch.eye(4, dtype=dtype), normalized_intrinsics(focal, dtype=dtype))


def one_gaussian(mean, rgb, opacity, scale, dtype=torch.float64) -> GaussianSet:
    t = lambda v: torch.tensor(v, dtype=dtype)  # noqa: E731
    return GaussianSet.from_activated(t([mean]), t([rgb]), t([opacity]), t([[scale] * 3]))


def random_scene(n: int, seed: int, sh_degree: int = 0, dtype=torch.float64, spread: float = 0.6) -> GaussianSet:
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=g, dtype=dtype) - 0.5) * 2 * spread + torch.tensor([0, 0, 3.0], dtype=dtype)
    k = (sh_degree + 1) ** 2
    sh = torch.randn(n, k, 3, generator=g, dtype=dtype) * 0.3
    sh[:, 0] = rgb_to_sh_dc(torch.rand(n, 3, generator=g, dtype=dtype))
    log_scales = torch.empty(n, 3, dtype=dtype).uniform_(math.log(0.02), math.log(0.12), generator=g)
    quats = torch.randn(n, 4, generator=g, dtype=dtype)
    logits = torch.empty(n, dtype=dtype).uniform_(-2.0, 4.0, generator=g)
    return GaussianSet(means, quats, log_scales, logits, sh)


def reference_render(gs: GaussianSet, cam: Cameras, width: int, height: int, bg) -> tuple[np.ndarray, np.ndarray]:
    """Slow, independent per-pixel compositor (numpy + scipy rotations), every Gaussian at every pixel."""
    w2c = cam.world_to_camera().numpy()
    K = cam.pixel_intrinsics(width, height).numpy()
    campos = cam.centers.numpy()
    q = gs.quats.numpy()
    rot = Rotation.from_quat(np.concatenate([q[:, 1:], q[:, :1]], 1)).as_matrix()  # scipy wants x, y, z, w
    scales = np.exp(gs.log_scales.numpy())
    opac = 1 / (1 + np.exp(-gs.opacity_logits.numpy()))
    means = gs.means.numpy()
    mc = means @ w2c[:3, :3].T + w2c[:3, 3]
    degree = gs.sh_degree
    dirs = means - campos
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    basis = sh_basis(torch.from_numpy(dirs), degree).numpy()  # [N, K]
    colors = np.maximum(np.einsum("nk,nkc->nc", basis, gs.sh.numpy()) + 0.5, 0)
    img = np.zeros((height, width, 3))
    T = np.ones((height, width))
    done = np.zeros((height, width), bool)
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    for i in np.argsort(mc[:, 2], kind="stable"):
        x, y, z = mc[i]
        if z < 0.01:
            continue
        cov = rot[i] @ np.diag(scales[i] ** 2) @ rot[i].T
        cov_c = w2c[:3, :3] @ cov @ w2c[:3, :3].T
        fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
        J = np.array([[fx / z, 0, -fx * x / z**2], [0, fy / z, -fy * y / z**2]])
        cov2 = J @ cov_c @ J.T + 0.3 * np.eye(2)
        conic = np.linalg.inv(cov2)
        dx, dy = xs - (fx * x / z + cx), ys - (fy * y / z + cy)
        sigma = 0.5 * (conic[0, 0] * dx * dx + conic[1, 1] * dy * dy) + conic[0, 1] * dx * dy
        alpha = np.minimum(0.999, opac[i] * np.exp(-sigma))
        ok = (sigma >= 0) & (alpha >= 1 / 255) & ~done
        nT = T * (1 - alpha)
        stop = ok & (nT <= 1e-4)
        done |= stop
        ok &= ~stop
        img += np.where(ok[..., None], (alpha * T)[..., None] * colors[i], 0)
        T = np.where(ok, nT, T)
    return img + T[..., None] * np.asarray(bg), 1 - T


def test_single_gaussian_footprint_matches_closed_form():
    s, o, z = 0.05, 0.8, 2.0
    gs = one_gaussian([0.0, 0.0, z], [0.2, 0.4, 0.6], o, s)
    out = render(gs, identity_camera(), W, H, background=[1.0, 1.0, 1.0])
    var = (s * W / z) ** 2 + 0.3  # projected variance in px^2 plus the 0.3 px^2 low-pass
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float64) + 0.5, torch.arange(W, dtype=torch.float64) + 0.5, indexing="ij")
    r2 = (xs - W / 2) ** 2 + (ys - H / 2) ** 2
    expected = (o * torch.exp(-0.5 * r2 / var)).clamp(max=0.999)
    expected = torch.where(expected >= 1 / 255, expected, 0.0).to(torch.float64)
    torch.testing.assert_close(out.alpha[..., 0], expected, atol=1e-12, rtol=1e-9)
    rgb = torch.tensor([0.2, 0.4, 0.6], dtype=torch.float64)
    torch.testing.assert_close(out.color, expected[..., None] * rgb + (1 - expected[..., None]), atol=1e-9, rtol=0)
    drawn = out.alpha[..., 0] > 0
    torch.testing.assert_close(out.depth[..., 0][drawn], torch.full_like(out.depth[..., 0][drawn], z))
    assert (out.depth[..., 0][~drawn] == 0).all()
    # the footprint is symmetric and peaks at the four centre pixels
    assert torch.equal(out.alpha, out.alpha.flip(0)) and torch.equal(out.alpha, out.alpha.flip(1))
    assert out.alpha[H // 2, W // 2, 0] == out.alpha.max()


def test_alpha_compositing_front_to_back_regardless_of_storage_order():
    front = one_gaussian([0.0, 0.0, 2.0], [1.0, 0.0, 0.0], 0.6, 0.2)
    back = one_gaussian([0.0, 0.0, 3.0], [0.0, 0.0, 1.0], 0.5, 0.3)
    a = render(GaussianSet.cat([front, back]), identity_camera(), W, H)
    b = render(GaussianSet.cat([back, front]), identity_camera(), W, H)
    torch.testing.assert_close(a.color, b.color, atol=0, rtol=0)
    c = a.color[H // 2, W // 2]
    a1 = 0.6 * math.exp(-0.5 * 0.5 / ((0.2 * W / 2) ** 2 + 0.3))  # pixel centre is 0.5 px off both axes
    a2 = 0.5 * math.exp(-0.5 * 0.5 / ((0.3 * W / 3) ** 2 + 0.3))
    torch.testing.assert_close(c, torch.tensor([a1, 0.0, a2 * (1 - a1)], dtype=torch.float64), atol=1e-12, rtol=0)
    # expected depth is the weighted mean of the two depths
    d = a.depth[H // 2, W // 2, 0]
    torch.testing.assert_close(d, torch.tensor((a1 * 2 + a2 * (1 - a1) * 3) / (a1 + a2 * (1 - a1)), dtype=torch.float64))


def test_empty_scene_and_behind_camera_give_background():
    bg = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
    for gs in (GaussianSet.empty(dtype=torch.float64), one_gaussian([0.0, 0.0, -2.0], [1, 1, 1], 0.9, 0.3)):
        out = render(gs, identity_camera(), W, H, background=bg)
        assert torch.equal(out.color, bg.expand(H, W, 3))
        assert (out.alpha == 0).all() and (out.depth == 0).all()


def test_opaque_stack_stops_at_transmittance_threshold():
    layers = [one_gaussian([0.0, 0.0, 2.0 + 0.1 * i], [i % 2, 0.5, 1 - i % 2], 0.99, 0.5) for i in range(6)]
    out = render(GaussianSet.cat(layers), identity_camera(), W, H)
    ref, ref_alpha = reference_render(GaussianSet.cat(layers), identity_camera(), W, H, [0, 0, 0])
    np.testing.assert_allclose(out.color.numpy(), ref, atol=1e-9)
    # At the centre pixel each layer has alpha ~0.98: two layers leave T ~4e-4, the third would take T
    # below 1e-4, so compositing stops (exclusively) after two layers.
    a = [0.99 * math.exp(-0.5 * 0.5 / ((0.5 * W / (2.0 + 0.1 * i)) ** 2 + 0.3)) for i in range(3)]
    assert (1 - a[0]) * (1 - a[1]) > 1e-4 >= (1 - a[0]) * (1 - a[1]) * (1 - a[2])
    assert out.alpha[H // 2, W // 2, 0].item() == pytest.approx(1 - (1 - a[0]) * (1 - a[1]), abs=1e-12)
    np.testing.assert_allclose(out.alpha[..., 0].numpy(), ref_alpha, atol=1e-9)


@pytest.mark.parametrize("sh_degree", [0, 1, 2, 3])
def test_matches_independent_per_pixel_reference(sh_degree):
    gs = random_scene(60, seed=sh_degree, sh_degree=sh_degree)
    cam = orbit_cameras(0.3, -0.2, 3.5, (0.0, 0.0, 3.0), focal=1.2, dtype=torch.float64)
    bg = [0.3, 0.6, 0.9]
    out = render(gs, cam, 40, 28, background=bg)
    ref, ref_alpha = reference_render(gs, cam, 40, 28, bg)
    np.testing.assert_allclose(out.color.numpy(), ref, atol=1e-9)
    np.testing.assert_allclose(out.alpha[..., 0].numpy(), ref_alpha, atol=1e-9)
    assert ref_alpha.max() > 0.9 and (ref_alpha == 0).any()  # the scene covers part of the image


def test_float32_matches_float64():
    gs = random_scene(300, seed=7, sh_degree=1)
    cam = orbit_cameras(0.1, 0.1, 3.0, (0.0, 0.0, 3.0), focal=1.0, dtype=torch.float64)
    a = render(gs, cam, 48, 48)
    b = render(gs.to(torch.float32), cam.to(torch.float32), 48, 48)
    assert b.color.dtype == torch.float32
    torch.testing.assert_close(b.color.double(), a.color, atol=2e-4, rtol=0)


def test_batched_scenes_and_cameras_equal_one_by_one():
    scenes = [random_scene(50, seed=s) for s in range(3)]
    cams = orbit_cameras(torch.tensor([-0.4, 0.0, 0.5]), 0.1, 3.0, (0.0, 0.0, 3.0), 1.0, dtype=torch.float64)
    batch = render(GaussianSet.stack(scenes), cams, 24, 20)
    listed = render([scenes[0], random_scene(80, seed=9), scenes[2]], cams, 24, 20)
    assert batch.color.shape == (3, 3, 20, 24, 3) and batch.depth.shape == (3, 3, 20, 24, 1)
    for b, scene in enumerate(scenes):
        for c in range(3):
            single = render(scene, cams[c], 24, 20)
            assert single.color.shape == (20, 24, 3)
            torch.testing.assert_close(batch.color[b, c], single.color, atol=1e-12, rtol=0)
            if b != 1:
                torch.testing.assert_close(listed.color[b, c], single.color, atol=1e-12, rtol=0)
    per_scene_cams = cams.reshape(3, 1)  # one camera per scene: [B, C] with C = 1
    paired = render(GaussianSet.stack(scenes), per_scene_cams, 24, 20, background=torch.rand(3, 1, 3))
    assert paired.color.shape == (3, 1, 20, 24, 3)
    assert render(scenes[0], cams, 24, 20, mode="rgb").depth is None
    one_view = render(GaussianSet.stack(scenes), cams[1], 24, 20)  # one camera for every scene: [B, H, W, 3]
    assert one_view.color.shape == (3, 20, 24, 3)
    torch.testing.assert_close(one_view.color, batch.color[:, 1], atol=1e-12, rtol=0)


def test_mirrored_scene_renders_flipped_image():
    gs = random_scene(80, seed=3)
    cam = orbit_cameras(0.35, 0.15, 3.0, (0.0, 0.0, 3.0), 1.1, dtype=torch.float64)
    m = torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    # Reflecting x maps rotation R to M R M, i.e. quaternion (w, x, y, z) -> (w, x, -y, -z).
    mirrored = GaussianSet(gs.means * m, gs.quats * torch.tensor([1.0, 1.0, -1.0, -1.0], dtype=torch.float64),
                           gs.log_scales, gs.opacity_logits, gs.sh)
    a = render(gs, cam, 36, 30)
    b = render(mirrored, cam.mirror_x(), 36, 30)
    torch.testing.assert_close(b.color, a.color.flip(1), atol=1e-9, rtol=0)


def test_bad_arguments_are_clear():
    gs = random_scene(5, seed=0)
    cam = identity_camera()
    with pytest.raises(ValueError, match="width"):
        render(gs, cam, 0, 10)
    with pytest.raises(ValueError, match="mode"):
        render(gs, cam, 8, 8, mode="rgbd")
    with pytest.raises(ValueError, match="background"):
        render(gs, cam, 8, 8, background=[1.0, 0.0])
    with pytest.raises(ValueError, match="cameras batch shape"):
        render(GaussianSet.stack([gs, gs]), cam.reshape(1, 1, 1), 8, 8)
    with pytest.raises(TypeError, match="Cameras"):
        render(gs, torch.eye(4), 8, 8)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            render(gs, cam, 8, 8, backend="gsplat")


def test_gradients_match_finite_differences():
    gs = random_scene(4, seed=11, sh_degree=1, spread=0.15)
    cam = orbit_cameras(0.2, 0.1, 3.0, (0.0, 0.0, 3.0), 1.5, dtype=torch.float64)
    weights = torch.rand(12, 12, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def loss(means, quats, log_scales, logits, sh):
        out = render(GaussianSet(means, quats, log_scales, logits, sh), cam, 12, 12, background=[0.2, 0.3, 0.4])
        return (out.color * weights).sum() + 0.1 * out.alpha.sum() + 0.01 * out.depth.sum()

    inputs = [t.clone().requires_grad_(True) for t in (gs.means, gs.quats, gs.log_scales, gs.opacity_logits, gs.sh)]
    assert torch.autograd.gradcheck(loss, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)
    grads = torch.autograd.grad(loss(*inputs), inputs)
    assert all(g.abs().sum() > 0 for g in grads)  # every input really influences the image


def test_default_camera_sees_a_head_sized_object_centred():
    head = one_gaussian([0.0, 0.0, 0.0], [0.8, 0.6, 0.5], 0.99, 0.15, dtype=torch.float32)
    out = render(head, default_camera(), 64, 64)
    a = out.alpha[..., 0]
    ys, xs = torch.nonzero(a > 0.5, as_tuple=True)
    assert abs(xs.float().mean() - 31.5) < 0.5 and abs(ys.float().mean() - 31.5) < 0.5
    # 13.37 deg FOV at 2.7: the image spans 0.63 units; a 0.15-sigma blob covers a large central disc
    assert 0.15 < (a > 0.5).float().mean() < 0.6
