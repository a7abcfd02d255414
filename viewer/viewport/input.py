"""Mouse and keys on the picture -> a new camera (the rules are the pure functions of
``ui_state.camera_control``; this module only reads ImGui's input state). GUI thread.

Two rules keep the camera from surprising the user:

- A drag starts where the button went down: each frame moves the camera by the change of ImGui's drag delta
  (pointer minus press position), never by the pointer's travel since the previous frame, so a pointer that
  moved and pressed within one frame (an idle window, a fast hand, ``xdotool``) does not turn the head by the
  whole travel.
- Keys move the camera only while the picture has the keyboard: the pointer is over it or it was clicked last
  (its window has focus), no text field takes typing, no other item is active, and no Ctrl/Alt/Super is held
  (Ctrl+A in a panel's field is not "pan left").
"""

from __future__ import annotations

from imgui_bundle import imgui

from ui_state import camera_control as cc
from ui_state.panels import CameraPanel
from ui_state.render import CameraParams

_BUTTONS = (imgui.MouseButton_.left, imgui.MouseButton_.right, imgui.MouseButton_.middle)


class CameraInput:
    """Per-window input state (the drag's last position); :meth:`update` once per frame."""

    def __init__(self) -> None:
        self._used: tuple[float, float] | None = None  # the part of the drag delta already applied

    def drag_delta(self, active: bool):
        """``(dx, dy, button)`` of the drag this frame (pixels; button None when no drag)."""
        button = next((b for b in _BUTTONS if imgui.is_mouse_down(b)), None) if active else None
        if button is None:
            self._used = None
            return 0.0, 0.0, None
        if self._used is None or imgui.is_mouse_clicked(button):
            self._used = (0.0, 0.0)
        total = imgui.get_mouse_drag_delta(button, 0.0)  # pointer - press position
        dx, dy = total.x - self._used[0], total.y - self._used[1]
        self._used = (total.x, total.y)
        return dx, dy, button

    def update(self, s: CameraPanel, hovered: bool, active: bool, focused: bool,
               view_height_px: float) -> tuple[CameraParams, bool]:
        """``(camera after this frame's input, whether the camera is being moved)`` for the image item's
        ``hovered``/``active`` state and whether the picture's window has ``focused`` keyboard focus;
        ``view_height_px``: the displayed image height (pan speed)."""
        io = imgui.get_io()
        cam = s.camera
        moving = False
        dx, dy, button = self.drag_delta(active)
        if button == imgui.MouseButton_.left:
            cam = cc.rotate(cam, dx, dy, s.rotate_deg_per_px, s.invert_y)
            moving = True
        elif button is not None:
            cam = cc.pan(cam, dx, dy, view_height_px)
            moving = True
        if hovered and io.mouse_wheel:
            cam = cc.zoom(cam, io.mouse_wheel, s.zoom_factor, s.move_units_per_s)
        if keys_reach_camera(hovered, active, focused):
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


def keys_reach_camera(hovered: bool, active: bool, focused: bool) -> bool:
    """The picture has the keyboard (see the module docstring)."""
    io = imgui.get_io()
    if io.want_text_input or io.key_ctrl or io.key_alt or io.key_super:
        return False
    if imgui.is_any_item_active() and not active:
        return False
    return hovered or active or focused
