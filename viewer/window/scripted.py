"""Scripted runs of the window: ``--frames N`` (exit N frames after the first head), ``--bench-orbit-s S``
(orbit the camera, log frames, exit), ``--bench-seeds N`` (time N seed changes to the new head on screen),
``--bench-idle-s S`` (idle CPU, then the GUI frame rate with the pointer moving over the panels; see
``viewer.window.bench_probes``) and ``--stats-json`` (write the frame statistics and the probes' figures at
exit)."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

from imgui_bundle import hello_imgui

from ui_state import camera_control as cc
from ui_state.ui import UiState
from viewer.config import ViewerConfig
from viewer.window.bench_probes import IdleProbe, SeedLatency


class ScriptedRun:
    def __init__(self, cfg: ViewerConfig, ui: UiState, display, panel_width: float = 460.0) -> None:
        self.cfg, self.ui, self.display = cfg, ui, display
        self.frames = 0
        self.first_result_frame: int | None = None
        self.orbit_started: float | None = None
        self.frame_log: list[tuple[float, int, int]] = []  # (perf_counter, gl_draws, pictures) per frame
        self.seeds = SeedLatency(ui, display, display.worker, cfg.bench_seeds) if cfg.bench_seeds else None
        self.idle = IdleProbe(cfg.bench_idle_s, cfg.bench_ui_s, panel_width) if cfg.bench_idle_s else None

    @staticmethod
    def idle_allowed(cfg: ViewerConfig) -> bool:
        """Scripted runs that count frames, orbit or time seeds draw every frame; a normal window (and the idle
        benchmark) idles."""
        return cfg.frames == 0 and cfg.bench_orbit_s == 0 and cfg.bench_seeds == 0

    def start_of_frame(self) -> None:
        if self.seeds is not None:
            self.seeds.start_of_frame()

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
            self.frame_log.append((now, self.display.gl_draws, self.display.pictures))
            if now - self.orbit_started >= cfg.bench_orbit_s:
                hello_imgui.get_runner_params().app_shall_exit = True
        if cfg.frames and self.first_result_frame is not None and self.frames - self.first_result_frame >= cfg.frames:
            hello_imgui.get_runner_params().app_shall_exit = True
        if self.seeds is not None:
            self.seeds.end_of_frame()
        if self.idle is not None:
            self.idle.end_of_frame(self.display.settled)
        probes = [p for p in (self.seeds, self.idle) if p is not None]
        if probes and all(p.done for p in probes):
            hello_imgui.get_runner_params().app_shall_exit = True

    def write_stats(self, path: Path) -> None:
        log, info = self.frame_log, self.ui.info
        out = {"frames": len(log), "gl_draws": (log[-1][1] - log[0][1]) if log else 0,
               "pictures": (log[-1][2] - log[0][2]) if log else 0,
               "seconds": (log[-1][0] - log[0][0]) if len(log) > 1 else 0.0,
               "gui_ms": list(info.gui_ms), "render_ms": list(info.render_ms), "synth_ms": list(info.synth_ms),
               "display_path": info.display_path, "gaussians": info.stats.gaussians,
               "drawn_sizes": self.display.drawn_divisors, "resolution": [self.ui.render.width, self.ui.render.height],
               "gl_renderer": info.gl_renderer, "device": info.device, "window": [self.cfg.width, self.cfg.height],
               "latent_ms": self.seeds.latencies_ms if self.seeds is not None else [],
               **(self.idle.results if self.idle is not None else {})}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out))
