"""The studio window: panels on the left, the splats on the right, everything slow off the GUI thread.

Per frame (GUI thread, never waits on the model):

1. take the render worker's newest result (image -> texture, or Gaussians -> OpenGL splat renderer) and the
   background jobs' statuses;
2. draw the panels (``widgets/``), which edit :class:`~viewer.state.ui.UiState` and queue actions;
3. mouse and keys on the image move the camera (``viewer.state.camera_control``);
4. build the frozen ``RenderParams``; submit it to the worker when it changed (latest wins). On the OpenGL path
   (no CUDA) only latent/source/edit changes go to the worker, and camera moves are drawn here directly;
5. carry out the queued actions (open, save, video, edits, ...) on the worker or on job threads.

Errors from the worker and from jobs arrive as data and are drawn over the image; nothing a user does raises out
of :meth:`ViewerApp.gui`.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from dataclasses import replace
from pathlib import Path

import numpy as np
from imgui_bundle import hello_imgui, imgui, immapp

from viewer import tasks
from viewer.jobs import JobRunner
from viewer.render_worker import RenderWorker
from viewer.state import camera_control as cc
from viewer.state.actions import (
    AttachRun, CancelJob, ClearEdits, EmptyCache, LoadLatent, LoadSnapshot, OpenFile, PushEdit, RedoEdit,
    RefreshInspect, SaveImage, SaveLatent, SavePly, StartTraining, StartVideo, StopTraining, UndoEdit,
)
from viewer.state.render import CameraParams, RenderParams, RenderResult
from viewer.state.ui import UiState, render_params
from viewer.latent_sliders import LatentSliders
from viewer.training_follow import TrainingFollower
from viewer.viewer_config import APP_NAME, ViewerConfig, default_source, random_banner
from widgets import camera as camera_panel
from widgets import edit as edit_panel
from widgets import inversion as inversion_panel
from widgets import inspect as inspect_panel
from widgets import latent as latent_panel
from widgets import load as load_panel
from widgets import performance as performance_panel
from widgets import render as render_panel
from widgets import save as save_panel
from widgets import training as training_panel
from widgets import video as video_panel
from widgets.layout import BANNER_RGB, ERROR_RGBA

PANEL_WIDTH = 460.0
GL_DRAG_DIVISORS = (2, 3, 4, 6)  # image size divisors the OpenGL path may use while the camera moves
GL_DRAG_BUDGET_MS = 22.0  # pick the smallest divisor whose last draw fit this (about 30 fps with the GUI)
THUMB = 64
PANELS = (("Load", True), ("Camera", True), ("Render", False), ("Latent", True), ("Edit", False),
          ("Save", False), ("Video", False), ("Training", False), ("Performance", False), ("Inspect", False))
QUIT_POPUP = "Training is running"


class ViewerApp:
    """State and per-frame logic of the window (see the module docstring)."""

    def __init__(self, cfg: ViewerConfig, device: str = "cpu") -> None:
        self.cfg = cfg
        self.ui = UiState(device=device)
        self.ui.render.width = self.ui.render.height = cfg.resolution
        self.default_source = default_source()
        self.ui.load.current = cfg.path or self.default_source
        self.recent_file = tasks.recent_file(cfg.state_dir)
        self.ui.load.recent = tasks.read_recent(self.recent_file)
        self.ui.load.remember(self.ui.load.current)
        self.worker = RenderWorker()
        self.jobs = JobRunner()
        self.training = TrainingFollower(self.ui, self.jobs)
        # Feature controllers: poll() every frame (GUI thread), handle(action) -> True when consumed, release().
        self.sliders = LatentSliders(self)
        self.controllers: list = [self.training, self.sliders]
        self.extra_panels: list[tuple[str, bool, object]] = []  # (header, default open, draw(ui)) after Latent
        from viewer.inversion_session import InversionSession  # noqa: E402
        self.inversion = InversionSession(self)
        self.controllers.append(self.inversion)
        self.extra_panels.append(("Inversion", False, inversion_panel.draw))
        self._quit_confirmed = False
        self._quit_after_stop = False
        self.gl = None  # GLSplatRenderer, created in post_init
        self.texture = None  # ImageTexture for the image path
        self.gl_error = ""
        self._submitted: RenderParams | None = None
        self._seen = 0  # newest result generation handled
        self._result: RenderResult | None = None
        self._full_image: np.ndarray | None = None  # newest full-resolution image-path image
        self._gl_key = None  # what the OpenGL texture currently shows
        self._gl_scene = None  # SplatArrays on the GL renderer
        self._gl_full = False  # the last GL draw was at full resolution
        self._gl_ms: dict[tuple[int, int, int], float] = {}  # last draw ms per (divisor, width, height)
        self._display_tex = 0
        self._display_size = (0, 0)
        self._dialog = None
        self._dropped: list[str] = []
        self._glfw_window = None
        self._thumb_textures: dict[int, object] = {}
        self._frames = 0
        self._first_result_frame: int | None = None
        self.gl_draws = 0
        self.orbit_started: float | None = None
        self.frame_log: list[tuple[float, int]] = []  # (perf_counter, gl_draws) per frame while benchmarking
        self._capture_requested = False
        self.captured_view: np.ndarray | None = None
        self.ui.info.device = device
        self.ui.info.banner = ""

    # ------------------------------------------------------------------ hello_imgui callbacks

    def post_init(self) -> None:
        """GL context is current: create the GL objects, hook drag and drop, list the edit ops."""
        from OpenGL import GL

        from viewer.texture import ImageTexture

        try:
            self.ui.info.gl_renderer = f"{GL.glGetString(GL.GL_RENDERER).decode()}, " \
                                       f"OpenGL {GL.glGetString(GL.GL_VERSION).decode()}"
        except Exception as e:  # noqa: BLE001
            self.ui.info.gl_renderer = f"unavailable ({e})"
        self.texture = ImageTexture()
        try:
            from viewer.gl_splats import GLSplatRenderer

            self.gl = GLSplatRenderer()
        except Exception as e:  # noqa: BLE001 - no GL 3.3: images only
            self.gl_error = f"OpenGL splat renderer unavailable ({type(e).__name__}: {e}); using images"
            self.ui.info.say(self.gl_error, "warning")
        try:
            from viewer.edit_catalog import edit_catalog

            self.ui.info.edit_ops = edit_catalog()
        except Exception as e:  # noqa: BLE001
            self.ui.info.say(f"edit operations unavailable: {e}", "error")
        self._hook_drop()

    def before_exit(self) -> None:
        if self.training.child_running:
            print(f"{APP_NAME}: the training run started here keeps running in the background "
                  f"(pid {self.training.process.proc.pid}; run directory {self.training.run_dir}); stop it with "
                  f"'touch <run dir>/STOP' or from the Training panel after attaching to it")
        for c in self.controllers:
            c.release()
        left = self.jobs.shutdown(timeout=5.0)
        if left:
            print(f"{APP_NAME}: background jobs still running at exit: {', '.join(left)}")
        self.worker.close(timeout=5.0)
        for tex in self._thumb_textures.values():
            tex.release()
        if self.gl is not None:
            self.gl.release()
        if self.texture is not None:
            self.texture.release()
        if self.cfg.stats_json is not None:
            self._write_stats(self.cfg.stats_json)

    def runner_params(self) -> hello_imgui.RunnerParams:
        p = hello_imgui.RunnerParams()
        p.app_window_params.window_title = APP_NAME
        p.app_window_params.window_geometry.size = (self.cfg.width, self.cfg.height)
        p.imgui_window_params.default_imgui_window_type = hello_imgui.DefaultImGuiWindowType.no_default_window
        p.callbacks.show_gui = self.gui
        p.callbacks.post_init = self.post_init
        p.callbacks.before_exit = self.before_exit
        p.ini_disable = True
        p.fps_idling.enable_idling = self.cfg.frames == 0 and self.cfg.bench_orbit_s == 0
        p.fps_idling.fps_idle = 20.0
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
            imgui.internal.error_recovery_try_to_recover_state(state)  # close what the failed frame left open

    def _frame(self) -> None:
        self._quit_guard()
        io = imgui.get_io()
        info = self.ui.info
        info.gui_ms.append(1000.0 * io.delta_time)
        self._frames += 1
        self._poll_worker()
        info.jobs = self.jobs.poll()
        for c in self.controllers:
            opened = c.poll()
            if opened is not None:
                self.ui.request(OpenFile(opened))
        self._poll_dialog()
        for path in self._dropped:
            self.ui.request(OpenFile(path))
        self._dropped.clear()
        vp = imgui.get_main_viewport()
        panel_w = min(PANEL_WIDTH, 0.45 * vp.work_size.x)
        imgui.set_next_window_pos(vp.work_pos)
        imgui.set_next_window_size(imgui.ImVec2(panel_w, vp.work_size.y))
        wf = imgui.WindowFlags_
        imgui.begin("Panels", None, wf.no_move | wf.no_resize | wf.no_collapse | wf.no_saved_settings
                    | wf.no_title_bar)
        imgui.text(APP_NAME)
        self._panels()
        imgui.end()
        imgui.set_next_window_pos(imgui.ImVec2(vp.work_pos.x + panel_w, vp.work_pos.y))
        imgui.set_next_window_size(imgui.ImVec2(vp.work_size.x - panel_w, vp.work_size.y))
        imgui.push_style_var(imgui.StyleVar_.window_padding, imgui.ImVec2(0, 0))
        imgui.begin("Viewport", None, wf.no_decoration | wf.no_move | wf.no_saved_settings
                    | wf.no_bring_to_front_on_focus | wf.no_scroll_with_mouse)
        self._viewport()
        imgui.end()
        imgui.pop_style_var()
        self._handle_actions()
        self._thumbnails()
        if self._capture_requested:
            self._capture_requested = False
            self.captured_view = self._current_image()
        self._bench_and_exit()

    def request_capture(self) -> None:
        """Ask the GUI thread to store the current full-resolution view in :attr:`captured_view` at the end of
        the next frame (GL calls must run on the GUI thread; scripts and the test engine's thread use this)."""
        self.captured_view = None
        self._capture_requested = True

    def _panels(self) -> None:
        ui = self.ui
        draw = {
            "Load": lambda: load_panel.draw(ui, self.default_source),
            "Camera": lambda: camera_panel.draw(ui),
            "Render": lambda: render_panel.draw(ui),
            "Latent": lambda: latent_panel.draw(ui),
            "Edit": lambda: edit_panel.draw(ui),
            "Save": lambda: save_panel.draw(ui),
            "Video": lambda: video_panel.draw(ui),
            "Performance": lambda: performance_panel.draw(ui),
            "Inspect": lambda: inspect_panel.draw(ui),
            "Training": lambda: training_panel.draw(ui),
        }
        panels = [(name, open_, draw[name]) for name, open_ in PANELS]
        at = next(i for i, p in enumerate(panels) if p[0] == "Latent") + 1
        panels[at:at] = [(name, open_, (lambda f=f: f(ui))) for name, open_, f in self.extra_panels]
        for name, default_open, fn in panels:
            flags = imgui.TreeNodeFlags_.default_open if default_open else 0
            if imgui.collapsing_header(name, flags):
                imgui.push_id(name)
                fn()
                imgui.pop_id()
        if ui.info.messages:
            imgui.separator_text("Messages")
            for m in ui.info.messages[-6:]:
                color = {"error": ERROR_RGBA, "warning": (1.0, 0.8, 0.35, 1.0)}.get(m.level)
                if color:
                    imgui.text_colored(imgui.ImVec4(*color), m.text)
                else:
                    imgui.text_wrapped(m.text)

    def _quit_guard(self) -> None:
        """Closing the window while a run started here is training: ask (keep it, stop it, or stay)."""
        rp = hello_imgui.get_runner_params()
        if self._quit_after_stop:
            if not self.training.child_running:
                rp.app_shall_exit = True
                return
            rp.app_shall_exit = False
        if rp.app_shall_exit and self.training.child_running and not self._quit_confirmed:
            rp.app_shall_exit = False
            self._cancel_window_close()
            imgui.open_popup(QUIT_POPUP)
        if imgui.begin_popup_modal(QUIT_POPUP, None, imgui.WindowFlags_.always_auto_resize)[0]:
            if self._quit_after_stop:
                imgui.text("Waiting for the run to write its snapshot and exit...")
            else:
                imgui.text("A training run started from this window is still running.")
                if imgui.button("Keep it running and quit"):
                    self._quit_confirmed = True
                    rp.app_shall_exit = True
                    imgui.close_current_popup()
                imgui.same_line()
                if imgui.button("Stop it (snapshot) and quit"):
                    self.training.stop()
                    self._quit_after_stop = True
                imgui.same_line()
                if imgui.button("Cancel"):
                    imgui.close_current_popup()
            imgui.end_popup()

    def _cancel_window_close(self) -> None:
        """Clear glfw's should-close flag (else the backend asks to exit again every frame)."""
        try:
            import glfw

            glfw.set_window_should_close(self._glfw_window, False)
        except Exception:  # noqa: BLE001 - no glfw window handle: the popup still appears every frame
            pass

    # ------------------------------------------------------------------ viewport: input, drawing, overlays

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
        self._camera_input(hovered, active, disp_h)
        tex, size = self._display()
        x0 = p0.x + (avail.x - disp_w) / 2
        y0 = p0.y + (avail.y - disp_h) / 2
        dl = imgui.get_window_draw_list()
        if tex:
            dl.add_image(imgui.ImTextureRef(tex), imgui.ImVec2(x0, y0), imgui.ImVec2(x0 + disp_w, y0 + disp_h))
        self._overlays(p0, avail)

    def _camera_input(self, hovered: bool, active: bool, disp_h: float) -> None:
        ui, io = self.ui, imgui.get_io()
        s = ui.camera
        cam = s.camera
        dragging = False
        if active:
            d = io.mouse_delta
            if imgui.is_mouse_down(imgui.MouseButton_.left):
                cam = cc.rotate(cam, d.x, d.y, s.rotate_deg_per_px, s.invert_y)
                dragging = True
            elif imgui.is_mouse_down(imgui.MouseButton_.right) or imgui.is_mouse_down(imgui.MouseButton_.middle):
                cam = cc.pan(cam, d.x, d.y, disp_h)
                dragging = True
        if hovered and io.mouse_wheel:
            cam = cc.zoom(cam, io.mouse_wheel, s.zoom_factor, s.move_units_per_s)
        if not io.want_text_input and (hovered or active or not io.want_capture_keyboard):
            K = imgui.Key
            keys = cc.Keys(
                forward=imgui.is_key_down(K.w), back=imgui.is_key_down(K.s), left=imgui.is_key_down(K.a),
                right=imgui.is_key_down(K.d), down=imgui.is_key_down(K.q), up=imgui.is_key_down(K.e),
                turn_left=imgui.is_key_down(K.left_arrow), turn_right=imgui.is_key_down(K.right_arrow),
                turn_up=imgui.is_key_down(K.up_arrow), turn_down=imgui.is_key_down(K.down_arrow),
                fast=io.key_shift)
            cam = cc.keyboard(cam, keys, io.delta_time, s.move_units_per_s, s.turn_deg_per_s)
            dragging = dragging or keys.any
            if imgui.is_key_pressed(K.r, False):
                cam = cc.reset()
            if imgui.is_key_pressed(K.f, False):
                cam = cc.preset(cam, "front")
        if self.cfg.bench_orbit_s and self._first_result_frame is not None:
            if self.orbit_started is None:
                self.orbit_started = time.perf_counter()
            cam = replace(cam, yaw_deg=cc._wrap(cam.yaw_deg + self.cfg.bench_orbit_deg_per_s * io.delta_time))
            dragging = self.cfg.bench_low_res
        s.camera = cam
        ui.info.dragging = dragging

    def _use_gl(self) -> bool:
        r = self.ui.render
        if self.gl is None or r.mode not in ("rgb", "alpha"):
            return False
        return r.display == "opengl" or (r.display == "auto" and not self.ui.device.startswith("cuda"))

    def _display(self) -> tuple[int, tuple[int, int]]:
        """Submit what changed and return the texture to show with its size."""
        ui = self.ui
        low = ui.info.dragging and ui.render.low_res_while_dragging
        if self._use_gl():
            ui.info.display_path = "opengl"
            scene_req = replace(render_params(ui, output="scene"), camera=CameraParams(), width=64, height=64,
                                background=(1.0, 1.0, 1.0), mode="rgb", splat_scale=1.0)
            self._submit(scene_req)
            return self._draw_gl(low)
        ui.info.display_path = "image"
        self._submit(render_params(ui, output="image", low_res=low))
        return self.texture.texture_id if self.texture and self.texture.size[0] else 0, self.texture.size

    def _submit(self, params: RenderParams) -> None:
        if params != self._submitted:
            self.worker.submit(params)
            self._submitted = params

    def _draw_gl(self, low: bool) -> tuple[int, tuple[int, int]]:
        r = self.ui.render
        if self._gl_scene is None:
            return self._display_tex, self._display_size
        w, h = r.width, r.height
        divisor = 1
        if low:  # progressive: the largest size whose last draw kept the frame rate up
            divisor = next((d for d in GL_DRAG_DIVISORS if self._gl_ms.get((d, w, h), 0.0) <= GL_DRAG_BUDGET_MS),
                           GL_DRAG_DIVISORS[-1])
            w, h = max(1, w // divisor), max(1, h // divisor)
        key = (id(self._gl_scene), self.ui.camera.camera, w, h, r.background, r.splat_scale, r.mode)
        if key != self._gl_key:
            from OpenGL import GL

            t0 = time.perf_counter()
            self._display_tex = self.gl.draw_camera(self.ui.camera.camera, w, h, r.background, r.splat_scale,
                                                    r.mode)
            GL.glFinish()
            ms = 1000.0 * (time.perf_counter() - t0)
            self._gl_ms[(divisor, r.width, r.height)] = ms
            self.ui.info.render_ms.append(ms)
            self.ui.info.stats = replace(self.ui.info.stats, render_ms=ms, width=w, height=h, backend="opengl")
            self._gl_key, self._gl_full, self._display_size = key, not low, (w, h)
            self.gl_draws += 1
        return self._display_tex, self._display_size

    def _overlays(self, p0, avail) -> None:
        info = self.ui.info
        imgui.set_cursor_screen_pos(imgui.ImVec2(p0.x + 8, p0.y + 8))
        banner = info.banner
        if banner:
            r, g, b = BANNER_RGB
            imgui.push_style_color(imgui.Col_.child_bg, imgui.ImVec4(r / 255, g / 255, b / 255, 1.0))
            imgui.push_style_color(imgui.Col_.text, imgui.ImVec4(0.08, 0.08, 0.08, 1.0))
            imgui.begin_child("banner", imgui.ImVec2(avail.x - 16, 0),
                              imgui.ChildFlags_.always_use_window_padding | imgui.ChildFlags_.auto_resize_y)
            imgui.text_wrapped(banner)
            imgui.end_child()
            imgui.pop_style_color(2)
        error = info.error
        if error:
            lines = error.strip().splitlines()
            imgui.push_style_color(imgui.Col_.child_bg, imgui.ImVec4(0.15, 0.02, 0.02, 0.9))
            imgui.begin_child("error", imgui.ImVec2(avail.x - 16, 0),
                              imgui.ChildFlags_.always_use_window_padding | imgui.ChildFlags_.auto_resize_y)
            imgui.text_colored(imgui.ImVec4(*ERROR_RGBA), lines[-1] if lines else "error")
            if len(lines) > 1 and imgui.tree_node("details##error"):
                imgui.text_unformatted("\n".join(lines[-30:]))
                imgui.tree_pop()
            imgui.end_child()
            imgui.pop_style_color()
        st = info.stats
        busy = self._result is None or (self._submitted is not None and self._result.params != self._submitted
                                        and self._result.generation < self.worker.generation)
        text = f"{st.gaussians:,} Gaussians  {st.width}x{st.height}  {info.display_path}"
        if busy:
            text += "  (working...)"
        pos = imgui.ImVec2(p0.x + 8, p0.y + avail.y - 26)
        size = imgui.calc_text_size(text)
        imgui.get_window_draw_list().add_rect_filled(
            imgui.ImVec2(pos.x - 4, pos.y - 2), imgui.ImVec2(pos.x + size.x + 4, pos.y + size.y + 2),
            imgui.get_color_u32(imgui.ImVec4(0.0, 0.0, 0.0, 0.55)), 3.0)
        imgui.set_cursor_screen_pos(pos)
        imgui.text(text)

    # ------------------------------------------------------------------ results

    def _poll_worker(self) -> None:
        res = self.worker.latest()
        if res is None or res.generation <= self._seen:
            return
        self._seen = res.generation
        self._result = res
        info = self.ui.info
        st = res.stats
        if st.source_kind:
            info.source_kind = st.source_kind
            info.random_weights = st.random_weights
        info.banner = random_banner(res.params.source if res.params else "") if st.random_weights else ""
        if res.error is not None:
            info.error = res.error
            return
        info.error = None
        if self._first_result_frame is None:
            self._first_result_frame = self._frames
        info.stats = st
        if st.synthesized:
            info.synth_ms.append(st.synthesis_ms)
        info.current_ws = res.ws
        if res.image is not None:
            info.render_ms.append(st.render_ms)
            self.texture.upload(res.image)
            if res.params is not None and not res.params.low_res:
                self._full_image = res.image
        if res.splats is not None and res.splats is not self._gl_scene and self.gl is not None:
            self.gl.set_scene(res.splats)
            self._gl_scene = res.splats
            self._gl_key = None
        if self.ui.inspect.auto and res.scene is not None and res.scene is not getattr(self, "_inspected", None):
            self._inspected = res.scene
            tasks.start_inspect(self.jobs, self.ui, res.scene)

    # ------------------------------------------------------------------ actions

    def _handle_actions(self) -> None:
        ui = self.ui
        actions, ui.actions = ui.actions, []
        for a in actions:
            try:
                self._handle(a)
            except Exception as e:  # noqa: BLE001 - report, keep running
                ui.info.say(f"{type(a).__name__} failed: {type(e).__name__}: {e}", "error")

    def _handle(self, a) -> None:
        ui = self.ui
        scene = self._result.scene if self._result is not None else None
        if any(c.handle(a) for c in self.controllers):
            return
        if isinstance(a, OpenFile):
            if a.path == ":dialog":
                self._open_dialog()
                return
            problem = tasks.check_source(a.path)
            if problem:
                ui.info.say(problem, "error")
                return
            ui.load.current = a.path
            ui.load.path = a.path
            ui.load.remember(a.path)
            ui.edit.stack.clear()
            ui.edit.redo.clear()
            tasks.write_recent(self.recent_file, ui.load.recent)
            ui.info.say(f"opening {a.path}")
        elif isinstance(a, PushEdit):
            ui.edit.stack.append(a.edit)
            ui.edit.redo.clear()
        elif isinstance(a, UndoEdit) and ui.edit.stack:
            ui.edit.redo.append(ui.edit.stack.pop())
        elif isinstance(a, RedoEdit) and ui.edit.redo:
            ui.edit.stack.append(ui.edit.redo.pop())
        elif isinstance(a, ClearEdits):
            ui.edit.stack.clear()
            ui.edit.redo.clear()
        elif isinstance(a, SavePly):
            tasks.start_save_ply(self.jobs, ui, scene, a.path)
        elif isinstance(a, SaveImage):
            tasks.start_save_image(self.jobs, ui, self._current_image(), a.path)
        elif isinstance(a, SaveLatent):
            tasks.start_save_latent(self.jobs, ui, a.path)
        elif isinstance(a, LoadLatent):
            tasks.start_load_latent(self.jobs, ui, a.path)
        elif isinstance(a, StartVideo):
            tasks.start_video(self.jobs, ui, scene, a)
        elif isinstance(a, CancelJob):
            self.jobs.cancel(a.name)
        elif isinstance(a, RefreshInspect):
            if scene is not None:
                tasks.start_inspect(self.jobs, ui, scene)
        elif isinstance(a, StartTraining):
            self.training.start(a.launch)
        elif isinstance(a, AttachRun):
            self.training.attach(a.run_dir)
        elif isinstance(a, StopTraining):
            self.training.stop()
        elif isinstance(a, LoadSnapshot):
            path = self.training.snapshot_path(a.name)
            if path is not None:
                self._handle(OpenFile(path))
        elif isinstance(a, EmptyCache):
            self.worker.drop_caches()
            self._submitted = None  # resubmit so the worker reloads
            ui.info.say("render caches dropped")

    def _current_image(self) -> np.ndarray | None:
        """The current view at full resolution, uint8 ``[H, W, 3]`` (GL readback or the worker's image)."""
        if self._use_gl() and self.gl is not None and self._gl_scene is not None:
            r = self.ui.render
            if not self._gl_full:
                self.gl.draw_camera(self.ui.camera.camera, r.width, r.height, r.background, r.splat_scale, r.mode)
                self._gl_key = None
            return self.gl.read_rgb()
        return self._full_image

    # ------------------------------------------------------------------ file dialog, drag and drop

    def _open_dialog(self) -> None:
        try:
            from imgui_bundle import portable_file_dialogs as pfd

            self._dialog = pfd.open_file("Open a generator or scene", str(Path.cwd()),
                                         ["Generators and scenes", "*.safetensors *.json *.pkl *.ply", "All files", "*"])
        except Exception as e:  # noqa: BLE001
            self.ui.info.say(f"no file dialog here ({e}); type the path instead", "warning")

    def _poll_dialog(self) -> None:
        if self._dialog is None or not self._dialog.ready(0):
            return
        result, self._dialog = self._dialog.result(), None
        if result:
            self.ui.request(OpenFile(result[0]))

    def _hook_drop(self) -> None:
        try:
            import ctypes

            import glfw

            win = ctypes.cast(hello_imgui.get_glfw_window_address(), ctypes.POINTER(glfw._GLFWwindow))
            self._glfw_window = win
            self._drop_cb = lambda _w, paths: self._dropped.extend(str(p) for p in paths)
            glfw.set_drop_callback(win, self._drop_cb)
        except Exception as e:  # noqa: BLE001 - drag and drop is a convenience
            self.ui.info.say(f"drag and drop unavailable: {e}", "warning")

    # ------------------------------------------------------------------ thumbnails, scripted runs

    def _thumbnails(self) -> None:
        from viewer.texture import ImageTexture

        for item in self.ui.latent.saved:
            if id(item) in self._thumb_textures:
                continue
            if item.thumbnail is None:
                img = self._current_image()
                if img is None:
                    continue
                item.thumbnail = tasks.thumbnail(img, THUMB)
            tex = ImageTexture()
            tex.upload(item.thumbnail)
            self._thumb_textures[id(item)] = tex
        live = {id(item) for item in self.ui.latent.saved}
        for key in [k for k in self._thumb_textures if k not in live]:
            self._thumb_textures.pop(key).release()
        self.ui.info.thumbnail_textures = {k: t.texture_id for k, t in self._thumb_textures.items()}

    def _bench_and_exit(self) -> None:
        cfg = self.cfg
        if cfg.bench_orbit_s and self.orbit_started is not None:
            now = time.perf_counter()
            self.frame_log.append((now, self.gl_draws))
            if now - self.orbit_started >= cfg.bench_orbit_s:
                hello_imgui.get_runner_params().app_shall_exit = True
        if cfg.frames and self._first_result_frame is not None and \
                self._frames - self._first_result_frame >= cfg.frames:
            hello_imgui.get_runner_params().app_shall_exit = True

    def _write_stats(self, path: Path) -> None:
        log = self.frame_log
        out = {"frames": len(log), "gl_draws": (log[-1][1] - log[0][1]) if log else 0,
               "seconds": (log[-1][0] - log[0][0]) if len(log) > 1 else 0.0,
               "gui_ms": list(self.ui.info.gui_ms), "render_ms": list(self.ui.info.render_ms),
               "synth_ms": list(self.ui.info.synth_ms), "display_path": self.ui.info.display_path,
               "gaussians": self.ui.info.stats.gaussians, "drawn_sizes": sorted({k[0] for k in self._gl_ms}),
               "resolution": [self.ui.render.width,
                                                                          self.ui.render.height],
               "gl_renderer": self.ui.info.gl_renderer, "device": self.ui.info.device}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out))


def main(cfg: ViewerConfig) -> int:
    """Open the studio; returns a process exit status."""
    from viewer.viewer_config import display_problem, resolve_device, save_screenshot

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
