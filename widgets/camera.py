"""Camera panel: orbit or fly, angles, radius, look-at, FOV, named views, reset and input speeds.

Mouse and keys act on the image (rules in ui_state/camera_control.py, bindings in docs/viewer.md): left-drag
orbits/looks, right- or middle-drag pans, the wheel zooms, W/A/S/D/Q/E move, arrows turn, Shift is faster.
"""

from __future__ import annotations

from dataclasses import replace

from imgui_bundle import imgui

from ui_state import camera_control as cc
from ui_state.ui import UiState
from widgets.layout import item_width

MODES = ("orbit", "fly")


def draw(ui: UiState) -> None:
    s = ui.camera
    cam = s.camera
    item_width()
    changed, mode = imgui.combo("mode##cam", MODES.index(cam.mode), MODES)
    if changed:
        cam = cc.set_mode(cam, MODES[mode])
    item_width()
    _, yaw = imgui.slider_float("yaw (deg)", cam.yaw_deg, -180.0, 180.0, "%.1f")
    item_width()
    _, pitch = imgui.slider_float("pitch (deg)", cam.pitch_deg, -89.0, 89.0, "%.1f")
    item_width()
    _, fov = imgui.slider_float("FOV (deg)", cam.fov_deg, 1.0, 120.0, "%.2f")
    if cam.mode == "orbit":
        item_width()
        _, radius = imgui.slider_float("radius", cam.radius, 0.1, 20.0, "%.2f", imgui.SliderFlags_.logarithmic)
        item_width()
        _, target = imgui.drag_float3("look-at", list(cam.target), 0.005)
        cam = replace(cam, radius=max(cc.MIN_RADIUS, radius), target=tuple(float(v) for v in target))
    else:
        item_width()
        _, pos = imgui.drag_float3("position", list(cam.position), 0.005)
        cam = replace(cam, position=tuple(float(v) for v in pos))
    s.camera = replace(cam, yaw_deg=yaw, pitch_deg=pitch, fov_deg=min(179.0, max(1.0, fov)))
    for i, name in enumerate(cc.PRESETS):
        if i:
            imgui.same_line()
        if imgui.small_button(name):
            s.camera = cc.preset(s.camera, name)
    if imgui.button("Reset camera"):
        s.camera = cc.reset()
    imgui.set_item_tooltip("Frontal orbit camera at radius 2.7 with the training FOV (key: R)")
    if imgui.tree_node("Speeds"):
        item_width()
        _, s.rotate_deg_per_px = imgui.slider_float("drag (deg/px)", s.rotate_deg_per_px, 0.02, 2.0, "%.2f")
        item_width()
        _, s.move_units_per_s = imgui.slider_float("move (units/s)", s.move_units_per_s, 0.05, 10.0, "%.2f",
                                                   imgui.SliderFlags_.logarithmic)
        item_width()
        _, s.turn_deg_per_s = imgui.slider_float("turn (deg/s)", s.turn_deg_per_s, 5.0, 360.0, "%.0f")
        item_width()
        _, s.zoom_factor = imgui.slider_float("zoom / notch", s.zoom_factor, 1.01, 2.0, "%.2f")
        _, s.invert_y = imgui.checkbox("invert vertical drag", s.invert_y)
        imgui.tree_pop()
