"""Frame pacing: how often the window draws, so an idle studio costs almost no CPU.

ImGui redraws the whole window every frame, and on a machine without a GPU (Mesa's llvmpipe) a frame of the
studio costs about 10-20 ms of CPU at 1600 x 1000 even when nothing changed. So:

- **Idle**: ``IDLE_AFTER_S`` after the last input event the window draws ``IDLE_FPS`` frames per second
  (``JOBS_FPS`` while a background job runs, so its progress bar moves, or while a desktop file dialog is open,
  whose answer is polled; ``FOLLOW_FPS`` while the Training panel follows a running run, which it reads about
  once a second), waiting in glfw for events in between (hello_imgui's idling). Any input wakes it at once.
  (On this project's VM an idle frame after seconds of sleep cost up to ~200 ms of CPU, cold caches and a
  waking vCPU, against ~10-20 ms for a frame in a row; hence so few.)
- **Woken**: other threads call :meth:`FramePacer.wake` (thread-safe: ``hello_imgui.request_refresh``) when
  there is something new to show: the render worker after it publishes a result, a job when it ends.
- **Live**: while something moves without input events (camera keys held, the benchmark orbit), every frame
  asks for the next one.
- **Capped**: at most ``fps_max`` frames per second (Xvfb and many software GL setups have no vsync, so an
  uncapped window would spin as fast as the CPU allows). While the picture comes from the render worker and
  a new one is on its way (the camera moves on the image path), at most ``PICTURE_FPS_FACTOR`` times the
  worker's pictures per second (at least ``PICTURE_FPS_MIN``): on a CPU the worker's rasterizer shares the
  cores with the window, and frames that show no new picture only take CPU from it (orbit on 2 cores,
  interleaved: 30.2-30.4 -> 31.4-31.7 pictures/s, 66 -> 40 window frames/s; 22 -> 30 with the first,
  slower kernels).
- **No MSAA**: the default framebuffer has no multisampling. ImGui anti-aliases its own shapes; 8x MSAA (hello_imgui's
  default) made each llvmpipe frame about ten times as expensive.

The splat picture itself is drawn into a texture only when the camera, scene or size changes
(``viewer.viewport.display``); every other frame presents that texture.
"""

from __future__ import annotations

import threading

from imgui_bundle import hello_imgui, imgui

IDLE_FPS = 0.2  # frames per second with nothing happening: a safety net, everything new wakes the window
FOLLOW_FPS = 1.0  # while a training run is followed (the panel reads its files about once a second)
JOBS_FPS = 8.0  # while a background job runs (progress bars)
IDLE_AFTER_S = 1.0  # seconds after the last input event before idling
PICTURE_FPS_FACTOR = 1.2  # frames per worker picture while one is on its way (1.0-1.5: within noise)
PICTURE_FPS_MIN = 15.0  # never slower than this, so panels and input stay responsive


class FramePacer:
    """See the module docstring. ``fps_max``: cap (0 = none); ``idle_allowed``: False for scripted runs."""

    def __init__(self, fps_max: float, idle_allowed: bool = True) -> None:
        self.fps_max = max(0.0, float(fps_max))
        self.idle_allowed = idle_allowed
        self._lock = threading.Lock()
        self._running = False  # the runner exists: request_refresh is valid
        self.wakes = 0  # wake() calls (tests and benches)

    def configure(self, p: hello_imgui.RunnerParams) -> None:
        """Set the runner's pacing and framebuffer options (before the window opens)."""
        p.fps_idling.enable_idling = self.idle_allowed
        p.fps_idling.fps_idle = IDLE_FPS
        p.fps_idling.time_active_after_last_event = IDLE_AFTER_S
        p.fps_idling.fps_max = self.fps_max
        gl = hello_imgui.OpenGlOptions()
        gl.anti_aliasing_samples = 0
        p.renderer_backend_options.open_gl_options = gl

    def started(self) -> None:
        """The window exists (GL context current): the panels draw no background of their own, so the window's
        clear colour is the theme's window colour."""
        c = imgui.get_style().color_(imgui.Col_.window_bg)
        hello_imgui.get_runner_params().imgui_window_params.background_color = imgui.ImVec4(c.x, c.y, c.z, 1.0)
        with self._lock:
            self._running = True

    def stopped(self) -> None:
        with self._lock:
            self._running = False

    def wake(self) -> None:
        """Draw a frame soon (any thread)."""
        with self._lock:
            self.wakes += 1
            if self._running:
                hello_imgui.request_refresh()

    def frame(self, *, live: bool, jobs_running: bool, following: bool = False, polling: bool = False,
              picture_fps: float | None = None) -> None:
        """Once per frame (GUI thread): ``live``: something moves without input events; ``jobs_running``: a
        background job runs; ``following``: a training run is followed; ``polling``: something is asked every
        frame for an answer that wakes nobody (a desktop file dialog); ``picture_fps``: while the picture
        comes from the render worker and a new one is on its way, how many it makes per second (None
        otherwise)."""
        fps = JOBS_FPS if jobs_running or polling else FOLLOW_FPS if following else IDLE_FPS
        params = hello_imgui.get_runner_params().fps_idling
        params.fps_idle = fps
        params.fps_max = frame_cap(self.fps_max, picture_fps)
        if live:
            hello_imgui.request_refresh()


def frame_cap(fps_max: float, picture_fps: float | None) -> float:
    """Frames per second allowed this frame (0 = no cap): ``fps_max``, lowered to ``PICTURE_FPS_FACTOR`` x
    ``picture_fps`` (never below ``PICTURE_FPS_MIN``) while a worker picture is on its way."""
    if not picture_fps or picture_fps <= 0:
        return fps_max
    slow = max(PICTURE_FPS_MIN, PICTURE_FPS_FACTOR * picture_fps)
    return min(fps_max, slow) if fps_max else slow
