"""The Training panel in the real window (ImGui test engine under Xvfb): start a tiny CPU run from the panel,
watch its progress, load its snapshot, stop it cleanly, resume it from the panel to the end, and see a failing
run's error. Plus the run-directory reader on its own."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ui_state.training import TrainingForm, TrainingLaunch
from viewer.features.training.runs import launch_command, read_run

RES = 32
TINY = ("--resolution 32 --num-views 2 --d-channel-base 512 --d-channel-max 32 --workers 0 --r1-interval 2 "
        "--knn-k 8")


def make_dataset(root: Path, n: int = 12) -> Path:
    from core.camera import orbit_cameras

    root.mkdir(parents=True)
    g = np.random.default_rng(0)
    labels = orbit_cameras(torch.linspace(-0.6, 0.6, n), 0.1).to_label()
    entries = []
    for i in range(n):
        img = np.full((RES, RES, 3), 255, np.uint8)
        y, x = np.mgrid[:RES, :RES]
        img[(x - 16) ** 2 + (y - 16) ** 2 < 60 + 5 * i] = g.integers(0, 255, 3)
        Image.fromarray(img).save(root / f"{i:05d}.png")
        entries.append([f"{i:05d}.png", labels[i].tolist()])
    (root / "dataset.json").write_text(json.dumps({"labels": entries}))
    return root


def test_launch_is_a_serialised_train_options():
    """The form's values reach python -m training as TrainOptions fields through --options-json, never as
    hand-typed flags; every name the viewer writes is a TrainOptions field."""
    import dataclasses

    from training.options import TrainOptions

    form = TrainingForm(data="d", batch=8, batch_gpu=4, kimg=2, resume="", extra="--gamma 0.3")
    launch = TrainingLaunch.from_form(form, extra=("--gamma", "0.3"))
    options = launch.options()
    assert set(options) <= {f.name for f in dataclasses.fields(TrainOptions)}
    assert {f.name for f in dataclasses.fields(TrainingForm)} - {"gpus", "extra", "attach_dir", "follow"} \
        <= {f.name for f in dataclasses.fields(TrainOptions)}
    opts = TrainOptions.from_dict(options)
    assert (opts.data, opts.batch, opts.batch_gpu, opts.kimg, opts.preset, opts.resume) == ("d", 8, 4, 2.0, "cpu128",
                                                                                              None)
    assert opts.tick_kimg == 1.0 and opts.gamma == TrainOptions(data="x").gamma  # unset fields: the CLI's defaults
    cmd = launch_command(launch, "opts.json", python="python")
    assert cmd == ["python", "-m", "training", "--options-json", "opts.json", "--gamma", "0.3"]
    two = launch_command(TrainingLaunch.from_form(TrainingForm(data="d", gpus=2, batch=16, batch_gpu=8)), "o.json", "python")
    assert two[1:3] == ["-m", "torch.distributed.run"] and "--nproc_per_node" in two and two[-2:] == ["--options-json",
                                                                                                      "o.json"]
    with pytest.raises(ValueError, match="multiple"):
        TrainingLaunch.from_form(TrainingForm(data="d", gpus=2, batch=12, batch_gpu=8))
    with pytest.raises(ValueError, match="dataset"):
        TrainingLaunch.from_form(TrainingForm(data=" "))
    # the form's defaults are TrainOptions' (the viewer cannot import training), but for the panel's own choices
    defaults = TrainOptions(data="x")
    own = {"data", "resume", "preset", "kimg"}  # a desktop run: cpu128 for 1000 kimg
    shared = {f.name for f in dataclasses.fields(TrainingForm)} & {f.name for f in dataclasses.fields(TrainOptions)}
    assert {n: getattr(TrainingForm(), n) for n in shared - own} == {n: getattr(defaults, n) for n in shared - own}


def test_options_json_file_is_what_training_runs(tmp_path):
    from training.__main__ import resolve_defaults

    f = tmp_path / "launch.json"
    f.write_text(json.dumps(TrainingLaunch.from_form(TrainingForm(data="d", preset="tiny", kimg=3)).options()))
    defaults, argv, options_file = resolve_defaults(["--options-json", str(f), "--gamma", "0.3"])
    assert argv == ["--gamma", "0.3"] and options_file == str(f)
    assert (defaults.data, defaults.preset, defaults.kimg) == ("d", "tiny", 3.0)
    f.write_text(json.dumps({"data": "d", "no_such_option": 1}))
    with pytest.raises(ValueError, match="no_such_option"):
        resolve_defaults(["--options-json", str(f)])


def test_read_run_follows_status_json_and_tolerates_partial_files(tmp_path):
    import os

    from core.runs import RunStatus, write_status

    run = tmp_path / "00000-tiny"
    run.mkdir()
    (run / "options.json").write_text(json.dumps({"options": {"kimg": 2.0}}))
    (run / "stats.jsonl").write_text('{"kimg": 0.5, "sec_per_kimg": 10, "eta_s": 15, "G_adv": 1.0, "D_r1": null}\n'
                                     '{"kimg": 1.0, "G_a')  # the second line is being written
    (run / "log.txt").write_text("x whatever the log says\n")
    (run / "network-snapshot-000000.004.safetensors").write_bytes(b"")
    (run / "network-snapshot-000001.safetensors.index.json").write_bytes(b"")
    (run / "network-snapshot-000001-00001-of-00002.safetensors").write_bytes(b"")  # a part, not a snapshot
    (run / "network-snapshot-000000.pkl").write_bytes(b"")  # a run from before safetensors
    v = read_run(run)
    assert v.status == "unknown" and v.kimg == 0.5 and v.total_kimg == 2.0  # no status.json: from the files
    status = RunStatus.new(total_kimg=2.0, world_size=1, kimg=0.75)
    write_status(run, status)
    v = read_run(run, process_alive=True)
    assert (v.status, v.kimg, v.total_kimg, v.eta_s) == ("running", 0.75, 2.0, 15.0)
    assert [p.name for p in v.snapshots] == ["network-snapshot-000000.pkl", "network-snapshot-000000.004.safetensors",
                                             "network-snapshot-000001.safetensors.index.json"]
    assert np.isnan(v.series["D_r1"][0]) and v.series["G_adv"][0] == 1.0
    assert read_run(run).status == "running"  # attached: this very process is the run's pid
    assert read_run(run, process_alive=False).status == "failed"  # the child died without a final status
    write_status(run, dataclasses.replace(status, pid=2**22 + 12345))  # no such process on this host
    assert read_run(run).status == "failed"
    write_status(run, dataclasses.replace(status, state="stopped", stop_reason="STOP file"))
    assert read_run(run, process_alive=False).status == "stopped"
    write_status(run, dataclasses.replace(status, state="failed", error="non-finite loss"))
    (run / "error.txt").write_text("non-finite loss at step 3\n")
    v = read_run(run, process_alive=False)
    assert v.status == "failed" and "step 3" in v.error
    with pytest.raises(FileNotFoundError):
        read_run(tmp_path / "nope")
    assert os.getpid() == status.pid


@pytest.mark.gui
@pytest.mark.slow
def test_training_panel_start_follow_stop_resume(tmp_path):
    from imgui_bundle import hello_imgui, imgui
    from imgui_bundle.immapp import testing

    from viewer.app import ViewerApp
    from viewer.window.quit_guard import QUIT_POPUP
    from viewer.config import ViewerConfig

    data = make_dataset(tmp_path / "data")
    (tmp_path / "empty").mkdir()
    out = tmp_path / "runs"
    app = ViewerApp(ViewerConfig(path="random:tiny", resolution=64, state_dir=tmp_path / "state",
                                 width=1100, height=900), device="cpu")
    seen: dict = {}

    def wait(ctx, cond, what, timeout=240.0):
        deadline = time.monotonic() + timeout
        while not cond():
            assert time.monotonic() < deadline, (f"timed out waiting for {what}: {app.ui.info.training.status} "
                                                 f"{app.ui.load.current} {app.ui.info.messages[-3:]} "
                                                 f"{app.display.result.error if app.display.result else None}")
            ctx.yield_()

    def fill(ctx, kimg: float, resume: str = "", dataset: Path = data) -> None:
        ctx.item_input_value("Panels/Training/New run/dataset", str(dataset))
        ctx.item_input_value("Panels/Training/New run/output folder", str(out))
        from core.generator import PRESETS

        assert app.ui.info.generator_presets == tuple(PRESETS)  # every preset of core, none typed twice
        ctx.item_click("Panels/Training/New run/preset/cpu256")
        assert app.ui.training.preset == "cpu256"
        ctx.item_click("Panels/Training/New run/preset/tiny")
        ctx.item_click("Panels/Training/New run/device/cpu")
        ctx.item_input_value("Panels/Training/New run/batch", 4)
        ctx.item_input_value("Panels/Training/New run/batch per GPU", 2)
        ctx.item_input_value("Panels/Training/New run/kimg", kimg)
        ctx.item_input_value("Panels/Training/New run/snapshot every (kimg)", 0.008)
        ctx.item_input_value("Panels/Training/New run/grid every (kimg)", 0.008)
        ctx.item_input_value("Panels/Training/New run/resume from", resume)
        ctx.item_input_value("Panels/Training/New run/more options", TINY)

    def test(ctx: imgui.test_engine.TestContext) -> None:
        io = imgui.test_engine.get_io(hello_imgui.get_imgui_test_engine())
        io.config_watchdog_warning, io.config_watchdog_kill_test, io.config_watchdog_kill_app = 120, 1200, 1500
        info = lambda: app.ui.info.training  # noqa: E731
        for header in ("Load", "Camera", "Latent"):  # keep the Training panel near the top
            ctx.item_close(f"Panels/{header}")
        ctx.item_open("Panels/Training")
        ctx.item_open("Panels/Training/New run")
        # A run that fails at start (no dataset.json) shows its error in the panel.
        fill(ctx, 0.064, dataset=tmp_path / "empty")
        ctx.item_click("Panels/Training/New run/Start training")
        wait(ctx, lambda: info().status == "failed", "the failing run")
        seen["failure"] = info().error
        # A real tiny run: progress, a grid, a snapshot loaded into the viewer.
        fill(ctx, 2.0)
        ctx.item_click("Panels/Training/New run/Start training")
        wait(ctx, lambda: info().status == "running" and info().kimg > 0 and info().grid_texture
             and info().snapshots, "progress, a grid and a snapshot")
        seen["run_dir"] = info().run_dir
        ctx.item_click("Panels/Training/Load latest snapshot")
        wait(ctx, lambda: app.ui.load.current.endswith(".safetensors") and app.display.result is not None
             and app.display.result.params.source == app.ui.load.current, "the snapshot in the viewer")
        assert app.display.result.error is None, app.display.result.error
        assert app.ui.info.source_kind == "generator"
        # Closing the window while it trains asks first; Cancel keeps everything running.
        import ctypes

        import glfw

        glfw.set_window_should_close(ctypes.cast(hello_imgui.get_glfw_window_address(),
                                                 ctypes.POINTER(glfw._GLFWwindow)), True)
        for _ in range(3):
            ctx.yield_()
        assert not hello_imgui.get_runner_params().app_shall_exit and app.training.child_running
        assert ctx.item_exists(f"//{QUIT_POPUP}/Keep it running and quit")
        ctx.item_click(f"//{QUIT_POPUP}/Cancel")
        for _ in range(3):
            ctx.yield_()
        assert not ctx.item_exists(f"//{QUIT_POPUP}/Cancel"), "the question came back after Cancel"
        # Stop: the run writes a snapshot and exits cleanly.
        ctx.item_click("Panels/Training/Stop (save snapshot)")
        wait(ctx, lambda: info().status == "stopped" and not app.training.child_running, "the clean stop")
        seen["stopped_at"] = info().kimg
        seen["returncode"] = app.training.follower.process.returncode
        # Resume from the panel and run to the end.
        fill(ctx, seen["stopped_at"] + 0.008, resume=seen["run_dir"])
        ctx.item_click("Panels/Training/New run/Start training")
        wait(ctx, lambda: info().status == "finished", "the resumed run to finish", timeout=900.0)
        seen["final_kimg"] = info().kimg

    try:
        testing.run(test_function=test, runner_params=app.runner_params(), add_ons_params=app.addons())
    finally:  # never leave a training process behind, whatever failed
        if app.training.follower.process is not None and app.training.follower.process.running:
            app.training.follower.process.terminate()
            app.training.follower.process.wait(30)

    assert "dataset" in seen["failure"].lower() or "json" in seen["failure"].lower(), seen["failure"]
    assert seen["returncode"] == 0
    run = Path(seen["run_dir"])
    log = (run / "log.txt").read_text()
    assert "stopped on request (STOP file)" in log and "resuming" in log and "done:" in log
    assert not (run / "STOP").exists()
    assert seen["final_kimg"] >= seen["stopped_at"] + 0.008 - 1e-6
    assert len(list(run.glob("network-snapshot-*.safetensors"))) >= 2 and (run / "options.json").exists()
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "finished" and status["last_snapshot"].endswith(".safetensors")
