"""The Inversion panel: its feature on its own (a real render worker, stand-in textures, no window; the stages
run through ``inversion.pipeline`` on the worker), and the real window
driven by the ImGui test engine under Xvfb (tiny random generator, scikit-image's astronaut portrait, stand-in
loss networks): add photos (one without a face, one missing), preprocess, stage 1 with the view following and
Stop, stage 2 shown as ``memory:tuned`` with the original generator untouched, save everything, reset, and the
webcam section on a machine without a camera."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from typing import get_args

import numpy as np
import pytest
import torch
from PIL import Image

from inversion_form import fill_stage_form  # tests/viewer/inversion_form.py
from ui_state.actions import ChoosePreset, InversionAction, LoadPhotos, StartLatentSearch
from ui_state.inversion import OFFLINE_LABEL, STAND_IN_LABEL, split_paths
from ui_state.ui import UiState
from viewer.jobs import JobRunner

from window_wait import waiter  # tests/viewer/window_wait.py


class FakeTexture:
    count = 0

    def __init__(self) -> None:
        FakeTexture.count += 1
        self.texture_id, self.size = FakeTexture.count, (0, 0)

    def upload(self, image: np.ndarray) -> int:
        self.size = (image.shape[1], image.shape[0])
        return self.texture_id

    def release(self) -> None:
        self.texture_id = 0


@pytest.fixture
def session(tmp_path):
    """The inversion feature with the real source and latent features and a real render worker beside it (no
    window, stand-in textures). Yields ``(studio, feature)``; ``studio.handlers`` routes their actions."""
    from viewer.features.base import Studio
    from viewer.features.inversion.feature import Inversion
    from viewer.features.latents import Latents
    from viewer.features.sources import Sources
    from viewer.viewport.worker import RenderWorker

    features: list = []
    worker = RenderWorker()
    studio = Studio(UiState(), JobRunner(worker), worker, SimpleNamespace(result=None, new_texture=FakeTexture),
                    emit=lambda event: [f.source_changed(event) for f in features])
    feature = Inversion(studio, texture_factory=FakeTexture)
    features += [Sources(studio, "random:tiny", tmp_path / "recent.json"), Latents(studio), feature]
    studio.handlers = {k: v for f in features for k, v in f.handlers().items()}
    yield studio, feature
    feature.release()
    studio.jobs.shutdown(5.0)
    worker.close()


def pump(app, session, condition, what: str, timeout: float = 60.0, webcam_open: bool = False) -> None:
    """Frames without a window: job statuses, queued actions, the controller's poll (``webcam_open``: the
    panel draws an open Webcam section every frame)."""
    deadline = time.monotonic() + timeout
    while True:
        session.state.panel.webcam_open = webcam_open
        app.ui.info.jobs = app.jobs.poll()
        actions, app.ui.actions = app.ui.actions, []
        for a in actions:
            app.handlers[type(a)](a)
        session.poll()
        if condition():
            return
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {session._messages[-3:]}"
        time.sleep(0.02)


def test_paths_field_and_action_routing(tmp_path, session):
    assert split_paths(' a.jpg; "b c.png" ;; ') == ["a.jpg", "b c.png"]
    app, session = session
    assert set(session.handlers()) == set(get_args(InversionAction)) and isinstance(LoadPhotos(("x",)), InversionAction)
    photo = tmp_path / "p.png"
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(photo)
    app.ui.request(LoadPhotos((str(photo), str(tmp_path / "missing.jpg"), str(tmp_path), str(photo))))
    pump(app, session, lambda: session.state.info.photos == ("p.png",), "the photo list")
    texts = [m.text for m in session.state.info.messages]
    assert f"{tmp_path / 'missing.jpg'}: no such file" in texts and any("is a folder" in t for t in texts)
    assert any("already an input" in t for t in texts)
    app.ui.request(StartLatentSearch())  # before preprocessing: a message, no job
    pump(app, session, lambda: "preprocess the photos first" in session._messages[-1].text, "the refusal")
    assert app.ui.inversion is session.state


def test_opening_another_model_ends_the_tuned_view(tmp_path, session):
    from core.latent import load_generator_source
    from ui_state.actions import OpenFile
    from viewer.features.inversion.stages import TunedPublished

    app, session = session
    app.worker.put_model("tuned", load_generator_source("random:tiny"))  # what stage 2's job does
    session._feed.put(TunedPublished(1))
    pump(app, session, lambda: app.ui.load.current == "memory:tuned", "the tuned view")
    assert app.worker.call(lambda gpu: gpu.generator("memory:tuned", "cpu").config.z_dim, 30) == 64
    assert session.state.info.tuned_active and session._base_source() == "random:tiny"
    assert "memory:tuned" not in app.ui.load.recent  # shown, not opened
    other = "random:cpu128"
    app.ui.request(OpenFile(other))  # the Load panel opened another model (loaded first, then shown)
    pump(app, session, lambda: app.ui.load.current == other, "the other model")
    assert session.original_source is None
    with pytest.raises(RuntimeError, match="no longer available"):
        app.worker.call(lambda gpu: gpu.generator("memory:tuned", "cpu"), 30)
    assert not session.state.info.tuned_active and session._base_source() == other
    assert session._messages[-1].level == "warning"


def test_webcam_without_camera_says_so(session):
    app, session = session
    pump(app, session, lambda: session.state.info.webcam_status.startswith("No camera found"),
         "the webcam message", 30.0, webcam_open=True)
    pump(app, session, lambda: not app.jobs.running("inversion_webcam"), "the failed camera job", 10.0,
         webcam_open=True)
    for _ in range(5):  # no retry while the section stays open
        pump(app, session, lambda: True, "a frame", webcam_open=True)
        assert not app.jobs.running("inversion_webcam")
    assert "<video0>" in session.state.info.webcam_status and "\n" not in session.state.info.webcam_status
    session.take_picture()
    assert session.state.info.webcam_texture == 0 and not session.sources
    assert session._messages[-1].level == "error"
    pump(app, session, lambda: not app.jobs.running("inversion_webcam"), "the camera to close", 10.0)
    session.release()


def test_missing_loss_weights_are_said_in_the_panel_words(tmp_path, monkeypatch, session):
    """A missing weight file is named before Start. Online (the default) it is a note that the file will be
    downloaded on first use from its address into its folder; with 'never download weight files' ticked it is
    an error, before Start and, on Start, under stage 1's buttons, in the panel's own words: its 'weights
    folder' field, its offline and stand-in boxes, no command-line options."""
    from core.camera import orbit_cameras
    from inversion.framing import SYNTHETIC_HEADS
    from inversion.pretrained import LPIPS_WEIGHTS, MissingWeightsError, WeightFile, find_weights
    from inversion.preprocess import InversionTarget, PreprocessConfig, PreprocessResult
    from ui_state.inversion import OFFLINE_LABEL
    from viewer.features.inversion.settings import gui_wording

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-cache"))
    app, session = session
    session.target = InversionTarget(torch.rand(1, 3, 32, 32), torch.ones(1, 1, 32, 32),
                                     orbit_cameras(torch.tensor([0.0]), 0.0), ("x",))
    session.preprocessed = (PreprocessConfig(framing=SYNTHETIC_HEADS, resolution=32), PreprocessResult([]))
    panel = session.state.panel
    assert session.state.info.weights_note is None  # quick, a CPU's default: MSE + SSIM, nothing to download
    app.ui.request(ChoosePreset("standard"))  # LPIPS and ID
    pump(app, session, lambda: panel.preset == "standard", "the standard preset")
    panel.latent.steps = 2
    alex = LPIPS_WEIGHTS["alex"]
    # online: a note, not an error (nothing is downloaded before Start)
    pump(app, session, lambda: session.state.info.weights_note is not None, "the note before Start")
    note = session.state.info.weights_note
    assert note.level == "info" and "download" in note.text, note
    assert alex.name in note.text and alex.url in note.text and str(tmp_path / "empty-cache") in note.text, note
    assert not (tmp_path / "empty-cache").exists()
    # offline: an error before Start and under stage 1's buttons on Start
    panel.offline = True
    pump(app, session, lambda: session.state.info.weights_note.level == "error", "the offline warning")
    app.ui.request(StartLatentSearch())
    pump(app, session, lambda: "latent" in session.state.info.stage_notes, "the error under stage 1", 60.0)
    note = session.state.info.stage_notes["latent"]
    for text in (note.text, session.state.info.weights_note.text):
        assert alex.name in text and alex.url in text and str(tmp_path) in text, text
        assert "'weights folder'" in text and f"'{OFFLINE_LABEL}'" in text and "--" not in text, text
    assert note.level == "error" and not session.state.info.has_latent and not session.state.info.running
    wf = WeightFile("x.pth", "https://example.org/x.pth", "hub/checkpoints", None, "The LPIPS loss")
    with pytest.raises(MissingWeightsError) as err:  # the pipeline's own message, as the panel shows it
        find_weights(wf, tmp_path, allow_random=False, offline=True)
    shown = gui_wording(str(err.value))
    assert "--" not in shown and "'weights folder'" in shown and STAND_IN_LABEL in shown, shown
    assert f"'{OFFLINE_LABEL}' is ticked" in shown, shown
    panel.latent.lpips_weight = panel.latent.id_weight = 0.0  # MSE + SSIM only: stage 1 needs nothing
    panel.tuning.lpips_weight = panel.tuning.id_weight = 0.0
    pump(app, session, lambda: session.state.info.weights_note is None, "the warning gone")


def test_presets_fill_the_form_with_the_pipelines_settings(session):
    """The presets are inversion.config's: choosing one fills the whole form, and the settings the panel runs
    equal ``preset_settings`` (what ``python -m inversion --preset`` runs) except the GUI's own fields."""
    import dataclasses

    from inversion.config import PRESET_NAMES, PRESETS, preset_settings
    from inversion.framing import SYNTHETIC_HEADS
    from inversion.objective import LossNetworks
    from inversion.preprocess import PreprocessConfig
    from viewer.features.inversion.settings import latent_settings, preset_steps, tuning_settings

    app, session = session
    panel = session.state.panel
    steps = preset_steps()
    assert list(steps) == list(PRESET_NAMES) and steps["standard"] == (200, 100) == (
        PRESETS["standard"].latent_steps, PRESETS["standard"].tuning_steps)
    assert panel.preset == "quick" and (panel.latent.steps, panel.tuning.steps) == steps["quick"]  # a CPU
    pre = PreprocessConfig(framing=SYNTHETIC_HEADS, resolution=32)
    for name in PRESET_NAMES:
        app.ui.request(ChoosePreset(name))
        pump(app, session, lambda: panel.preset == name, f"the preset {name}")
        cli = preset_settings(name, resolution=32)
        for form, cfg in ((panel.latent, cli.latent), (panel.tuning, cli.tuning)):
            assert (form.steps, form.batch_size, form.lr) == (cfg.steps, cfg.batch_size, cfg.lr), name
            assert (form.id_weight, form.mse_weight, form.lpips_weight, form.ssim_weight) == (
                cfg.losses.id, cfg.losses.mse, cfg.losses.lpips, cfg.losses.ssim), name
        assert (panel.space, panel.refine_cameras, panel.locality_weight) == (
            cli.latent.space, cli.latent.refine_cameras, cli.tuning.locality_weight)
        gui = tuning_settings(panel, latent_settings(panel, pre))
        assert gui.networks == LossNetworks(weights_dir=None, allow_random=False, offline=False)
        assert gui.publish_every == panel.publish_every  # the GUI's fields: publishing and the loss networks
        assert dataclasses.replace(gui, networks=cli.networks, publish_every=cli.publish_every) == cli, name
    assert panel.space == "w" and panel.latent.ssim_weight > 0  # the pipeline's recipe: W with SSIM
    # a changed value: no preset any more; the settings the form does not show stay the preset's
    app.ui.request(ChoosePreset("quick"))
    pump(app, session, lambda: panel.preset == "quick", "quick")
    panel.latent.ssim_weight = 0.25
    pump(app, session, lambda: panel.preset == "", "custom values")
    gui = tuning_settings(panel, latent_settings(panel, pre))
    assert gui.latent.losses.ssim == 0.25 and gui.tuning.locality_every == PRESETS["quick"].locality_every == 2
    panel.offline = True
    assert latent_settings(panel, pre).networks.offline


def test_presets_and_the_loss_plot(session):
    from inversion.config import PRESETS
    from widgets.inversion import plot_series

    app, session = session
    app.ui.request(ChoosePreset("thorough"))
    pump(app, session, lambda: session.state.panel.latent.steps == 500, "the preset")
    assert session.state.panel.tuning.steps == 300 and session.state.panel.preset == "thorough"
    session.state.panel.latent.steps = 123  # typed by hand: no preset any more
    pump(app, session, lambda: session.state.panel.preset == "", "custom steps")
    from inversion.preprocess import PreprocessConfig
    from viewer.features.inversion.settings import preset_run_settings, speed_key

    assert session.speed.presets()[0].seconds is None  # nothing preprocessed, nothing measured

    def preprocessed(res: int) -> dict:
        """Pretend photos were aligned at ``res`` px; the speed keys of the presets there."""
        session.preprocessed = (PreprocessConfig(resolution=res), None)
        session.target = SimpleNamespace(resolution=res)
        return {n: speed_key(preset_run_settings(n, session.preprocessed[0])) for n in PRESETS}

    keys = preprocessed(32)  # every preset fits at 32 px
    session.speed._set({k: (0.5, 2.0) for k in keys.values()}, "test")
    pump(app, session, lambda: session.state.info.presets[0].seconds is not None, "estimates")
    assert [p.seconds for p in session.state.info.presets] == [
        p.latent_steps * 0.5 + p.tuning_steps * 2.0 for p in PRESETS.values()]
    assert session.speed.note == "stage 1: 0.50 s/step; stage 2: 2.00 s/step (test)"
    # at 256 px quick fits at 128 with 2 photos and MSE + SSIM: its own speed; standard and thorough share one
    keys = preprocessed(256)
    assert keys["quick"] != keys["standard"] == keys["thorough"] and keys["quick"][0] == 128
    session.speed._set({keys["quick"]: (0.5, 2.0), keys["standard"]: (1.0, 5.0)}, "test")
    quick, standard, thorough = session.speed.presets()
    assert quick.seconds == 60 * 0.5 + 30 * 2.0 and standard.seconds == 200 * 1.0 + 100 * 5.0
    assert thorough.seconds == 500 * 1.0 + 300 * 5.0
    assert session.speed.per_step == (1.0, 5.0)  # the form: thorough's settings with 123 stage-1 steps
    session.speed.started(preset_run_settings("quick", session.preprocessed[0]))  # a quick run: its own ETA
    assert session.speed.eta_s("latent", 10, 60) == 50 * 0.5
    session.speed.learn(0, SimpleNamespace(steps_done=60, seconds=60 * 0.4))  # ... and files its speed there
    assert session.speed.by_key[keys["quick"]] == (0.4, 2.0) and session.speed.running_key is None
    keys = preprocessed(32)
    session.speed._set({k: (0.5, 2.0) for k in keys.values()}, "test")
    assert [p.summary for p in session.state.info.presets] == [p.summary for p in PRESETS.values()]
    # a measurement that ends in the frame where the user typed a value keeps the value (it used to choose the
    # device's preset over it before the per-frame sync had seen the edit)
    session.speed._user_chose = False
    app.ui.request(ChoosePreset("quick"))
    pump(app, session, lambda: session.state.panel.preset == "quick", "quick")
    session.speed._user_chose = False  # the preset came from the device, not from the user
    session.state.panel.latent.ssim_weight = 0.25
    session.speed._set({k: (0.5, 2.0) for k in keys.values()}, "test")  # would choose "standard"
    assert session.state.panel.latent.ssim_weight == 0.25 and session.state.panel.preset == ""
    session.target, session.preprocessed, session.speed.by_key = None, None, {}  # as before
    # the plot: total, then weight * term for terms with a weight; LPIPS at weight 0 is not drawn
    history = {"total": np.array([1.2, 1.0]), "mse": np.array([10.0, 9.0]), "lpips": np.array([0.5, 0.4]),
               "id": np.array([0.2, 0.2]), "ssim": np.array([0.4, 0.3])}
    series = dict(plot_series(history, {"mse": 0.1, "ssim": 0.5, "lpips": 0.0, "id": 0.1}))
    assert list(series) == ["total", "mse x 0.1", "ssim x 0.5", "id x 0.1"]
    assert all((v <= series["total"] + 1e-12).all() for k, v in series.items())


# ---------------------------------------------------------------------------------------------- the window


_wait = waiter(240.0)


@pytest.mark.gui
@pytest.mark.slow
def test_inversion_panel_in_the_window(tmp_path):
    from imgui_bundle import hello_imgui, imgui
    from imgui_bundle.immapp import testing

    from viewer.app import ViewerApp
    from core.generator import PRESETS
    from core.latent import load_generator_source
    from viewer.config import ViewerConfig

    astronaut = pytest.importorskip("skimage.data").astronaut()
    photo, blank = tmp_path / "astronaut.jpg", tmp_path / "wall.png"
    Image.fromarray(astronaut).save(photo)
    Image.fromarray(np.full((160, 160, 3), 128, np.uint8)).save(blank)
    out = tmp_path / "results"
    app = ViewerApp(ViewerConfig(path="random:tiny", resolution=64, state_dir=tmp_path / "state", width=1100,
                                 height=900), device="cpu")
    session = app.inversion
    info = lambda: session.state.info  # noqa: E731
    texts = lambda: [m.text for m in info().messages]  # noqa: E731
    seen: dict = {}
    P = "Panels/Inversion"

    def form(ctx, stage: str, steps: int, every: int) -> None:
        fill_stage_form(ctx, session, P, stage, steps, every)

    def test(ctx: imgui.test_engine.TestContext) -> None:
        io = imgui.test_engine.get_io(hello_imgui.get_imgui_test_engine())  # slow machines: no 60 s watchdog
        io.config_watchdog_warning, io.config_watchdog_kill_test, io.config_watchdog_kill_app = 120, 900, 1200
        ui = app.ui
        for header in ("Load", "Camera", "Latent"):
            ctx.item_close(f"Panels/{header}")
        ctx.item_open(P)
        # 1. photos: a portrait, a photo without a face, a missing file
        ctx.item_input_value(f"{P}/photos", f"{photo}; {blank};{tmp_path / 'nope.jpg'}")
        ctx.item_click(f"{P}/Add photos")
        _wait(ctx, lambda: info().photos == ("astronaut.jpg", "wall.png"), "the inputs")
        assert f"{tmp_path / 'nope.jpg'}: no such file" in texts()
        # 2. preprocess: a thumbnail with a camera for the portrait, a message for the other
        ctx.item_click(f"{P}/Preprocess")
        _wait(ctx, lambda: info().has_target and not info().running, "preprocessing")
        (thumb,) = info().thumbs
        assert thumb.name == "astronaut.jpg" and thumb.texture and abs(thumb.yaw_deg) < 15, thumb
        assert any("wall.png" in t and "no face" in t for t in texts()), texts()
        # presets: a few throw-away steps measure this device, so each preset has an estimated time
        _wait(ctx, lambda: "s/step" in info().speed and all(x.seconds for x in info().presets), "the speed")
        ctx.item_click(f"{P}/standard##preset")
        assert (session.state.panel.latent.steps, session.state.panel.tuning.steps) == (200, 100)
        assert session.state.panel.latent.ssim_weight > 0 and session.state.panel.space == "w"  # the CLI's recipe
        ctx.item_check(f"{P}/{OFFLINE_LABEL}")
        assert session.state.panel.offline
        ctx.item_uncheck(f"{P}/{OFFLINE_LABEL}")
        ctx.item_input_value(f"{P}/stage1/SSIM weight", 0.25)
        assert session.state.panel.latent.ssim_weight == 0.25
        seen["estimates"] = [x.seconds for x in info().presets]
        # 3. stage 1 with stand-ins: the loss history grows, the view follows the latent, Stop ends it early
        ctx.item_check(f"{P}/{STAND_IN_LABEL}")
        assert session.state.panel.stand_in_losses
        form(ctx, "stage1", 400, 1)
        ctx.item_click(f"{P}/stage1/space/W")
        latent0 = ui.latent.latent
        ctx.item_click(f"{P}/stage1/Start")
        _wait(ctx, lambda: info().latent_history.get("total", np.zeros(0)).size >= 2
              and ui.latent.latent != latent0, "two stage-1 steps in the view")
        assert len(ui.latent.latent.latent) == 64 and ui.latent.latent.space == "w"  # one w (space W)
        ctx.item_click(f"{P}/stage1/Stop")
        _wait(ctx, lambda: info().has_latent and not info().running, "stage 1 to stop")
        seen["stage1_steps"] = info().latent_history["total"].size
        assert any(t.startswith("stage 1 stopped after") for t in texts()), texts()
        assert info().loss_sources.get("lpips") == "random stand-in"
        _wait(ctx, lambda: app.display.result is not None and app.display.result.params.latent == ui.latent.latent,
              "the view to show the final latent")
        assert app.display.result.error is None, app.display.result.error
        # 4. stage 2: the view switches to the tuned copy; the original generator is untouched
        state = lambda: app.worker.call(  # noqa: E731  (the worker's own generator, read on its thread)
            lambda gpu: {k: v.clone() for k, v in gpu.generator("random:tiny", "cpu").state_dict().items()}, 60)
        before = state()
        form(ctx, "stage2", 2, 1)
        ctx.item_click(f"{P}/stage2/Start")
        _wait(ctx, lambda: info().has_tuned and not info().running and app.display.result is not None
              and app.display.result.params.source == "memory:tuned", "the tuned generator in the view")
        assert info().tuned_active and ui.load.current == "memory:tuned" and app.display.result.error is None
        assert info().tuning_history["total"].size == 2 and "locality" in info().tuning_history
        after = state()
        seen["untouched"] = all(torch.equal(v, before[k]) for k, v in after.items())
        fresh = load_generator_source("random:tiny").state_dict()
        seen["same_as_fresh"] = all(torch.equal(v, fresh[k]) for k, v in after.items())
        # 5. save everything (stage 1 + tuned generator), then reset to the original model
        ctx.item_input_value(f"{P}/output folder", str(out))
        ctx.item_input_value(f"{P}/orbit video frames", 2)
        ctx.item_click(f"{P}/Save everything")
        _wait(ctx, lambda: info().saved_to and not info().running, "saving")
        ctx.item_click(f"{P}/Reset to original model")
        _wait(ctx, lambda: ui.load.current == "random:tiny" and app.display.result.params.source == "random:tiny",
              "the original model in the view")
        assert not info().tuned_active and app.display.result.error is None
        # 6. the webcam section on a machine without a camera
        ctx.item_open(f"{P}/Webcam")
        _wait(ctx, lambda: info().webcam_status.startswith("No camera found"), "the no-camera message", 60.0)
        ctx.item_close(f"{P}/Webcam")
        _wait(ctx, lambda: not app.jobs.running("inversion_webcam"), "the camera released", 30.0)

    testing.run(test_function=test, runner_params=app.runner_params(), add_ons_params=app.addons())

    assert seen["untouched"] and seen["same_as_fresh"], "tuning changed the original generator"
    assert 2 <= seen["stage1_steps"] < 400
    assert seen["estimates"][0] < seen["estimates"][1] < seen["estimates"][2], seen["estimates"]
    for name in ("aligned/00_astronaut.png", "cameras.json", "pivot.npz", "generator_tuned.safetensors", "head.ply",
                 "renders/00_astronaut_stage1.png", "renders/00_astronaut_stage2.png", "report.json"):
        assert (out / name).is_file(), name
    from inversion.pipeline import REPORT_FORMAT

    report = json.loads((out / "report.json").read_text())  # the pipeline's one layout, as the CLI writes it
    assert report["format"] == REPORT_FORMAT and report["saved_by"] == "splathead studio viewer"
    assert report["photos"] == ["astronaut.jpg"] and len(report["stage1"]["history"]["total"]) == \
        seen["stage1_steps"]
    assert report["stage1"]["cancelled"] and report["stage2"]["steps_done"] == 2
    assert report["timings"]["stage1"] > 0 and report["timings"]["stage2"] > 0
    assert list((out).glob("orbit.*")), "no orbit video"
    with np.load(out / "pivot.npz") as f:
        assert f["ws"].shape == (1, PRESETS["tiny"].num_ws, 64) and str(f["space"]) == "w"  # one w per block
