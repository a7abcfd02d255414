"""No dead ends, in the real window (glfw + OpenGL + imgui-bundle under Xvfb, driven by the ImGui test engine), on
a copy of the default model (it has measured sliders) in a temporary folder:

- a corrupt file fails to open and changes nothing but the Load panel's error line (view, Recent list and its
  file, the Latent panel's sliders);
- *Browse...* without a desktop dialog opens the in-app one, and a file chosen there opens;
- depth mode keeps presenting the previous picture until its first image arrives;
- the measured targets start at the head's own values (hair colour is not the skin colour), *Match* reports
  progress and moves the sliders;
- no text runs off the side panel (edit history with a crop box, the measured sliders' Match buttons) or off
  the error overlay;
- a saved latent is written beside the model and is there again after a restart.
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from window_wait import waiter  # tests/viewer/window_wait.py

pytestmark = pytest.mark.gui
ROOT = Path(__file__).resolve().parents[2]
RES = 96


_wait = waiter(120.0)


def _watchdog_off(imgui) -> None:
    from imgui_bundle import hello_imgui

    io = imgui.test_engine.get_io(hello_imgui.get_imgui_test_engine())
    io.config_watchdog_warning, io.config_watchdog_kill_test, io.config_watchdog_kill_app = 120, 900, 1200


def _overflow(ctx, window_ref: str) -> float:
    """How far (px) the window's content reaches past its visible width (0: nothing is cut off)."""
    win = ctx.window_info(window_ref).window
    visible = win.content_region_rect.get_width()
    return max(0.0, win.content_size.x - visible)


@pytest.fixture(scope="module")
def model_copy(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    src = ROOT / "assets" / "default_model.safetensors"
    if not src.is_file():
        pytest.skip("assets/default_model.safetensors is missing")
    shutil.copy(src, folder / "head.safetensors")
    shutil.copy(ROOT / "assets" / "default_model.directions.npz", folder / "head.directions.npz")
    return folder / "head.safetensors"


def _app(model: Path, state: Path):
    from viewer.app import ViewerApp
    from viewer.config import ViewerConfig

    app = ViewerApp(ViewerConfig(path=str(model), resolution=RES, width=1200, height=900, state_dir=state),
                    device="cpu")
    app.drops.dialog.in_app = True  # as on a desktop without zenity/kdialog (a test must not open a real one)
    # The OpenGL path (the window draws the splats), so that depth mode's switch to the worker's images and
    # back is exercised; test_studio_window covers the default path (the worker's CPU splat images).
    app.ui.render.display = "opengl"
    return app


def test_no_dead_ends(tmp_path, model_copy):
    from imgui_bundle import imgui
    from imgui_bundle.immapp import testing

    import torch

    from core.latent import load_generator_source
    from core.ply import write_ply

    bad = tmp_path / "corrupt.ply"
    bad.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 999999999\nend_header\n")
    good = tmp_path / "scene.ply"
    with torch.no_grad():
        G = load_generator_source("random:tiny")
        write_ply(good, G.synthesis(G.map(torch.randn(1, G.config.z_dim), 1.0, None)).gaussians.map(lambda t: t[0]))
    state = tmp_path / "state"
    app = _app(model_copy, state)
    seen: dict = {}

    def test(ctx: imgui.test_engine.TestContext) -> None:
        _watchdog_off(imgui)
        ui = app.ui
        _wait(ctx, lambda: app.display.settled and ui.info.directions.measured, "the head and its sliders")

        # 1. A corrupt file: only the error line changes.
        before = (ui.load.current, list(ui.load.recent), ui.info.directions.status, ui.latent.latent,
                  app.display.result.generation)
        recent_file = state / "recent.json"
        recent_text = recent_file.read_text() if recent_file.exists() else None
        ctx.item_input("Panels/Load/path##load")  # typed without Enter: Enter alone opens
        ctx.key_chars_replace(str(bad))  # (Enter + Open raced the opening bar)
        ctx.item_click("Panels/Load/Open##load")
        _wait(ctx, lambda: ui.load.error and not ui.load.opening, "the open to fail")
        ctx.yield_(3)
        seen["error"] = ui.load.error
        seen["after"] = (ui.load.current, list(ui.load.recent), ui.info.directions.status, ui.latent.latent,
                         app.display.result.generation)
        seen["before"] = before
        seen["recent_file_same"] = (recent_file.read_text() if recent_file.exists() else None) == recent_text
        seen["overlay_error"] = ui.info.error

        # 2. Browse... without a desktop dialog: the in-app one; a file chosen there opens.
        ctx.item_click("Panels/Load/Browse...##load")
        ctx.yield_(2)
        seen["dialog"] = (app.drops.dialog.is_open, app.drops.dialog.kind)
        ctx.item_click("//###open_source/##file_input")
        ctx.key_chars_replace(str(good))
        ctx.item_click("//###open_source/Open")
        _wait(ctx, lambda: ui.load.current == str(good) and app.display.settled, "the chosen .ply")
        seen["opened_error"] = ui.load.error
        assert ui.load.recent[1] == str(model_copy), ui.load.recent
        escaped = str(model_copy).replace("/", "\\/")  # '/' separates test-engine reference levels
        ctx.item_click(f"Panels/Load/{escaped}##recent1")
        _wait(ctx, lambda: ui.load.current == str(model_copy) and app.display.settled
              and ui.info.directions.measured and all(m.value is not None for m in ui.info.directions.measured),
              "the model again, measured", state=lambda: (ui.load.current, ui.load.error, app.display.settled,
                                                          ui.info.directions, ui.info.jobs))

        # 3. Depth mode keeps the last picture until its first image (the worker is held meanwhile).
        from viewer.jobs import JobContext

        hold = threading.Event()
        app.worker.add_job(JobContext("hold"), lambda c, g: hold.wait(60), lambda r, e: None)
        ctx.item_open("Panels/Render")
        gl_picture = app.display.presented
        ctx.item_click("Panels/Render/mode/depth")
        ctx.yield_(5)
        seen["depth_waiting"] = (ui.info.display_path, app.display.presented, gl_picture)
        hold.set()
        _wait(ctx, lambda: app.display.result.params.mode == "depth" and app.display.result.image is not None
              and app.display.presented[0] == app.display.texture.texture_id, "the depth image")
        ctx.item_click("Panels/Render/mode/RGB")
        _wait(ctx, lambda: ui.info.display_path == "opengl" and app.display.settled, "back to RGB")
        ctx.item_close("Panels/Render")

        # 4. Measured targets: the head's own values; Match with progress.
        measured = {m.name: m.value for m in ui.info.directions.measured}
        seen["measured"] = measured
        seen["targets_before"] = dict(ui.latent.color_targets)
        ui.latent.color_targets["hair_color"] = (0.05, 0.04, 0.03)
        ctx.item_click("Panels/Latent/measured_hair_color/Match")
        progress = set()
        _wait(ctx, lambda: (progress.add(ui.info.jobs["match"].message) if "match" in ui.info.jobs
                            and ui.info.jobs["match"].running else None) or ("match" in ui.info.jobs
                            and not ui.info.jobs["match"].running), "the match")
        seen["progress"] = progress
        seen["match_error"] = ui.info.jobs["match"].error
        seen["sliders"] = dict(ui.latent.sliders)
        _wait(ctx, lambda: app.display.settled, "the matched head")

        # 5. Nothing cut off: edit history with a crop box, Match buttons, the error overlay.
        ctx.item_open("Panels/Edit")
        ctx.item_click("Panels/Edit/crop_box##op")
        ctx.item_click("Panels/Edit/Apply##edit")
        _wait(ctx, lambda: len(ui.info.edits.applied) == 1 and app.display.settled, "the crop edit")
        ctx.item_click("Panels/Edit/Undo##edit")
        ctx.item_click("Panels/Edit/Redo##edit")
        ctx.yield_(3)
        seen["panel_overflow"] = _overflow(ctx, "//Panels")
        match = ctx.item_info("Panels/Latent/measured_head_width/Match").rect_full
        panel = ctx.window_info("//Panels").window
        seen["match_inside"] = match.max.x <= panel.inner_rect.max.x + 0.5
        ui.info.error = ("Traceback (most recent call last):\n  ...\nValueError: " +
                         "a long error message that must wrap inside the overlay instead of running off " * 4)
        ctx.yield_(3)
        seen["overlay_overflow"] = _overflow(ctx, "//Viewport/error")
        ui.info.error = None

        # 6. A saved latent goes beside the model.
        ctx.item_input_value("Panels/Latent/name##latent", "kept")
        ctx.item_click("Panels/Latent/Save##latent")
        _wait(ctx, lambda: "write_latents" in ui.info.jobs and not ui.info.jobs["write_latents"].running,
              "the latents file")
        seen["write_error"] = ui.info.jobs["write_latents"].error

    testing.run(test_function=test, runner_params=app.runner_params(), add_ons_params=app.addons())

    assert "write_error" in seen, "the test function did not run to the end"
    assert "corrupt.ply" in seen["error"], seen["error"]
    assert seen["after"] == seen["before"], "a failed open changed more than the error line"
    assert seen["recent_file_same"] and seen["overlay_error"] is None
    assert seen["dialog"] == (True, "in-app") and seen["opened_error"] == ""
    path, presented, gl_picture = seen["depth_waiting"]
    assert path == "image" and presented == gl_picture and presented[0], \
        f"depth mode blanked the view while its image was computed: {presented} vs {gl_picture}"
    skin, hair = np.array(seen["measured"]["skin_color"]), np.array(seen["measured"]["hair_color"])
    assert seen["targets_before"] == {} and np.abs(skin - hair).max() > 0.05, seen["measured"]
    assert seen["match_error"] is None and any("step" in m for m in seen["progress"]), seen["progress"]
    assert any(k.startswith("hair_color") for k in seen["sliders"]), seen["sliders"]
    assert seen["panel_overflow"] == 0.0 and seen["match_inside"], seen["panel_overflow"]
    assert seen["overlay_overflow"] == 0.0, seen["overlay_overflow"]
    assert seen["write_error"] is None
    from core.editing import latents_path, load_library

    assert load_library(latents_path(model_copy)).names == ("kept",)

    # After a restart the saved latent is there again, with its thumbnail.
    app2 = _app(model_copy, state)
    again: dict = {}

    def test2(ctx: imgui.test_engine.TestContext) -> None:
        _watchdog_off(imgui)
        _wait(ctx, lambda: app2.ui.info.saved_latents, "the saved latents")
        again["saved"] = [(e.name, bool(e.texture)) for e in app2.ui.info.saved_latents]

    testing.run(test_function=test2, runner_params=app2.runner_params(), add_ons_params=app2.addons())
    assert again["saved"] == [("kept", True)]
    assert json.loads((state / "recent.json").read_text())[0] == str(model_copy)
