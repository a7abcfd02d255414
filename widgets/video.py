"""Video panel: an orbit .mp4 of the current head (frames, fps, radius, elevation, resolution, turns), rendered in
the background with progress and cancel."""

from __future__ import annotations

from dataclasses import replace

from imgui_bundle import imgui

from ui_state.actions import CancelJob
from ui_state.ui import UiState
from widgets.layout import item_width, job_line


def draw(ui: UiState) -> None:
    v = ui.video.request
    item_width()
    path = imgui.input_text("file (.mp4)", v.path)[1]
    item_width()
    frames = max(2, min(10000, imgui.input_int("frames", v.frames)[1]))
    item_width()
    fps = max(1, min(240, imgui.input_int("fps", v.fps)[1]))
    item_width()
    radius = imgui.slider_float("radius##video", v.radius, 0.5, 10.0, "%.2f")[1]
    item_width()
    elevation = imgui.slider_float("elevation (deg)", v.elevation_deg, -80.0, 80.0, "%.1f")[1]
    item_width()
    resolution = imgui.input_int("resolution (px)", v.resolution, 64)[1]
    resolution = max(16, min(4096, resolution - resolution % 2))
    item_width()
    turns = imgui.slider_float("turns", v.turns, 0.25, 4.0, "%.2f")[1]
    v = ui.video.request = replace(v, path=path, frames=frames, fps=fps, radius=radius, elevation_deg=elevation,
                                   resolution=resolution, turns=turns)
    status = ui.info.jobs.get("video")
    if status is not None and status.running:
        if imgui.button("Cancel video"):
            ui.request(CancelJob("video"))
    elif imgui.button("Render video"):
        ui.request(v)
    job_line(status)
