"""The studio window for real (glfw + OpenGL + imgui-bundle under Xvfb), driven by the ImGui test engine.

One window runs the whole scenario (opening a window costs seconds): the head is drawn, sliders change it, the
mouse orbits, every panel does its job (Edit, Save, Video, Inspect, Performance, Render modes), and bad files
show errors while the app keeps running. Assertions are on the UI state, on files written, and on pixels: the
OpenGL renderer's read-back and the window screenshot.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from window_wait import waiter  # tests/viewer/window_wait.py

pytestmark = pytest.mark.gui
ROOT = Path(__file__).resolve().parents[2]
RES = 128


_wait = waiter(90.0)


def _image(ctx, app) -> np.ndarray:
    """What the viewport shows now, at full resolution (uint8 [H, W, 3]), read back on the GUI thread (the test
    function runs on the test engine's own thread, which has no GL context)."""
    app.request_capture()
    _wait(ctx, lambda: app.captured_view is not None, "the captured view", 30.0)
    return app.captured_view


def _settled(app) -> bool:
    """The worker has answered the newest request (and on the OpenGL path the texture shows it)."""
    return app.display.settled


def test_studio_scenario(tmp_path):
    from imgui_bundle import imgui
    from imgui_bundle.immapp import testing

    from core.ply import read_ply
    from viewer.app import ViewerApp
    from viewer.config import ViewerConfig

    bad_ply = tmp_path / "broken.ply"
    bad_ply.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 999999999\nend_header\n")
    shot = tmp_path / "window.png"
    cfg = ViewerConfig(path="random:tiny", resolution=RES, width=1100, height=760, state_dir=tmp_path / "state")
    app = ViewerApp(cfg, device="cpu")
    app.ui.save.folder = str(tmp_path / "saved")
    app.ui.video.request = dataclasses.replace(app.ui.video.request, path=str(tmp_path / "orbit.mp4"))
    seen: dict = {}

    def test(ctx: imgui.test_engine.TestContext) -> None:
        from imgui_bundle import hello_imgui

        io = imgui.test_engine.get_io(hello_imgui.get_imgui_test_engine())  # slow machines: no 60 s watchdog
        io.config_watchdog_warning, io.config_watchdog_kill_test, io.config_watchdog_kill_app = 120, 900, 1200
        ui = app.ui
        _wait(ctx, lambda: _settled(app), "the first head")
        # no CUDA: "auto" shows the render worker's images, drawn by the CPU splat rasterizer
        assert ui.info.display_path == "image" and ui.info.error is None, ui.info.error
        assert app.display.result.stats.backend == "cpu-splats", app.display.result.stats
        first = _image(ctx, app)
        bg = np.array([255, 255, 255])
        covered = np.any(np.abs(first.astype(int) - bg) > 8, axis=-1).mean()
        seen["coverage"] = covered
        assert 0.002 < covered < 0.95, f"head coverage {covered:.3f}: nothing (or only splats) drawn"

        # Latent panel: the seed field changes the head.
        ctx.item_input_value("Panels/Latent/seed", 7)
        _wait(ctx, lambda: ui.latent.latent.seed == 7 and _settled(app), "seed 7")
        seed7 = _image(ctx, app)
        assert np.abs(seed7.astype(int) - first.astype(int)).mean() > 0.5, "seed change did not change the image"
        ctx.item_input_value("Panels/Latent/truncation psi", 0.0)
        _wait(ctx, lambda: ui.latent.latent.psi == 0.0 and _settled(app), "psi 0")
        avg = _image(ctx, app)
        ctx.item_input_value("Panels/Latent/seed", 3)
        _wait(ctx, lambda: ui.latent.latent.seed == 3 and _settled(app), "seed 3 at psi 0")
        assert np.array_equal(_image(ctx, app), avg), "at psi = 0 every seed must give the average head"

        # Mouse: a left drag on the image orbits, the wheel zooms.
        yaw0 = ui.camera.camera.yaw_deg
        ctx.mouse_move("Viewport/##view")
        ctx.mouse_drag_with_delta(imgui.ImVec2(80, 0), 0)
        assert ui.camera.camera.yaw_deg < yaw0 - 5, f"drag right did not orbit: yaw {ui.camera.camera.yaw_deg}"
        r0 = ui.camera.camera.radius
        ctx.mouse_wheel_y(2.0)
        ctx.yield_()
        assert ui.camera.camera.radius < r0, "wheel up did not zoom in"
        _wait(ctx, lambda: _settled(app), "orbited view")
        ctx.item_click("Panels/Camera/Reset camera")
        assert ui.camera.camera.yaw_deg == 0 and ui.camera.camera.radius == pytest.approx(2.7)

        # Render panel: background colour and modes.
        ctx.item_open("Panels/Render")
        ui.render.background = (1.0, 0.0, 0.0)
        _wait(ctx, lambda: _settled(app) and app.display.result.params.background == (1.0, 0.0, 0.0),
              "red background")
        red = _image(ctx, app)
        assert tuple(red[0, 0]) == (255, 0, 0) and tuple(red[-1, -1]) == (255, 0, 0), red[0, 0]
        ui.render.background = (1.0, 1.0, 1.0)
        ctx.item_click("Panels/Render/mode/depth")
        _wait(ctx, lambda: ui.info.display_path == "image" and app.display.result.params.mode == "depth"
              and app.display.result.image is not None, "depth image")
        depth = app.display.result.image
        assert depth[..., 0].max() > 200 and depth[0, 0, 0] == 0, "depth: near not bright / empty not black"
        ctx.item_click("Panels/Render/mode/RGB")
        _wait(ctx, lambda: app.display.result.params.mode == "rgb" and _settled(app), "back to RGB")
        assert app.display.result.stats.backend == "cpu-splats"

        # Edit panel: an opacity threshold removes Gaussians; undo brings them back.
        n0 = app.display.result.stats.gaussians
        ctx.item_open("Panels/Edit")
        ctx.item_click("Panels/Edit/opacity_threshold##op")
        ctx.item_input_value("Panels/Edit/min_opacity", 0.5)
        ctx.item_click("Panels/Edit/Apply##edit")
        _wait(ctx, lambda: len(ui.info.edits.applied) == 1 and _settled(app), "the edit")
        n1 = app.display.result.stats.gaussians
        assert 0 < n1 < n0, f"opacity threshold kept {n1} of {n0}"
        ctx.item_click("Panels/Edit/Undo##edit")
        _wait(ctx, lambda: not ui.info.edits.applied and _settled(app), "undo")
        assert app.display.result.stats.gaussians == n0
        ctx.item_click("Panels/Edit/Redo##edit")
        _wait(ctx, lambda: len(ui.info.edits.applied) == 1 and _settled(app), "redo")
        seen["edited_count"] = app.display.result.stats.gaussians

        # Save panel: .ply of what is shown (edited), the image, the latent.
        ctx.item_open("Panels/Save")
        ctx.item_click("Panels/Save/Save .ply")
        ctx.item_click("Panels/Save/Save image")
        ctx.item_click("Panels/Save/Save latent")
        for job in ("save_ply", "save_image", "save_latent"):
            _wait(ctx, lambda: job in ui.info.jobs and not ui.info.jobs[job].running, job)
            assert ui.info.jobs[job].error is None, ui.info.jobs[job].error
        seen["saved_image"] = _image(ctx, app)

        # Video panel: a short orbit in the background.
        ctx.item_open("Panels/Video")
        ctx.item_input_value("Panels/Video/frames", 4)
        ctx.item_input_value("Panels/Video/resolution (px)", 32)
        ctx.item_click("Panels/Video/Render video")
        _wait(ctx, lambda: "video" in ui.info.jobs and not ui.info.jobs["video"].running, "the video")
        assert ui.info.jobs["video"].error is None, ui.info.jobs["video"].error

        # Inspect and Performance panels.
        ctx.item_open("Panels/Inspect")
        ctx.item_click("Panels/Inspect/Refresh##inspect")
        _wait(ctx, lambda: ui.info.inspect is not None and ui.info.inspect.count == seen["edited_count"],
              "statistics of the edited head")
        ctx.item_open("Panels/Performance")
        for _ in range(3):
            ctx.yield_()
        assert len(ui.info.gui_ms) > 10 and len(ui.info.render_ms) > 0

        # Saved latents: checkpoint, change, restore: the same head again, with a thumbnail.
        ctx.item_input_value("Panels/Latent/truncation psi", 0.7)  # (at psi 0 every seed is the same head)
        _wait(ctx, lambda: ui.latent.latent.psi == pytest.approx(0.7) and _settled(app), "psi 0.7")
        saved_head = _image(ctx, app)
        ctx.item_click("Panels/Latent/Save##latent")
        ctx.yield_()
        assert [e.name for e in ui.info.saved_latents] == ["latent 1"] and ui.info.saved_latents[0].texture
        ctx.item_input_value("Panels/Latent/seed", 11)
        _wait(ctx, lambda: ui.latent.latent.seed == 11 and _settled(app), "seed 11")
        assert not np.array_equal(_image(ctx, app), saved_head)
        ctx.item_click("Panels/Latent/saved0/restore")
        _wait(ctx, lambda: ui.latent.latent.space == "w" and _settled(app), "the restored latent")
        assert np.array_equal(_image(ctx, app), saved_head), "restoring a saved latent must give the same head"

        # Bad input: a missing file is refused with a message, a corrupt .ply with its error in the Load panel;
        # the view keeps what it showed (tests/viewer/test_studio_dead_ends.py checks nothing else changes).
        ctx.item_input("Panels/Load/path##load")  # typed without Enter: Enter alone opens
        ctx.key_chars_replace(str(tmp_path / "missing.pkl"))  # (Enter + Open raced the opening bar)
        ctx.item_click("Panels/Load/Open##load")
        assert any("file not found" in m.text for m in ui.info.messages), ui.info.messages
        ctx.item_input("Panels/Load/path##load")  # typed without Enter: Enter alone opens
        ctx.key_chars_replace(str(bad_ply))  # (Enter + Open raced the opening bar)
        ctx.item_click("Panels/Load/Open##load")
        _wait(ctx, lambda: "broken.ply" in ui.load.error and not ui.load.opening, "the corrupt-file error")
        seen["error"] = ui.load.error_details
        assert ui.load.current == "random:tiny" and ui.info.error is None
        for _ in range(3):
            ctx.yield_()
        testing.capture(ctx, str(shot))
        # ... and the app still works: another source opens.
        ctx.item_click("Panels/Load/random:cpu128##builtin")
        _wait(ctx, lambda: ui.load.current == "random:cpu128" and not ui.load.error and _settled(app),
              "opening after the error")

    testing.run(test_function=test, runner_params=app.runner_params(), add_ons_params=app.addons())

    assert "coverage" in seen, "the test function did not run to the end"
    assert "broken.ply" in seen["error"] or "vertex" in seen["error"], seen["error"]
    ply = read_ply(next((tmp_path / "saved").glob("*.ply")))
    assert ply.num_gaussians == seen["edited_count"], "the .ply is not what was shown (edits applied)"
    png = np.asarray(Image.open(next((tmp_path / "saved").glob("*.png"))))
    assert png.shape == (RES, RES, 3) and np.array_equal(png, seen["saved_image"])
    from core.editing import load_library

    (entry,) = load_library(next((tmp_path / "saved").glob("*.latents.npz"))).entries
    assert entry.edit.base.dim() == 2 and entry.thumbnail is not None
    import imageio

    with imageio.get_reader(tmp_path / "orbit.mp4") as video:
        frames = [f for f in video]
    assert len(frames) == 4 and frames[0].shape == (32, 32, 3)
    window = np.asarray(Image.open(shot).convert("RGB"))
    assert window.shape[0] > 500 and len(np.unique(window.reshape(-1, 3), axis=0)) > 50


def test_run_viewer_smoke(tmp_path):
    """run_viewer.py end to end in a fresh process: default model, a screenshot, exit 0."""
    png = tmp_path / "cli.png"
    cmd = [sys.executable, "run_viewer.py", "random:tiny", "--frames", "3", "--screenshot", str(png), "--width",
           "800", "--height", "480", "--resolution", "96", "--state-dir", str(tmp_path)]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "saved 800x480 screenshot" in r.stdout
    img = np.asarray(Image.open(png).convert("RGB"))
    assert img.shape[:2] == (480, 800)
    assert (np.all(img == (240, 190, 60), axis=-1)).sum() > 2000, "no random-weights banner"


def test_latent_sliders_pca_teach_and_reversibility(tmp_path):
    """PCA sliders computed in the window move the head; back to 0 restores it exactly; a taught slider appears."""
    from imgui_bundle import hello_imgui, imgui
    from imgui_bundle.immapp import testing

    from viewer.app import ViewerApp
    from viewer.config import ViewerConfig

    app = ViewerApp(ViewerConfig(path="random:tiny", resolution=RES, width=1100, height=900,
                                 state_dir=tmp_path / "state"), device="cpu")
    seen: dict = {}

    def test(ctx: imgui.test_engine.TestContext) -> None:
        io = imgui.test_engine.get_io(hello_imgui.get_imgui_test_engine())
        io.config_watchdog_warning, io.config_watchdog_kill_test, io.config_watchdog_kill_app = 120, 900, 1200
        ui = app.ui
        for header in ("Load", "Camera"):
            ctx.item_close(f"Panels/{header}")
        _wait(ctx, lambda: _settled(app), "the first head")
        base = _image(ctx, app)
        ctx.item_click("Panels/Latent/Compute PCA sliders")
        _wait(ctx, lambda: len(ui.info.directions.sliders) > 0, "PCA sliders")
        ctx.item_input_value("Panels/Latent/slider_PCA0/PCA0", 2.5)
        _wait(ctx, lambda: _settled(app) and app.display.result.params.sliders.values == (("PCA0", 2.5),),
              "the slider's effect")
        assert ui.latent.latent.latent is None and ui.latent.latent.seed == 0, "the sliders must not touch the latent"
        moved = _image(ctx, app)
        seen["moved"] = float(np.abs(moved.astype(int) - base.astype(int)).mean())
        ctx.item_click("Panels/Latent/slider_PCA0/0")
        _wait(ctx, lambda: _settled(app) and not app.display.result.params.sliders.values, "the slider back at 0")
        seen["back"] = _image(ctx, app)
        seen["base"] = base
        ctx.item_open("Panels/Latent/Teach a slider")
        ctx.item_input_value("Panels/Latent/Teach a slider/attribute", "wide")
        for seed, yes in ((1, True), (2, False), (3, True), (4, False)):
            ctx.item_input_value("Panels/Latent/seed", seed)
            _wait(ctx, lambda: _settled(app) and ui.latent.latent.seed == seed, f"seed {seed}")
            ctx.item_click(f"Panels/Latent/Teach a slider/{'Yes' if yes else 'No'}##mark")
        ctx.yield_()
        assert ui.info.directions.marks == (2, 2)
        ctx.item_click("Panels/Latent/Teach a slider/Make slider")
        _wait(ctx, lambda: any(d.name == "wide" and d.kind == "user" for d in ui.info.directions.sliders),
              "the taught slider")

    testing.run(test_function=test, runner_params=app.runner_params(), add_ons_params=app.addons())
    assert seen["moved"] > 0.5, "moving PCA0 did not change the head"
    assert np.array_equal(seen["back"], seen["base"]), "slider back to 0 must restore the head exactly"
