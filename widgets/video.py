"""Video panel: an orbit .mp4 of the current head (frames, fps, radius, elevation, resolution, turns), rendered in
the background with progress and cancel."""

from __future__ import annotations

from imgui_bundle import imgui

from ui_state.actions import CancelJob, StartVideo
from ui_state.ui import UiState
from widgets.layout import item_width, job_line


def draw(ui: UiState) -> None:
    s = ui.video
    item_width()
    _, s.path = imgui.input_text("file (.mp4)", s.path)
    item_width()
    _, s.frames = imgui.input_int("frames", s.frames)
    s.frames = max(2, min(10000, s.frames))
    item_width()
    _, s.fps = imgui.input_int("fps", s.fps)
    s.fps = max(1, min(240, s.fps))
    item_width()
    _, s.radius = imgui.slider_float("radius##video", s.radius, 0.5, 10.0, "%.2f")
    item_width()
    _, s.elevation_deg = imgui.slider_float("elevation (deg)", s.elevation_deg, -80.0, 80.0, "%.1f")
    item_width()
    _, s.resolution = imgui.input_int("resolution (px)", s.resolution, 64)
    s.resolution = max(16, min(4096, s.resolution - s.resolution % 2))
    item_width()
    _, s.turns = imgui.slider_float("turns", s.turns, 0.25, 4.0, "%.2f")
    status = ui.info.jobs.get("video")
    if status is not None and status.running:
        if imgui.button("Cancel video"):
            ui.request(CancelJob("video"))
    elif imgui.button("Render video"):
        ui.request(StartVideo(s.path, s.frames, s.fps, s.radius, s.elevation_deg, s.resolution, s.turns))
    job_line(status)
