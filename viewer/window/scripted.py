"""Scripted runs of the window: ``--frames N`` (exit N frames after the first head), ``--bench-orbit-s S``
(orbit the camera, log frames, exit) and ``--stats-json`` (write the frame statistics at exit)."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

from imgui_bundle import hello_imgui

from ui_state import camera_control as cc
from ui_state.ui import UiState
from viewer.config import ViewerConfig


class ScriptedRun:
    def __init__(self, cfg: ViewerConfig, ui: UiState, display) -> None:
        self.cfg, self.ui, self.display = cfg, ui, display
        self.frames = 0
        self.first_result_frame: int | None = None
        self.orbit_started: float | None = None
        self.frame_log: list[tuple[float, int]] = []  # (perf_counter, gl_draws) per frame while benchmarking

    @staticmethod
    def idle_allowed(cfg: ViewerConfig) -> bool:
        """Scripted runs that count frames or orbit draw every frame; a normal window idles."""
        return cfg.frames == 0 and cfg.bench_orbit_s == 0

    def orbit(self, delta_time: float) -> bool:
        """Benchmark orbit: turn the camera; returns whether to treat it as a drag (``--bench-low-res``)."""
        if not self.cfg.bench_orbit_s or self.first_result_frame is None:
            return False
        if self.orbit_started is None:
            self.orbit_started = time.perf_counter()
        cam = self.ui.camera.camera
        self.ui.camera.camera = replace(cam, yaw_deg=cc.wrap_deg(cam.yaw_deg + self.cfg.bench_orbit_deg_per_s
                                                                   * delta_time))
        return self.cfg.bench_low_res

    def end_of_frame(self) -> None:
        self.frames += 1
        if self.first_result_frame is None and self.display.first_result:
            self.first_result_frame = self.frames
        cfg = self.cfg
        if cfg.bench_orbit_s and self.orbit_started is not None:
            now = time.perf_counter()
            self.frame_log.append((now, self.display.gl_draws))
            if now - self.orbit_started >= cfg.bench_orbit_s:
                hello_imgui.get_runner_params().app_shall_exit = True
        if cfg.frames and self.first_result_frame is not None and self.frames - self.first_result_frame >= cfg.frames:
            hello_imgui.get_runner_params().app_shall_exit = True

    def write_stats(self, path: Path) -> None:
        log, info = self.frame_log, self.ui.info
        out = {"frames": len(log), "gl_draws": (log[-1][1] - log[0][1]) if log else 0,
               "seconds": (log[-1][0] - log[0][0]) if len(log) > 1 else 0.0,
               "gui_ms": list(info.gui_ms), "render_ms": list(info.render_ms), "synth_ms": list(info.synth_ms),
               "display_path": info.display_path, "gaussians": info.stats.gaussians,
               "drawn_sizes": self.display.drawn_divisors, "resolution": [self.ui.render.width, self.ui.render.height],
               "gl_renderer": info.gl_renderer, "device": info.device}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out))
