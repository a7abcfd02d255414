"""Inversion with tuning on a GGHead model in the real studio window (Xvfb, ImGui test engine): a GGHead-format
checkpoint (tiny stand-in, exact upstream pickle format) opened from the Load panel, scikit-image's astronaut
portrait preprocessed with the FFHQ (EG3D) framing, stage 1 in W+, stage 2 shown as ``memory:tuned`` with the
original GGHead weights untouched, Save everything, and the saved ``generator_tuned.safetensors`` opened again from the
Load panel: a GGHead model that draws the same head as the tuned view."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from inversion_form import fill_stage_form  # tests/viewer/inversion_form.py
from window_wait import waiter  # tests/viewer/window_wait.py

pytestmark = [pytest.mark.gui, pytest.mark.slow]
P = "Panels/Inversion"


_wait = waiter(240.0)


def _image(ctx, app) -> np.ndarray:
    app.request_capture()
    _wait(ctx, lambda: app.captured_view is not None, "the captured view", 30.0)
    return app.captured_view


def _shows(app, source: str) -> bool:
    r = app.display.result
    return app.display.settled and r is not None and r.params is not None and r.params.source == source


def test_gghead_inversion_with_tuning_in_the_window(tmp_path):
    from imgui_bundle import hello_imgui, imgui
    from imgui_bundle.immapp import testing

    from core.gghead.config import PRESETS
    from core.gghead.format_writer import write_gghead_checkpoint
    from core.model_files import load_generator
    from ui_state.inversion import STAND_IN_LABEL
    from viewer.app import ViewerApp
    from viewer.config import ViewerConfig

    astronaut = pytest.importorskip("skimage.data").astronaut()
    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(astronaut).save(photo)
    model = tmp_path / "GGHEAD-1_ffhq512" / "checkpoints" / "checkpoint-000100.pkl"
    model.parent.mkdir(parents=True)
    write_gghead_checkpoint(model, PRESETS["tiny"], seed=0)
    out = tmp_path / "results"
    app = ViewerApp(ViewerConfig(path="random:tiny", resolution=64, state_dir=tmp_path / "state", width=1100,
                                 height=900), device="cpu")
    session = app.inversion
    info = lambda: session.state.info  # noqa: E731
    texts = lambda: [m.text for m in info().messages]  # noqa: E731
    seen: dict = {}

    def form(ctx, stage: str, steps: int) -> None:
        fill_stage_form(ctx, session, P, stage, steps)

    def gghead_state(source: str) -> dict:
        return app.worker.call(lambda gpu: {k: v.clone() for k, v in
                                            gpu.generator(source, "cpu").state_dict().items()}, 60)

    def test(ctx: imgui.test_engine.TestContext) -> None:
        io = imgui.test_engine.get_io(hello_imgui.get_imgui_test_engine())  # slow machines: no 60 s watchdog
        io.config_watchdog_warning, io.config_watchdog_kill_test, io.config_watchdog_kill_app = 120, 900, 1200
        ui = app.ui
        ctx.item_close("Panels/Camera")
        ctx.item_input("Panels/Load/path##load")  # typed without Enter: Enter alone opens
        ctx.key_chars_replace(str(model))  # (Enter + Open raced the opening bar)
        ctx.item_click("Panels/Load/Open##load")
        _wait(ctx, lambda: _shows(app, str(model)), "the GGHead model")
        assert app.worker.call(lambda gpu: gpu.generator(str(model), "cpu").family, 30) == "gghead"
        for header in ("Load", "Latent"):
            ctx.item_close(f"Panels/{header}")
        ctx.item_open(P)
        # 1. + 2. the photo, preprocessed with the FFHQ (EG3D) framing GGHead was trained with
        ctx.item_input_value(f"{P}/photos", str(photo))
        ctx.item_click(f"{P}/Add photos")
        _wait(ctx, lambda: info().photos == ("astronaut.jpg",), "the photo")
        ctx.item_click(f"{P}/ffhq-eg3d##framing")
        assert session.state.panel.framing == "ffhq-eg3d"
        ctx.item_click(f"{P}/Preprocess")
        _wait(ctx, lambda: info().has_target and not info().running, "preprocessing")
        (thumb,) = info().thumbs
        assert abs(thumb.yaw_deg) < 15, thumb
        # 3. stage 1 in W+ (the model's 6 ws), stand-in loss networks; the view follows
        ctx.item_check(f"{P}/{STAND_IN_LABEL}")
        form(ctx, "stage1", 3)
        ctx.item_click(f"{P}/stage1/space/W+")
        latent0 = ui.latent.latent
        ctx.item_click(f"{P}/stage1/Start")
        _wait(ctx, lambda: info().has_latent and not info().running, "stage 1")
        assert info().latent_history["total"].size == 3 and ui.latent.latent != latent0
        assert ui.latent.latent.space == "w" and len(ui.latent.latent.latent) == 6 * 32, len(ui.latent.latent.latent)
        _wait(ctx, lambda: app.display.result.params.latent == ui.latent.latent and app.display.settled,
              "the view to show the stage-1 latent")
        assert app.display.result.error is None, app.display.result.error
        seen["stage1_view"] = _image(ctx, app)
        # 4. stage 2: the tuned copy in the view, the original untouched
        before = gghead_state(str(model))
        form(ctx, "stage2", 2)
        ctx.item_click(f"{P}/stage2/Start")
        _wait(ctx, lambda: info().has_tuned and not info().running and _shows(app, "memory:tuned"),
              "the tuned generator in the view")
        assert info().tuned_active and ui.load.current == "memory:tuned" and app.display.result.error is None
        assert app.display.result.stats.gaussians == 428 and info().tuning_history["total"].size == 2
        tuned = gghead_state("memory:tuned")
        seen["tuned_changed"] = any(not torch.equal(v, before[k]) for k, v in tuned.items())
        after = gghead_state(str(model))
        seen["untouched"] = all(torch.equal(v, before[k]) for k, v in after.items())
        seen["tuned_view"] = _image(ctx, app)
        seen["tuned_state"] = tuned
        # 5. save everything, reset, and open the saved tuned generator from the Load panel
        ctx.item_input_value(f"{P}/output folder", str(out))
        ctx.item_input_value(f"{P}/orbit video frames", 2)
        ctx.item_click(f"{P}/Save everything")
        _wait(ctx, lambda: info().saved_to and not info().running, "saving")
        assert not [t for t in texts() if "error" in t.lower()], texts()
        ctx.item_click(f"{P}/Reset to original model")
        _wait(ctx, lambda: _shows(app, str(model)), "the original model in the view")
        ctx.item_close(P)
        ctx.item_open("Panels/Load")
        tuned_file = out / "generator_tuned.safetensors"
        ctx.item_input("Panels/Load/path##load")  # typed without Enter: Enter alone opens
        ctx.key_chars_replace(str(tuned_file))  # (Enter + Open raced the opening bar)
        ctx.item_click("Panels/Load/Open##load")
        _wait(ctx, lambda: _shows(app, str(tuned_file)), "the saved tuned generator")
        assert ui.info.error is None and app.display.result.stats.gaussians == 428, ui.info.error
        assert app.worker.call(lambda gpu: gpu.generator(str(tuned_file), "cpu").family, 30) == "gghead"
        seen["reloaded_view"] = _image(ctx, app)
        seen["reloaded_state"] = gghead_state(str(tuned_file))

    testing.run(test_function=test, runner_params=app.runner_params(), add_ons_params=app.addons())

    assert "reloaded_view" in seen, "the test function did not run to the end"
    assert seen["untouched"], "tuning changed the original GGHead generator"
    assert seen["tuned_changed"], "stage 2 did not change the tuned copy"
    assert all(torch.equal(v, seen["tuned_state"][k]) for k, v in seen["reloaded_state"].items())
    assert np.array_equal(seen["reloaded_view"], seen["tuned_view"]), "the reloaded tuned model draws another head"
    assert not np.array_equal(seen["tuned_view"], seen["stage1_view"]), "tuning did not change the view"
    for name in ("aligned/00_astronaut.png", "cameras.json", "pivot.npz", "generator_tuned.safetensors", "head.ply",
                 "renders/00_astronaut_stage1.png", "renders/00_astronaut_stage2.png", "report.json"):
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    assert report["stage1"]["steps_done"] == 3 and report["stage2"]["steps_done"] == 2
    loaded = load_generator(out / "generator_tuned.safetensors")
    assert loaded.source_format == "splathead-gghead" and loaded.generator.config.num_gaussians == 428
    with np.load(out / "pivot.npz") as f:
        assert f["ws"].shape == (1, 6, 32) and str(f["space"]) == "w+"
