"""The viewer's background jobs and the features behind its panels, without a window: a real render worker, a
stand-in for the picture (no GL), and the app's action table."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import get_args

import numpy as np
import pytest
import torch

from ui_state.actions import (
    Action, ClearEdits, DeleteLatent, InterpolateLatents, LoadLatent, PushEdit, RedoEdit, RefreshInspect,
    RestoreLatent, SaveCurrentLatent, SaveImage, SaveLatent, SavePly, UndoEdit,
)
from ui_state.render import EditSpec, RenderParams
from ui_state.ui import UiState, render_params
from viewer.features.base import Studio
from viewer.features.exports import free_path, thumbnail
from viewer.features.sources import check_source, read_recent, recent_file, write_recent
from viewer.jobs import JobRunner
from viewer.viewport.worker import RenderWorker

ROOT = Path(__file__).resolve().parents[2]


def wait_done(jobs: JobRunner, name: str):
    assert jobs.wait(name, 60.0)
    return jobs.poll()[name]


class FakeTexture:
    def __init__(self) -> None:
        self.texture_id, self.size = 1, (0, 0)

    def upload(self, image) -> None:
        self.size = image.shape[1], image.shape[0]

    def release(self) -> None:
        self.texture_id = 0


class Picture:
    """The display's read side, fed by hand with the worker's results."""

    def __init__(self) -> None:
        self.result = None
        self.image = None

    def current_image(self):
        return self.image

    def new_texture(self):
        return FakeTexture()

    def refresh(self) -> None:
        pass


@pytest.fixture
def studio():
    worker = RenderWorker()
    ui = UiState()
    ui.load.current = "random:tiny"
    s = Studio(ui, JobRunner(worker), worker, Picture(), emit=lambda event: None)
    yield s
    s.jobs.shutdown(2.0)
    worker.close()


def show(studio: Studio, params: RenderParams | None = None):
    """Render the UI's request on the worker and hand the result to the picture, as the display does."""
    params = params or render_params(studio.ui, output="scene")
    r = studio.worker.wait(studio.worker.submit(params), 120)
    assert r is not None and r.error is None, r.error if r else "timeout"
    studio.picture.result = r
    studio.ui.info.current_ws = r.ws
    return r


def run(handlers: dict, action) -> None:
    handlers[type(action)](action)


def test_job_progress_cancel_and_errors_as_data():
    jobs = JobRunner()
    started = threading.Event()

    def slow(ctx):
        started.set()
        for i in range(1000):
            ctx.progress(i / 1000, f"step {i}")
            ctx.check()
            time.sleep(0.005)
        return "never"

    assert jobs.start("video", slow)
    started.wait(5)
    assert not jobs.start("video", slow), "a second job with the same name must be refused while running"
    status = jobs.poll()["video"]
    assert status.running and 0.0 <= status.progress < 1.0
    jobs.cancel("video")
    status = wait_done(jobs, "video")
    assert not status.running and status.error == "cancelled"

    got = []
    jobs.start("inspect", lambda ctx: 1 / 0, on_done=got.append)
    status = wait_done(jobs, "inspect")
    assert "ZeroDivisionError" in status.error and got == []
    jobs.start("match", lambda ctx: 42, on_done=got.append)
    status = wait_done(jobs, "match")
    assert status.error is None and status.progress == 1.0 and got == [42]
    assert jobs.shutdown(1.0) == []
    with pytest.raises(RuntimeError, match="render worker"):
        jobs.start_on_worker("pca", lambda ctx, gpu: None)


def test_every_action_has_exactly_one_handler(tmp_path):
    """The app's table (built from its features) covers the whole Action union, once each."""
    import viewer.app as app_module

    from viewer.config import ViewerConfig

    app = app_module.ViewerApp(ViewerConfig(path="random:tiny", state_dir=tmp_path), "cpu")  # no window opened
    try:
        kinds = set(get_args(Action))
        assert set(app.handlers) == kinds, (sorted(k.__name__ for k in kinds - set(app.handlers)),
                                            sorted(k.__name__ for k in set(app.handlers) - kinds))
        with pytest.raises(ValueError, match="two handlers"):
            app_module.action_table(app.features + [app.edits])
    finally:
        app.jobs.shutdown(1.0)
        app.worker.close()


def test_free_path_never_overwrites(tmp_path):
    p = tmp_path / "head.ply"
    assert free_path(p) == p
    p.write_bytes(b"x")
    assert free_path(p) == tmp_path / "head_2.ply"
    (tmp_path / "head_2.ply").write_bytes(b"x")
    assert free_path(p) == tmp_path / "head_3.ply"
    q = tmp_path / "a.latents.npz"
    q.write_bytes(b"x")
    assert free_path(q) == tmp_path / "a_2.latents.npz"


def test_edit_history_goes_through_core(studio):
    from viewer.features.edits import Edits

    edits = Edits(studio)
    h = edits.handlers()
    run(h, PushEdit(EditSpec("opacity_threshold", (("min_opacity", 0.5),))))
    run(h, PushEdit(EditSpec("opacity_threshold", (("min_opacity", 7.0),))))  # out of range: refused
    assert len(studio.ui.info.edits.applied) == 1 and studio.ui.info.messages[-1].level == "error"
    edited = show(studio)
    run(h, UndoEdit())
    assert studio.ui.info.edits.applied == () and len(studio.ui.info.edits.redo) == 1
    base = show(studio)
    assert 0 < edited.stats.gaussians < base.stats.gaussians
    run(h, RedoEdit())
    run(h, ClearEdits())
    assert studio.ui.info.edits.applied == () and studio.ui.info.edits.redo == ()


def test_saved_latents_are_core_latent_edits(studio, tmp_path):
    """Save / restore / interpolate / delete in memory, and the one file format on disk."""
    from core.editing import load_library
    from viewer.features.latents import Latents

    latents = Latents(studio)
    h = latents.handlers()
    studio.picture.image = np.zeros((32, 32, 3), np.uint8)
    studio.ui.latent.latent = type(studio.ui.latent.latent)(seed=3)
    a = show(studio)
    run(h, SaveCurrentLatent("a"))
    studio.ui.latent.latent = type(studio.ui.latent.latent)(seed=9)
    b = show(studio)
    run(h, SaveCurrentLatent("b"))
    assert [e.name for e in studio.ui.info.saved_latents] == ["a", "b"]
    assert all(e.texture for e in studio.ui.info.saved_latents)
    run(h, RestoreLatent("a"))
    restored = show(studio)
    np.testing.assert_array_equal(restored.ws, a.ws)
    run(h, InterpolateLatents("a", "b", 0.25))
    mid = show(studio)
    np.testing.assert_allclose(mid.ws, 0.75 * a.ws + 0.25 * b.ws, atol=1e-6)
    run(h, DeleteLatent("a"))
    assert [e.name for e in studio.ui.info.saved_latents] == ["b"]
    # the file: one saved-latents library, read back into the list
    run(h, SaveLatent(str(tmp_path / "head.latents.npz")))
    assert wait_done(studio.jobs, "save_latent").error is None
    lib = load_library(tmp_path / "head.latents.npz")
    np.testing.assert_array_equal(lib.entries[0].edit.base.numpy(), mid.base_ws)
    run(h, LoadLatent(str(tmp_path / "head.latents.npz")))
    assert wait_done(studio.jobs, "load_latent").error is None
    assert len(studio.ui.info.saved_latents) == 2 and studio.ui.latent.latent.space == "w"
    (tmp_path / "junk.npz").write_bytes(b"not a zip file at all")
    run(h, LoadLatent(str(tmp_path / "junk.npz")))
    assert "not a readable latent or saved-latents file" in wait_done(studio.jobs, "load_latent").error
    latents.release()


def test_save_ply_and_image_and_inspect(studio, tmp_path):
    from PIL import Image

    from core.ply import read_ply
    from viewer.features.exports import Exports
    from viewer.features.inspect import Inspect

    exports, inspect = Exports(studio), Inspect(studio)
    h = {**exports.handlers(), **inspect.handlers()}
    run(h, SavePly(str(tmp_path / "none.ply")))
    assert "nothing to save" in studio.ui.info.messages[-1].text
    r = show(studio)
    run(h, SavePly(str(tmp_path / "out" / "h.ply")))
    assert wait_done(studio.jobs, "save_ply").error is None
    back = read_ply(tmp_path / "out" / "h.ply")
    torch.testing.assert_close(back.means, r.scene.means)
    img = np.random.default_rng(1).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    studio.picture.image = img
    run(h, SaveImage(str(tmp_path / "out" / "v.png")))
    assert wait_done(studio.jobs, "save_image").error is None
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / "v.png")), img)
    run(h, RefreshInspect())
    wait_done(studio.jobs, "inspect")
    info = studio.ui.info.inspect
    assert info is not None and info.count == r.stats.gaussians
    labels = [label for label, _ in info.histograms]
    assert labels[:2] == ["scale (log10)", "opacity"] and len(labels) == 8
    opacity = dict(info.histograms)["opacity"]
    assert opacity.counts.sum() == r.stats.gaussians and opacity.min >= 0 and opacity.max <= 1


def test_match_runs_on_the_worker_from_the_base_latent(studio):
    """Match starts from the result's base latent (no offset subtracted), keeps the other sliders, and its
    answer is an ordinary slider setting the next request carries."""
    from core.editing import Box, Measurement, fit_measured_directions, measure_ws, pca_direction_set
    from core.editing.pca import sample_ws
    from core.latent import load_generator_source
    from ui_state.actions import MatchTarget
    from viewer.features.sliders import Sliders

    G = load_generator_source("random:tiny")
    dirs = pca_direction_set(G, "0" * 64, 300, 2)
    m = Measurement("whole", "width", Box((0.0, 0.0, 0.0), (0.5, 0.5, 0.5)))
    dirs = dirs.with_measurement(m, fit_measured_directions(G, m, dirs, sample_ws(G, 24, seed=3)))
    sliders = Sliders(studio)
    sliders._source = "random:tiny"
    sliders._set(dirs, "test directions")
    studio.ui.latent.latent = type(studio.ui.latent.latent)(seed=5)
    studio.ui.latent.sliders = {"PCA1": 1.0}
    before = show(studio)
    target = measure_ws(G, torch.from_numpy(before.ws)[None], m)[0] * 0.9
    sliders.handlers()[MatchTarget](MatchTarget("whole", tuple(float(v) for v in target)))
    assert wait_done(studio.jobs, "match").error is None
    assert studio.ui.latent.sliders["PCA1"] == 1.0 and studio.ui.latent.sliders.get("whole", 0.0) != 0.0
    after = show(studio)
    np.testing.assert_array_equal(after.base_ws, before.base_ws)  # the base never moves
    err = lambda r: abs(measure_ws(G, torch.from_numpy(r.ws)[None], m)[0, 0] - target[0])  # noqa: E731
    assert err(after) < err(before), (err(before), err(after))


def test_recent_list_survives_corruption(tmp_path):
    f = recent_file(tmp_path)
    assert read_recent(f) == []
    write_recent(f, ["a.pkl", "b.ply"])
    assert read_recent(f) == ["a.pkl", "b.ply"]
    f.write_text("{not json")
    assert read_recent(f) == []
    f.write_text('{"a": 1}')
    assert read_recent(f) == []


def test_check_source(tmp_path):
    assert check_source("random:tiny") == ""
    assert "unknown built-in" in check_source("random:huge")
    assert "file not found" in check_source(str(tmp_path / "x.pkl"))
    assert "folder" in check_source(str(tmp_path))


def test_thumbnail_is_square_and_small():
    img = np.arange(100 * 60 * 3, dtype=np.uint32).reshape(60, 100, 3).astype(np.uint8)
    t = thumbnail(img, 16)
    assert t.shape == (16, 16, 3) and t.flags.c_contiguous


def test_run_viewer_without_display_fails_clearly():
    if sys.platform != "linux":
        pytest.skip("the no-display check is Linux-only")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    r = subprocess.run([sys.executable, "run_viewer.py"], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2
    assert "no display" in r.stderr and "xvfb-run" in r.stderr


def test_performance_plot_axis_ignores_one_slow_frame():
    """One 30 s frame (a model load) among 15 ms frames: the y-axis stays near the frames, the peak is reported."""
    from widgets.performance import RECENT, robust_top

    frames = np.full(RECENT, 15.0, np.float32)
    frames[40] = 30000.0
    top, peak = robust_top([frames, np.array([120.0, 130.0], np.float32)])
    assert 15.0 < top < 200.0 and peak == 30000.0
    assert robust_top([]) == (10.0, 0.0) and robust_top([np.array([np.nan], np.float32)])[0] == 10.0
