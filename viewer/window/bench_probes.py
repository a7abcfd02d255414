"""Benchmark probes the real window runs on itself (``--bench-seeds``, ``--bench-idle-s``; see
``viewer.window.scripted``), so the figures include everything a user waits for: the render worker, the GUI
thread, the OpenGL driver (llvmpipe on a machine without a GPU) and the window system.

- :class:`SeedLatency`: change the seed, time until the frame that presents the new head has been drawn and
  swapped (measured at the start of the next frame), several times.
- :class:`IdleProbe`: with nothing changing, the process's CPU use (all threads, percent of one core, as
  ``top`` shows it); then, with the pointer sweeping over the side panels every frame (the user working in the
  panels while the picture stays), the GUI frame rate and its CPU use (after a second of motion: the first
  event ends the idling).
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

from imgui_bundle import hello_imgui, imgui

SETTLE_S = 3.0  # after the first head, before measuring (start-up work, the pacer's active period)
UI_WARMUP_S = 1.0  # pointer motion before the panel frame rate is measured (the first event ends the idling)
SEED_GAP_FRAMES = 3  # frames between a head on screen and the next seed change


class SeedLatency:
    """``count`` seed changes; ``latencies_ms`` one per change. Drive with :meth:`start_of_frame` (before the
    panels) and :meth:`end_of_frame` (after the picture was presented)."""

    def __init__(self, ui, display, worker, count: int) -> None:
        self.ui, self.display, self.worker, self.count = ui, display, worker, count
        self.latencies_ms: list[float] = []
        self._t0: float | None = None
        self._target = 0  # worker generation that shows the new seed
        self._presented = False
        self._gap = SEED_GAP_FRAMES

    @property
    def done(self) -> bool:
        return len(self.latencies_ms) >= self.count

    def start_of_frame(self) -> None:
        now = time.perf_counter()
        if self._presented:  # the previous frame showed the new head and has been swapped
            self.latencies_ms.append(1000.0 * (now - self._t0))
            self._t0, self._presented, self._gap = None, False, SEED_GAP_FRAMES
            return
        if self._t0 is None and not self.done and self.display.settled:
            self._gap -= 1
            if self._gap <= 0:
                lat = self.ui.latent.latent
                self.ui.latent.latent = replace(lat, seed=lat.seed + 1, latent=None, grid_xy=None)
                self._t0, self._target = now, 0

    def end_of_frame(self) -> None:
        if self._t0 is None:
            return
        if not self._target:
            self._target = self.worker.generation  # the request this frame submitted
        elif self.display.shown_generation >= self._target:
            self._presented = True


class IdleProbe:
    """Idle CPU for ``idle_s`` seconds, then ``ui_s`` seconds of pointer motion over the panels."""

    def __init__(self, idle_s: float, ui_s: float, panel_width: float) -> None:
        self.idle_s, self.ui_s, self.panel_width = idle_s, ui_s, panel_width
        self.phase = "settle"
        self.results: dict[str, float] = {}
        self._t0 = self._cpu0 = 0.0
        self._frames = 0
        self._ready_at: float | None = None

    @property
    def done(self) -> bool:
        return self.phase == "done"

    def end_of_frame(self, ready: bool) -> None:
        """``ready``: the head is on screen."""
        now, cpu = time.perf_counter(), time.process_time()
        self._frames += 1
        if self.phase == "settle":
            if ready and self._ready_at is None:
                self._ready_at = now
            if self._ready_at is not None and now - self._ready_at >= SETTLE_S:
                self._begin("idle", now, cpu)
        elif self.phase == "idle" and now - self._t0 >= self.idle_s:
            self._end("idle", now, cpu)
            self._begin("warmup", now, cpu)
        elif self.phase in ("warmup", "ui"):
            t = now - self._t0
            if self.phase == "warmup" and t >= UI_WARMUP_S:
                self._begin("ui", now, cpu)
            elif self.phase == "ui" and t >= self.ui_s:
                self._end("ui", now, cpu)
                self.phase = "done"
                return
            # the pointer sweeps up and down the side panels (hover highlights change), a new frame each time
            vp = imgui.get_main_viewport()
            x = vp.work_pos.x + self.panel_width * (0.3 + 0.2 * math.sin(3.1 * t))
            y = vp.work_pos.y + vp.work_size.y * (0.5 + 0.45 * math.sin(1.7 * t))
            imgui.get_io().add_mouse_pos_event(x, y)
            hello_imgui.request_refresh()

    def _begin(self, phase: str, now: float, cpu: float) -> None:
        self.phase, self._t0, self._cpu0, self._frames = phase, now, cpu, 0

    def _end(self, phase: str, now: float, cpu: float) -> None:
        wall = now - self._t0
        self.results[f"{phase}_seconds"] = wall
        self.results[f"{phase}_cpu_percent"] = 100.0 * (cpu - self._cpu0) / wall
        self.results[f"{phase}_fps"] = self._frames / wall
