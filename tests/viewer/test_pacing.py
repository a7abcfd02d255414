"""Frame pacing while the render worker draws the picture (viewer/window/pacing.py,
viewer/viewport/display.py): no display needed."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest


def test_frame_cap_follows_the_worker_while_a_picture_is_on_its_way():
    from viewer.window.pacing import PICTURE_FPS_FACTOR, PICTURE_FPS_MIN, frame_cap  # imports imgui_bundle

    assert frame_cap(75.0, None) == 75.0 and frame_cap(0.0, None) == 0.0
    assert frame_cap(75.0, 25.0) == pytest.approx(PICTURE_FPS_FACTOR * 25.0)
    assert frame_cap(75.0, 1.0) == PICTURE_FPS_MIN  # a slow worker never makes the panels sluggish
    assert frame_cap(75.0, 500.0) == 75.0  # a fast one (gsplat) never lifts the cap
    assert frame_cap(0.0, 25.0) == pytest.approx(PICTURE_FPS_FACTOR * 25.0)
    assert frame_cap(75.0, 0.0) == 75.0


def test_display_reports_the_worker_rate_only_while_it_draws_the_next_picture():
    from ui_state.render import CameraParams
    from ui_state.ui import UiState
    from viewer.jobs import JobContext
    from viewer.viewport.display import Display
    from viewer.viewport.worker import RenderWorker

    ui = UiState(device="cpu")
    ui.load.current = "random:tiny"
    ui.render.width = ui.render.height = 48
    with RenderWorker() as w:
        d = Display(ui, w)  # no GL context: the image path, texture uploads skipped
        d.texture = SimpleNamespace(upload=lambda image: 0, texture_id=0, size=(0, 0))
        d.show()
        w.wait(w.generation, 120)
        d.take_result()
        assert ui.info.display_path == "image" and d.result.error is None, d.result.error
        assert d.picture_fps() is None, "settled: no picture on its way"
        hold = threading.Event()  # keep the worker busy so that the next request stays on its way
        w.add_job(JobContext("hold"), lambda ctx, gpu: hold.wait(60), lambda r, e: None)
        ui.camera.camera = CameraParams(yaw_deg=30.0)
        d.show()
        try:
            fps = d.picture_fps()
            st = d.result.stats  # the first picture also synthesized: its render alone predicts the next one
            assert st.synthesized and fps == pytest.approx(1000.0 / st.render_ms)
        finally:
            hold.set()
        w.wait(w.generation, 120)
        d.take_result()
        assert d.picture_fps() is None
        ui.info.display_path = "opengl"  # the window draws the picture itself: nothing to wait for
        d.submitted = None
        assert d.picture_fps() is None


def test_auto_falls_back_to_opengl_and_says_why_when_the_cpu_rasterizer_cannot_run():
    from ui_state.ui import UiState
    from viewer.viewport.display import Display

    ui = UiState(device="cpu")
    worker = SimpleNamespace(cpu_splats_error=None)
    d = Display(ui, worker)
    d.gl = object()  # an OpenGL renderer exists
    assert not d.use_gl() and not ui.info.messages  # numba is installed here: the worker's images
    worker.cpu_splats_error = "CPU splat rasterizer unavailable (ImportError: test)"
    assert d.use_gl() and d.use_gl()
    said = [m.text for m in ui.info.messages]
    assert said == ["CPU splat rasterizer unavailable (ImportError: test); the OpenGL path draws the splats"]
    ui.render.display = "image"
    assert not d.use_gl()
