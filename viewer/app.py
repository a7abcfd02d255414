"""The studio window: panels on the left, the picture on the right, everything slow off the GUI thread.

:class:`ViewerApp` builds the pieces (docs/architecture.md) and runs one frame (GUI thread, never waits on a
model):

1. the display takes the render worker's newest result; the jobs report; every feature polls;
2. the panels (``widgets/``) draw ``UiState`` and queue actions;
3. mouse and keys on the picture move the camera; the display submits the frozen ``RenderParams`` when it
   changed (latest wins) and draws the image or the OpenGL splats, then the overlays;
4. the queued actions go to their handlers: one per action type, from the features' ``handlers()``.

Errors from the worker and from jobs arrive as data and are drawn over the image; nothing a user does raises out
of :meth:`ViewerApp.gui`.
"""

from __future__ import annotations

import os
import traceback
from typing import Any, Callable, Iterable, Mapping, get_args

import numpy as np
from imgui_bundle import hello_imgui, imgui, immapp

from ui_state.actions import Action, CancelJob
from ui_state.ui import UiState
from viewer.config import APP_NAME, ViewerConfig, default_source
from viewer.events import SourceChanged
from viewer.features.base import Feature, Studio
from viewer.features.edits import Edits
from viewer.features.exports import Exports
from viewer.features.inspect import Inspect
from viewer.features.inversion.feature import Inversion
from viewer.features.latents import Latents
from viewer.features.sliders import Sliders
from viewer.features.sources import Sources, recent_file
from viewer.features.training import Training
from viewer.features.video import Video
from viewer.jobs import JobRunner
from viewer.texture import clear_gl_errors
from viewer.viewport.display import Display
from viewer.viewport.input import CameraInput
from viewer.viewport.overlays import draw_overlays
from viewer.viewport.worker import RenderWorker
from viewer.window.dialogs import FileDrops
from viewer.window.pacing import FramePacer
from viewer.window.panels import draw_panels
from viewer.window.quit_guard import QuitGuard
from viewer.window.scripted import ScriptedRun

PANEL_WIDTH = 460.0
MAX_ACTION_ROUNDS = 8  # actions queued by handlers run in the same frame, up to this many rounds
ACTION_TYPES: tuple[type, ...] = get_args(Action)


def action_table(features: Iterable[Any], extra: Mapping[type, Callable[[Any], None]] = ()) -> dict[type, Callable]:
    """One handler per action type from the features' ``handlers()``; ``ValueError`` when two claim a type."""
    table: dict[type, Callable] = dict(extra)
    for feature in features:
        for kind, handler in feature.handlers().items():
            if kind in table:
                raise ValueError(f"two handlers for {kind.__name__}")
            table[kind] = handler
    return table


class ViewerApp:
    """State and per-frame logic of the window (see the module docstring)."""

    def __init__(self, cfg: ViewerConfig, device: str = "cpu") -> None:
        from core.generator import PRESETS as GENERATOR_PRESETS
        from core.latent import RANDOM_SOURCES
        from viewer.features.video import video_defaults
        from viewer.config import torch_threads

        threads = torch_threads(cfg.torch_threads, device)
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        self.cfg = cfg
        ui = self.ui = UiState(device=device)
        ui.render.width = ui.render.height = cfg.resolution
        ui.render.display = cfg.display
        ui.info.device = device
        ui.info.default_source = default_source()
        ui.info.builtin_sources = RANDOM_SOURCES
        ui.info.generator_presets = tuple(GENERATOR_PRESETS)  # the Training panel's choices
        ui.video.request = video_defaults(ui.video.request.path)  # the Video panel starts from core's defaults
        self.pacer = FramePacer(cfg.fps_max, ScriptedRun.idle_allowed(cfg))
        self.worker = RenderWorker(wake=self.pacer.wake)
        self.jobs = JobRunner(self.worker, wake=self.pacer.wake)
        self.display = Display(ui, self.worker)
        studio = Studio(ui, self.jobs, self.worker, self.display, self.emit)
        self.drops = FileDrops(ui)
        self.sources = Sources(studio, cfg.path or ui.info.default_source, recent_file(cfg.state_dir))
        self.edits = Edits(studio)
        self.sliders = Sliders(studio)
        self.training = Training(studio)
        self.inversion = Inversion(studio)
        self.features: list[Feature] = [self.drops, self.sources, Latents(studio), self.sliders, self.edits,
                                         Exports(studio), Inspect(studio), Video(studio), self.training,
                                         self.inversion]
        self.handlers = action_table(self.features, {CancelJob: lambda a: self.jobs.cancel(a.name)})
        self.quit_guard = QuitGuard(self.training, self.drops)
        self.scripted = ScriptedRun(cfg, ui, self.display, PANEL_WIDTH)
        self._capture_requested = False
        self.captured_view: np.ndarray | None = None
        self.camera_input = CameraInput()

    def emit(self, event: SourceChanged) -> None:
        """Tell every feature (GUI thread)."""
        for f in self.features:
            f.source_changed(event)

    # ------------------------------------------------------------------ hello_imgui callbacks

    def post_init(self) -> None:
        """GL context is current: create the GL objects, hook drag and drop, list the edit ops."""
        self.display.init_gl()
        self.edits.load_catalog()
        self.drops.hook_drops()
        self.pacer.started()

    def before_exit(self) -> None:
        self.pacer.stopped()
        self.quit_guard.goodbye()
        for f in self.features:
            f.release()
        left = self.jobs.shutdown(timeout=5.0)
        if left:
            print(f"{APP_NAME}: background jobs still running at exit: {', '.join(left)}")
        self.worker.close(timeout=5.0)
        self.display.release()
        if self.cfg.stats_json is not None:
            self.scripted.write_stats(self.cfg.stats_json)

    def runner_params(self) -> hello_imgui.RunnerParams:
        p = hello_imgui.RunnerParams()
        p.app_window_params.window_title = APP_NAME
        p.app_window_params.window_geometry.size = (self.cfg.width, self.cfg.height)
        p.imgui_window_params.default_imgui_window_type = hello_imgui.DefaultImGuiWindowType.no_default_window
        p.callbacks.show_gui = self.gui
        p.callbacks.post_init = self.post_init
        p.callbacks.before_exit = self.before_exit
        p.ini_disable = True
        self.pacer.configure(p)
        return p

    def addons(self) -> immapp.AddOnsParams:
        return immapp.AddOnsParams(with_implot=True)

    # ------------------------------------------------------------------ the frame

    def gui(self) -> None:
        state = imgui.internal.ErrorRecoveryState()
        imgui.internal.error_recovery_store_state(state)
        try:
            self._frame()
        except Exception:  # noqa: BLE001 - a bug in a panel must not close the studio
            self.ui.info.error = "internal error in the viewer (please report):\n" + traceback.format_exc(limit=8)
            io = imgui.get_io()
            asserts, io.config_error_recovery_enable_assert = io.config_error_recovery_enable_assert, False
            try:  # close what the failed frame left open (quietly: the error is already on screen)
                imgui.internal.error_recovery_try_to_recover_state(state)
            finally:
                io.config_error_recovery_enable_assert = asserts

    def _frame(self) -> None:
        clear_gl_errors()  # one left by C++ widgets' own GL calls (ImFileDialog) must not fail our next GL call
        self.scripted.start_of_frame()
        self.quit_guard.frame()
        info = self.ui.info
        if not hello_imgui.get_runner_params().fps_idling.is_idling:  # idle frames wait for events on purpose
            info.gui_ms.append(1000.0 * imgui.get_io().delta_time)
        self.display.take_result()
        info.jobs = self.jobs.poll()
        for f in self.features:
            f.poll()
        vp = imgui.get_main_viewport()
        panel_w = min(PANEL_WIDTH, 0.45 * vp.work_size.x)
        wf = imgui.WindowFlags_
        imgui.set_next_window_pos(vp.work_pos)
        imgui.set_next_window_size(imgui.ImVec2(panel_w, vp.work_size.y))
        imgui.begin("Panels", None, wf.no_move | wf.no_resize | wf.no_collapse | wf.no_saved_settings
                    | wf.no_title_bar | wf.no_background)  # the window's clear colour (viewer/window/pacing.py)
        imgui.text(APP_NAME)
        draw_panels(self.ui)
        imgui.end()
        imgui.set_next_window_pos(imgui.ImVec2(vp.work_pos.x + panel_w, vp.work_pos.y))
        imgui.set_next_window_size(imgui.ImVec2(vp.work_size.x - panel_w, vp.work_size.y))
        imgui.push_style_var(imgui.StyleVar_.window_padding, imgui.ImVec2(0, 0))
        imgui.begin("Viewport", None, wf.no_decoration | wf.no_move | wf.no_saved_settings
                    | wf.no_bring_to_front_on_focus | wf.no_scroll_with_mouse | wf.no_background)
        self._viewport()
        imgui.end()
        imgui.pop_style_var()
        self.handle_actions()
        if self._capture_requested:
            self._capture_requested = False
            self.captured_view = self.display.current_image()
        self.scripted.end_of_frame()
        self.pacer.frame(live=info.dragging, jobs_running=self.jobs.any_running,
                         following=info.training.status in ("starting", "running"),
                         polling=self.drops.dialog.is_open or self.inversion.inputs.dialog.is_open,
                         picture_fps=self.display.picture_fps())

    def _viewport(self) -> None:
        ui = self.ui
        avail = imgui.get_content_region_avail()
        p0 = imgui.get_cursor_screen_pos()
        bflags = (imgui.ButtonFlags_.mouse_button_left | imgui.ButtonFlags_.mouse_button_right
                  | imgui.ButtonFlags_.mouse_button_middle)
        imgui.invisible_button("##view", imgui.ImVec2(max(1.0, avail.x), max(1.0, avail.y)), bflags)
        hovered, active = imgui.is_item_hovered(), imgui.is_item_active()
        w, h = ui.render.width, ui.render.height
        scale = min(avail.x / w, avail.y / h) if w and h else 1.0
        disp_w, disp_h = w * scale, h * scale
        ui.camera.camera, moving = self.camera_input.update(ui.camera, hovered, active, imgui.is_window_focused(),
                                                            disp_h)
        ui.info.dragging = self.scripted.orbit(imgui.get_io().delta_time) or moving
        tex, _ = self.display.show()
        x0, y0 = p0.x + (avail.x - disp_w) / 2, p0.y + (avail.y - disp_h) / 2
        if tex:
            imgui.get_window_draw_list().add_image(imgui.ImTextureRef(tex), imgui.ImVec2(x0, y0),
                                                   imgui.ImVec2(x0 + disp_w, y0 + disp_h))
        draw_overlays(ui.info, p0, avail, self.display.busy)

    def handle_actions(self) -> None:
        """Run the queued actions (and those their handlers queue, for a few rounds); failures become messages."""
        ui = self.ui
        for _ in range(MAX_ACTION_ROUNDS):
            actions, ui.actions = ui.actions, []
            if not actions:
                return
            for a in actions:
                handler = self.handlers.get(type(a))
                try:
                    if handler is None:
                        raise TypeError("no handler for this action")
                    handler(a)
                except Exception as e:  # noqa: BLE001 - report, keep running
                    ui.info.say(f"{type(a).__name__} failed: {type(e).__name__}: {e}", "error")

    def request_capture(self) -> None:
        """Ask the GUI thread to store the current full-resolution view in :attr:`captured_view` at the end of
        the next frame (GL calls must run on the GUI thread; scripts and the test engine's thread use this)."""
        self.captured_view = None
        self._capture_requested = True
        self.pacer.wake()


def main(cfg: ViewerConfig) -> int:
    """Open the studio; returns a process exit status."""
    from viewer.config import display_problem, resolve_device, save_screenshot

    problem = display_problem()
    if problem:
        print(f"{APP_NAME}: {problem}", file=os.sys.stderr)
        return 2
    device, note = resolve_device(cfg.device)
    app = ViewerApp(cfg, device)
    if note:
        app.ui.info.say(note, "warning")
    immapp.run(app.runner_params(), app.addons())
    if cfg.screenshot is not None:
        w, h = save_screenshot(cfg.screenshot)
        print(f"{APP_NAME}: saved {w}x{h} screenshot to {cfg.screenshot}")
    return 0
