"""The CPU splat rasterizer (viewer/viewport/cpu_splats.py, numba) against the reference renderer
(core.render, torch backend), and its numba projection against the numpy one of the OpenGL path. No display
needed.

Measured: "random" and "tiny_generator" identical to the reference (PSNR inf), "random_sh2" 92 dB (colours
through numpy), "needles" 84 dB (a handful of pixels 1/255 apart: float32 sums in another order).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from splat_scenes import (  # tests/viewer/splat_scenes.py
    MIN_PSNR, REFERENCE_CASES, SIZE, pixel_camera, psnr, random_scene, reference_camera, reference_uint8,
    tiny_generator_scene,
)


@pytest.fixture(scope="module")
def rasterizer():
    from viewer.viewport.cpu_splats import CpuSplatRasterizer, unavailable

    assert unavailable() is None, unavailable()
    r = CpuSplatRasterizer(threads=2)
    yield r
    r.close()


def draw(rasterizer, gaussians, camera, width=SIZE, height=SIZE, background=(1.0, 1.0, 1.0), mode="rgb"):
    from viewer.viewport.splats import splat_arrays

    view, K = pixel_camera(camera, width, height)
    return rasterizer.draw(splat_arrays(gaussians), view, K, width, height, background, mode=mode)


@pytest.mark.parametrize("name, make_scene, background", REFERENCE_CASES)
def test_matches_reference(rasterizer, name, make_scene, background):
    gaussians, camera = make_scene(), reference_camera(name)
    img = draw(rasterizer, gaussians, camera, background=background)
    ref = reference_uint8(gaussians, camera, background)
    p = psnr(img, ref)
    print(f"{name}: PSNR {p:.2f} dB, max abs diff {np.abs(img.astype(int) - ref.astype(int)).max()}")
    assert img.shape == (SIZE, SIZE, 3) and img.dtype == np.uint8
    assert len(np.unique(ref.reshape(-1, 3), axis=0)) > 50, "fixture scene renders (nearly) empty"
    assert p > MIN_PSNR, f"{name}: PSNR {p:.2f} dB <= {MIN_PSNR}"
    assert np.abs(img.astype(int) - ref.astype(int)).max() <= 1
    if name in ("random", "tiny_generator"):
        assert np.array_equal(img, ref), f"{name}: measured identical to the reference"


def test_alpha_mode_is_the_reference_alpha(rasterizer):
    from core.camera import default_camera
    from core.render import render

    gaussians, camera = random_scene(300, 3), default_camera()
    grey = draw(rasterizer, gaussians, camera, background=(0.3, 0.6, 0.9), mode="alpha")
    ref = render(gaussians, camera, SIZE, SIZE, mode="rgb", backend="torch").alpha[..., 0].numpy()
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    assert np.abs(grey[..., 0].astype(int) - np.rint(ref * 255).astype(int)).max() <= 1
    assert grey.max() > 200 and grey.min() < 50  # the alpha, not the background (0.3, 0.6, 0.9)


def test_empty_scene_and_nothing_visible_give_exactly_the_background(rasterizer):
    from core.camera import default_camera
    from viewer.viewport.splats import splat_arrays

    view, K = pixel_camera(default_camera(), 40, 24)
    img = rasterizer.draw(None, view, K, 40, 24, (0.2, 0.4, 0.6))
    assert img.shape == (24, 40, 3) and (img == np.array([51, 102, 153], np.uint8)).all()
    behind = random_scene(50, 4)
    behind = type(behind)(behind.means + torch.tensor([0.0, 0.0, 10.0]), behind.quats, behind.log_scales,
                          behind.opacity_logits, behind.sh)  # all behind the camera (it looks along -z here)
    assert (rasterizer.draw(splat_arrays(behind), view, K, 40, 24, (0.2, 0.4, 0.6))
            == np.array([51, 102, 153], np.uint8)).all()


def test_orientation_row_zero_is_the_top(rasterizer):
    from core.camera import default_camera
    from core.gaussians import GaussianSet

    camera = default_camera()
    # one small opaque red splat at the origin, which the default camera looks at
    g = GaussianSet(means=torch.tensor([[0.0, 0.0, 0.0]]), quats=torch.tensor([[1.0, 0.0, 0.0, 0.0]]),
                    log_scales=torch.full((1, 3), -4.0), opacity_logits=torch.tensor([6.0]),
                    sh=torch.tensor([[[3.0, -3.0, -3.0]]]))
    ref = reference_uint8(g, camera, (1.0, 1.0, 1.0))
    ys, xs = np.nonzero(ref[..., 1] < 128)
    assert len(ys), "the reference draws the splat"
    shift = torch.tensor([[0.0, 0.15, 0.0]])  # world +y is up, so the splat moves up in the image
    moved = GaussianSet(g.means + shift, g.quats, g.log_scales, g.opacity_logits, g.sh)
    img_up = draw(rasterizer, moved, camera)
    img = draw(rasterizer, g, camera)
    rows = lambda im: np.nonzero(im[..., 1] < 128)[0].mean()  # noqa: E731
    assert np.array_equal(img, ref)
    assert rows(img_up) < rows(img) - 5, "moving the splat up must move it to smaller rows"


@pytest.mark.parametrize("width, height", [(128, 128), (100, 37), (7, 65)])
def test_threads_and_odd_sizes_give_the_same_pixels(width, height):
    """Tiles are dealt to threads round-robin and the image edges cut tiles: any thread count, any size, the
    same image as one thread, and as the reference."""
    from core.camera import default_camera
    from viewer.viewport.cpu_splats import CpuSplatRasterizer

    gaussians, camera = tiny_generator_scene(), default_camera()
    images = []
    for threads in (1, 2, 3):
        r = CpuSplatRasterizer(threads)
        try:
            images.append(draw(r, gaussians, camera, width, height))
        finally:
            r.close()
    covered = np.any(images[0] != 255, axis=-1).mean()  # white background
    colours = len(np.unique(images[0].reshape(-1, 3), axis=0))
    assert 0.02 < covered < 0.98 and colours > 100, f"nearly empty: {covered:.3f} covered, {colours} colours"
    assert all(np.array_equal(images[0], im) for im in images[1:])
    from core.render import render
    from viewer.viewport.splats import to_uint8

    view_ref = to_uint8(render(gaussians, camera, width, height, background=[1.0, 1.0, 1.0], mode="rgb",
                               backend="torch").color.numpy())
    assert np.abs(images[0].astype(int) - view_ref.astype(int)).max() <= 1


def test_numba_projection_matches_numpy():
    """Same splats, same order but for near-ties in depth (float32 sums in another order), same values."""
    from core.camera import orbit_cameras
    from viewer.viewport.cpu_splats import project_splats
    from viewer.viewport.splats import project, splat_arrays

    arrays = splat_arrays(random_scene(2000, 5))
    for yaw in (0.0, 0.7, 2.0):
        view, K = pixel_camera(orbit_cameras(yaw, 0.1, 2.7), 200, 150)
        a, b = project(arrays, view, K, 200, 150, 1.3), project_splats(arrays, view, K, 200, 150, 1.3)
        assert a.shape == b.shape and len(a) > 500
        ka = np.lexsort(a.T[::-1])  # row sets compared independently of near-tie order
        kb = np.lexsort(b.T[::-1])
        np.testing.assert_allclose(b[kb], a[ka], rtol=1e-4, atol=1e-4)
        depth_order = np.mean(np.all(np.isclose(a, b, rtol=1e-4, atol=1e-4), axis=1))
        assert depth_order > 0.99, f"back-to-front order differs for {1 - depth_order:.1%} of the splats"


def test_kernel_constants_are_the_reference_renderers():
    """The kernels write their constants out (numba's cache would not see an imported one change)."""
    import core.render_torch as reference
    from viewer.viewport import cpu_splats_kernels as k, splats

    for name in ("ALPHA_THRESHOLD", "MAX_ALPHA", "MAX_EXTEND", "EPS2D", "NEAR_PLANE", "FAR_PLANE",
                 "MIN_TRANSMITTANCE"):
        assert getattr(k, name) == getattr(reference, name), name
    assert k.QUAD_MARGIN == splats.QUAD_MARGIN


def test_bad_requests_raise_clear_errors(rasterizer):
    from core.camera import default_camera

    view, K = pixel_camera(default_camera(), 16, 16)
    with pytest.raises(ValueError, match="modes 'rgb' and 'alpha'"):
        rasterizer.draw(None, view, K, 16, 16, mode="depth")
    with pytest.raises(ValueError, match="positive ints"):
        rasterizer.draw(None, view, K, 0, 16)
    from viewer.viewport.cpu_splats import CpuSplatRasterizer

    with pytest.raises(ValueError, match="threads"):
        CpuSplatRasterizer(threads=-1)
