"""Mouse and keys on the picture -> a new camera (the rules are the pure functions of
``ui_state.camera_control``; this module only reads ImGui's input state). GUI thread."""

from __future__ import annotations

from imgui_bundle import imgui

from ui_state import camera_control as cc
from ui_state.panels import CameraPanel
from ui_state.render import CameraParams


def camera_input(s: CameraPanel, hovered: bool, active: bool, view_height_px: float) -> tuple[CameraParams, bool]:
    """``(camera after this frame's input, whether the camera is being moved)`` for the image item's
    ``hovered``/``active`` state; ``view_height_px``: the displayed image height (pan speed)."""
    io = imgui.get_io()
    cam = s.camera
    moving = False
    if active:
        d = io.mouse_delta
        if imgui.is_mouse_down(imgui.MouseButton_.left):
            cam = cc.rotate(cam, d.x, d.y, s.rotate_deg_per_px, s.invert_y)
            moving = True
        elif imgui.is_mouse_down(imgui.MouseButton_.right) or imgui.is_mouse_down(imgui.MouseButton_.middle):
            cam = cc.pan(cam, d.x, d.y, view_height_px)
            moving = True
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
        moving = moving or keys.any
        if imgui.is_key_pressed(K.r, False):
            cam = cc.reset()
        if imgui.is_key_pressed(K.f, False):
            cam = cc.preset(cam, "front")
    return cam, moving
