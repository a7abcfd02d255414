"""Pure camera-control rules (ui_state/camera_control.py): no window, no torch except to cross-check."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ui_state import camera_control as cc
from ui_state.render import CameraParams

angles = st.floats(-179.0, 179.0)
pitches = st.floats(-80.0, 80.0)


def test_eye_matches_the_render_camera():
    import torch

    from viewer.viewport.requests import camera_from_params

    cam = CameraParams(yaw_deg=30.0, pitch_deg=20.0, radius=2.0, target=(0.1, 0.2, 0.3))
    centre = torch.linalg.inv(camera_from_params(cam, 64, 64).world_to_camera())[:3, 3].numpy()
    np.testing.assert_allclose(cc.eye(cam), centre, atol=1e-5)


def test_drag_right_turns_the_view_right_and_down_raises_the_camera():
    cam = CameraParams()
    moved = cc.rotate(cam, 10.0, 0.0, 0.5)
    assert moved.yaw_deg == pytest.approx(-5.0)
    # The camera moved toward -x, so the head's right side (+x... seen from the front, image left) turns away.
    assert cc.eye(moved)[0] < 0
    up = cc.rotate(cam, 0.0, 10.0, 0.5)
    assert up.pitch_deg == pytest.approx(5.0) and cc.eye(up)[1] > 0
    assert cc.rotate(cam, 0.0, 10.0, 0.5, invert_y=True).pitch_deg == pytest.approx(-5.0)
    assert cc.rotate(cam, 0.0, 1e6, 1.0).pitch_deg == cc.PITCH_LIMIT_DEG


@given(angles, pitches, st.floats(0.3, 10.0))
@settings(max_examples=50, deadline=None)
def test_mode_switch_keeps_the_view(yaw, pitch, radius):
    cam = CameraParams(yaw_deg=yaw, pitch_deg=pitch, radius=radius, target=(0.1, -0.2, 0.3))
    fly = cc.set_mode(cam, "fly")
    np.testing.assert_allclose(cc.eye(fly), cc.eye(cam), atol=1e-9)
    back = cc.set_mode(fly, "orbit")
    np.testing.assert_allclose(back.target, cam.target, atol=1e-9)


def test_pan_moves_the_target_in_the_image_plane():
    cam = CameraParams()
    moved = cc.pan(cam, 100.0, 0.0, 500.0)
    # Frontal camera: image right is world +x, so dragging right moves the target to -x (scene follows the mouse).
    assert moved.target[0] < 0 and abs(moved.target[1]) < 1e-12 and abs(moved.target[2]) < 1e-12
    units = 100.0 * 2 * 2.7 * math.tan(math.radians(cam.fov_deg) / 2) / 500.0
    assert moved.target[0] == pytest.approx(-units)
    assert cc.pan(cam, 0.0, 50.0, 500.0).target[1] > 0  # drag down: scene down, target up


def test_zoom_and_wheel_in_fly_mode():
    cam = CameraParams()
    assert cc.zoom(cam, 1.0, 1.25).radius == pytest.approx(2.7 / 1.25)
    assert cc.zoom(cam, -2.0, 1.25).radius == pytest.approx(2.7 * 1.25 ** 2)
    assert cc.zoom(cam, 1e3, 2.0).radius == cc.MIN_RADIUS
    fly = cc.set_mode(cam, "fly")
    ahead = cc.zoom(fly, 1.0, 1.25, move_units_per_s=2.0)
    assert ahead.position[2] == pytest.approx(fly.position[2] - cc.WHEEL_FLY_STEP * 2.0)


def test_keyboard_speeds_are_per_second_not_per_frame():
    fly = cc.set_mode(CameraParams(), "fly")
    keys = cc.Keys(forward=True)
    one = cc.keyboard(fly, keys, 1.0, 0.5, 90.0)
    many = fly
    for _ in range(100):
        many = cc.keyboard(many, keys, 0.01, 0.5, 90.0)
    np.testing.assert_allclose(one.position, many.position, atol=1e-9)
    assert one.position[2] == pytest.approx(2.7 - 0.5)
    fast = cc.keyboard(fly, cc.Keys(forward=True, fast=True), 1.0, 0.5, 90.0)
    assert fast.position[2] == pytest.approx(2.7 - 0.5 * cc.FAST)
    turned = cc.keyboard(fly, cc.Keys(turn_left=True), 0.5, 1.0, 90.0)
    assert turned.yaw_deg == pytest.approx(45.0) and turned.position == fly.position
    assert cc.keyboard(fly, cc.Keys(), 1.0, 1.0, 90.0) is fly


def test_orbit_keys_dolly_and_pan():
    cam = CameraParams()
    closer = cc.keyboard(cam, cc.Keys(forward=True), 1.0, 1.0, 90.0)
    assert closer.radius == pytest.approx(1.7) and closer.target == cam.target
    right = cc.keyboard(cam, cc.Keys(right=True), 1.0, 1.0, 90.0)
    assert right.target[0] == pytest.approx(1.0) and right.radius == cam.radius
    up = cc.keyboard(cam, cc.Keys(up=True), 1.0, 1.0, 90.0)
    assert up.target[1] == pytest.approx(1.0)


def test_presets_and_reset():
    cam = replace(CameraParams(), radius=4.0, target=(0.1, 0.0, 0.0))
    side = cc.preset(cam, "left")
    assert (side.yaw_deg, side.pitch_deg, side.radius, side.target) == (90.0, 0.0, 4.0, (0.1, 0.0, 0.0))
    assert cc.eye(side)[0] > 0  # the camera sits at +x: the subject's left side
    assert cc.preset(cc.set_mode(cam, "fly"), "back").mode == "orbit"
    with pytest.raises(ValueError, match="unknown view"):
        cc.preset(cam, "under")
    assert cc.reset() == CameraParams()
