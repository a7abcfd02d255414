"""Alignment geometry and the PnP camera estimate on synthetic landmarks (no detector involved)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.camera import orbit_cameras
from inversion.alignment import alignment_transform, apply_transform, ffhq_quad, warp_photo
from inversion.framing import FFHQ_EG3D, FRAMINGS, SYNTHETIC_HEADS, project
from inversion.pose import estimate_camera, view_angle_error_deg
from inversion.steps import Schedule


def _similarity(angle_deg: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    a = math.radians(angle_deg)
    M = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return np.concatenate([M, np.array(shift)[:, None]], 1)


@pytest.mark.parametrize("framing", list(FRAMINGS.values()), ids=list(FRAMINGS))
def test_alignment_maps_a_moved_template_back_onto_itself(framing):
    R = 256
    template = framing.template()
    S = _similarity(23.0, 3.7, (410.0, -35.0))  # template pixels -> "photo" pixels
    photo_lm = apply_transform(S, template * R)
    A = alignment_transform(photo_lm, template, R)
    np.testing.assert_allclose(apply_transform(A, photo_lm), template * R, atol=1e-9)


def test_quad_follows_the_ffhq_rule():
    lm = np.array([[100.0, 100.0], [140.0, 100.0], [120.0, 125.0], [105.0, 150.0], [135.0, 150.0]])
    c, x = ffhq_quad(lm)
    np.testing.assert_allclose(c, [120.0, 105.0])  # eye_avg + 0.1 * eye_to_mouth
    np.testing.assert_allclose(x, [90.0, 0.0])  # level eyes: x along +x, 1.8 * |eye_to_mouth| = 90 > 2 * 40


def test_warp_puts_a_dot_where_the_transform_says():
    photo = np.full((300, 400, 3), 255, np.uint8)
    photo[146:154, 246:254] = 0  # dot centred at (250, 150)
    A = _similarity(-10.0, 0.4, (-20.0, 10.0))
    img, inside = warp_photo(photo, A, 128)
    target = apply_transform(A, np.array([[250.0, 150.0]]))[0]
    dark = np.argwhere(img[..., 0] < 200)
    assert len(dark) > 0
    np.testing.assert_allclose(dark.mean(0)[::-1] + 0.5, target, atol=1.0)
    assert inside.min() == 0.0 and inside.max() == 1.0  # the photo does not cover the whole crop


@pytest.mark.parametrize("yaw, pitch", [(0, 0), (20, 8), (-35, -10), (55, 5)])
def test_pnp_recovers_the_camera(yaw, pitch):
    cam = orbit_cameras(math.radians(yaw), math.radians(pitch), 2.7, focal=SYNTHETIC_HEADS.focal,
                        dtype=torch.float64)
    uv = project(SYNTHETIC_HEADS.points(), cam)
    est = estimate_camera(uv, SYNTHETIC_HEADS)
    assert abs(est.yaw_deg - yaw) < 0.01 and abs(est.pitch_deg - pitch) < 0.01
    assert view_angle_error_deg(est.camera, cam) < 0.01 and est.rms_px_norm < 1e-6
    # 0.3 % of the image side of landmark noise (1.5 px at 512) still gives the direction within a few degrees
    noisy = uv + np.random.default_rng(yaw + 100).normal(0, 0.003, uv.shape)
    assert view_angle_error_deg(estimate_camera(noisy, SYNTHETIC_HEADS).camera, cam) < 6.0
    assert abs(estimate_camera(uv, SYNTHETIC_HEADS).orbit(SYNTHETIC_HEADS).yaw_deg - yaw) < 0.01


def test_ffhq_framing_is_the_scaled_mean_head():
    np.testing.assert_allclose(FFHQ_EG3D.points(), SYNTHETIC_HEADS.points() * 1.18, atol=1e-4)
    assert 0.15 < (FFHQ_EG3D.template()[1, 0] - FFHQ_EG3D.template()[0, 0]) < 0.25


def test_schedule_warms_up_and_decays():
    s = Schedule(lr=0.01, steps=100, warmup=0.1, rampdown=0.25)
    assert s.lr_at(0) < 0.001 and s.lr_at(50) == pytest.approx(0.01) and s.lr_at(99) < 1e-4
    assert all(s.lr_at(i) <= s.lr_at(i + 1) + 1e-12 for i in range(10))
