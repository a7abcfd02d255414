"""The OpenGL splat renderer (viewer/viewport/gl_splats.py) against the reference renderer (core.render, torch backend).

Opens a hidden glfw window with a 3.3 core context, so it needs a display (`make test` provides Xvfb).
Measured under Xvfb + Mesa llvmpipe: see the PSNR bounds below.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from splat_scenes import (  # tests/viewer/splat_scenes.py
    MIN_PSNR, REFERENCE_CASES, SIZE, needle_scene, pixel_camera, psnr, random_scene, reference_camera,
    reference_uint8,
)

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def gl_context():
    import imgui_bundle  # noqa: F401  (before glfw: both must use imgui_bundle's libglfw)
    import glfw

    if not glfw.init():
        pytest.fail("glfw.init() failed")
    glfw.window_hint(glfw.VISIBLE, glfw.FALSE)
    glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 3)
    glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
    glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
    glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, glfw.TRUE)
    win = glfw.create_window(64, 64, "gl_splats test", None, None)
    if not win:
        glfw.terminate()
        pytest.fail("could not create a hidden OpenGL 3.3 core window")
    glfw.make_context_current(win)
    yield win
    glfw.destroy_window(win)
    glfw.terminate()


@pytest.fixture(scope="module")
def renderer(gl_context):
    from viewer.viewport.gl_splats import GLSplatRenderer

    r = GLSplatRenderer()
    yield r
    r.release()


def draw(renderer, gaussians, camera, width, height, background, mode="rgb"):
    """Set ``gaussians`` and draw them for a ``core.camera.Cameras`` (batch shape [])."""
    from viewer.viewport.gl_splats import splat_arrays

    renderer.set_scene(splat_arrays(gaussians))
    view, K = pixel_camera(camera, width, height)
    return renderer.draw(view, K, width, height, background, mode=mode)


def gl_uint8(renderer, gaussians, camera, background) -> np.ndarray:
    draw(renderer, gaussians, camera, SIZE, SIZE, background)
    return renderer.read_rgb()


def save_comparison(name: str, gl: np.ndarray, ref: np.ndarray) -> Path:
    from PIL import Image

    diff = np.clip(np.abs(gl.astype(np.int16) - ref.astype(np.int16)) * 8, 0, 255).astype(np.uint8)
    path = Path(tempfile.gettempdir()) / f"gl_splats_{name}.png"
    Image.fromarray(np.concatenate([gl, ref, diff], axis=1)).save(path)
    return path


# The projection runs in numpy (float32), the alpha in the fragment shader, blending into RGBA32F.
# Measured on Xvfb + Mesa llvmpipe:
# "random" and "tiny_generator" identical to the reference (PSNR inf), "random_sh2" 95 dB (view-dependent colours
# through numpy on the CPU). The bounds leave room for another driver's rounding.
@pytest.mark.parametrize("name, make_scene, background", REFERENCE_CASES)
def test_matches_reference(renderer, name, make_scene, background):
    gaussians, camera = make_scene(), reference_camera(name)
    gl = gl_uint8(renderer, gaussians, camera, background)
    ref = reference_uint8(gaussians, camera, background)
    path = save_comparison(name, gl, ref)
    p = psnr(gl, ref)
    print(f"{name}: PSNR {p:.2f} dB, max abs diff {np.abs(gl.astype(int) - ref.astype(int)).max()}, {path}")
    assert gl.shape == (SIZE, SIZE, 3) and gl.dtype == np.uint8
    assert len(np.unique(ref.reshape(-1, 3), axis=0)) > 50, "fixture scene renders (nearly) empty"
    assert p > MIN_PSNR, f"{name}: PSNR {p:.2f} dB <= {MIN_PSNR} (comparison image: {path})"


def test_alpha_matches_reference(renderer):
    from core.camera import default_camera
    from core.render import render

    gaussians, camera = random_scene(300, 3), default_camera()
    draw(renderer, gaussians, camera, SIZE, SIZE, (0.0, 0.0, 0.0))
    alpha = renderer.read_rgba()[..., 3]
    ref = render(gaussians, camera, SIZE, SIZE, mode="rgb", backend="torch").alpha[..., 0].numpy()
    err = np.abs(alpha - ref).max()
    print(f"alpha max abs error {err:.2e}")
    assert err < 1e-3
    draw(renderer, gaussians, camera, SIZE, SIZE, (0.0, 0.0, 0.0), mode="alpha")
    grey = renderer.read_rgb()
    assert np.abs(grey[..., 0].astype(int) - np.rint(ref * 255).astype(int)).max() <= 2
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()


def test_empty_scene_is_exactly_background(renderer):
    from core.camera import default_camera
    from core.gaussians import GaussianSet

    empty = GaussianSet(torch.zeros(0, 3), torch.zeros(0, 4), torch.zeros(0, 3), torch.zeros(0), torch.zeros(0, 1, 3))
    bg = (0.25, 0.5, 1.0)
    draw(renderer, empty, default_camera(), 40, 30, bg)
    rgba = renderer.read_rgba()
    assert rgba.shape == (30, 40, 4)
    np.testing.assert_array_equal(rgba[..., :3], np.broadcast_to(np.float32(bg), (30, 40, 3)))
    np.testing.assert_array_equal(rgba[..., 3], 0.0)
    np.testing.assert_array_equal(renderer.read_rgb(), np.broadcast_to(np.uint8([64, 128, 255]), (30, 40, 3)))
    # Gaussians all behind the camera: also nothing drawn.
    behind = random_scene(50, 4).map(lambda t: t.clone())
    behind.means[:, 2] = 10.0
    draw(renderer, behind, default_camera(), 40, 30, bg)
    np.testing.assert_array_equal(renderer.read_rgba()[..., :3], np.broadcast_to(np.float32(bg), (30, 40, 3)))


def test_orientation_top_left(renderer):
    """A splat placed up-left of the centre in the image (x < cx, y < cy in OpenCV pixels) shows up-left."""
    from core.camera import default_camera
    from core.gaussians import GaussianSet

    cam = default_camera()
    # Camera at +z looking at the origin: image x right is world +x, image y down is world -y.
    centre = torch.tensor([[-0.15, 0.15, 0.0]])
    g = GaussianSet(centre, torch.tensor([[1.0, 0, 0, 0]]), torch.full((1, 3), -3.5), torch.tensor([5.0]),
                    torch.ones(1, 1, 3))
    draw(renderer, g, cam, SIZE, SIZE, (0.0, 0.0, 0.0))
    img = renderer.read_rgb()
    ys, xs = np.nonzero(img[..., 0] > 128)
    assert xs.mean() < SIZE / 2 and ys.mean() < SIZE / 2
    ref = reference_uint8(g, cam, (0.0, 0.0, 0.0))
    assert psnr(img, ref) > 60


def test_view_matrix_matches_the_worker_camera():
    """The numpy camera of the OpenGL path equals the torch camera the render worker builds."""
    from viewer.viewport.gl_splats import intrinsics, view_matrix
    from viewer.viewport.requests import camera_from_params
    from ui_state.render import CameraParams

    for cam in (CameraParams(), CameraParams(yaw_deg=37.0, pitch_deg=-21.0, radius=1.7, target=(0.1, -0.2, 0.05)),
                CameraParams(mode="fly", yaw_deg=-120.0, pitch_deg=30.0, position=(0.3, 0.4, -2.0), fov_deg=40.0)):
        ref = camera_from_params(cam, 96, 64)
        np.testing.assert_allclose(view_matrix(cam), ref.world_to_camera().double().numpy(), atol=1e-5)
        K = ref.pixel_intrinsics(96, 64).double().numpy()
        np.testing.assert_allclose(intrinsics(cam, 96, 64), (K[0, 0], K[1, 1], K[0, 2], K[1, 2]), rtol=1e-5)


def test_each_quad_is_the_exact_box_of_its_visible_ellipse():
    """A splat's quad bounds the pixels where its alpha (from the float32 conic the shader gets) reaches 1/255,
    needles included, and is no larger than that box + 0.2 % + 1/32 px: on the quad's edge the largest alpha the
    splat can have is just below 1/255."""
    from core.camera import default_camera
    from viewer.viewport.splats import ALPHA_THRESHOLD, project, splat_arrays

    cam = default_camera()
    view = cam.world_to_camera().double().numpy()
    K = cam.pixel_intrinsics(SIZE, SIZE)
    out = np.concatenate([project(splat_arrays(s), view, (K[0, 0], K[1, 1], K[0, 2], K[1, 2]), SIZE, SIZE)
                          for s in (random_scene(300, 5), needle_scene(300, 8))])
    A, B, C, op = (out[:, i].astype(np.float64) for i in (4, 5, 6, 7))
    det = A * C - B * B
    var_x, var_y = C / det, A / det  # the 2D covariance's diagonal (the conic is its inverse)
    assert len(out) > 400 and max(out[:, 2].max(), out[:, 3].max()) > 40  # needles tens of pixels long
    for half, var in ((out[:, 2].astype(np.float64), var_x), (out[:, 3].astype(np.float64), var_y)):
        edge = op * np.exp(-0.5 * half**2 / var)  # the largest alpha on the line |dx| = half
        inside = op * np.exp(-0.5 * (half / 1.002 - 1 / 32) ** 2 / var)
        assert (edge < ALPHA_THRESHOLD).all()
        assert (inside >= ALPHA_THRESHOLD).all()


def test_drawing_in_flushed_runs_gives_the_pixels_of_one_draw(renderer, monkeypatch):
    import viewer.viewport.gl_splats as gl_splats
    from core.camera import orbit_cameras

    gaussians, camera = random_scene(301, 6), orbit_cameras(0.3, 0.1, 2.7)
    images = []
    for chunks in (1, 4, 5):
        monkeypatch.setattr(gl_splats, "DRAW_CHUNKS", chunks)
        draw(renderer, gaussians, camera, SIZE, SIZE, (0.2, 0.3, 0.4))
        images.append(renderer.read_rgba())
    assert renderer.count > 200 and renderer.count % 4 and renderer.count % 5
    assert len(np.unique(images[0][..., 3])) > 50
    for other in images[1:]:
        np.testing.assert_array_equal(other, images[0])
