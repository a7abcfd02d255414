"""core.camera: conventions, EG3D labels and round trips (property tests with hypothesis)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from core.camera import (
    DEFAULT_FOCAL,
    Cameras,
    default_camera,
    focal_from_fov_deg,
    fov_deg_from_focal,
    mirror_label,
    orbit_angles,
    orbit_cameras,
)

yaws = st.floats(-math.pi + 1e-3, math.pi - 1e-3)
pitches = st.floats(-1.45, 1.45)
radii = st.floats(0.5, 20.0)
coords = st.floats(-2.0, 2.0)
focals = st.floats(0.3, 20.0)


def project(cam: Cameras, point: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Pixel coordinates and depth of a world point: ``[x_px, y_px, z]``."""
    p = cam.world_to_camera() @ torch.cat([point, point.new_ones(1)])
    uvw = cam.pixel_intrinsics(width, height) @ p[:3]
    return torch.stack([uvw[0] / uvw[2], uvw[1] / uvw[2], p[2]])


def test_default_camera_is_the_cgs_gan_reference():
    cam = default_camera(torch.float64)
    expected = torch.tensor([[1, 0, 0, 0], [0, -1, 0, 0], [0, 0, -1, 2.7], [0, 0, 0, 1]], dtype=torch.float64)
    torch.testing.assert_close(cam.cam2world, expected)
    torch.testing.assert_close(cam.intrinsics, torch.tensor([[4.2647, 0, 0.5], [0, 4.2647, 0.5], [0, 0, 1]], dtype=torch.float64))
    assert fov_deg_from_focal(DEFAULT_FOCAL) == pytest.approx(13.37, abs=0.01)
    assert float(cam.fov_deg()) == pytest.approx(13.37, abs=0.01)
    label = cam.to_label()
    assert label.shape == (25,)
    # the face (+z) is in front of the camera, +x world appears on the right, +y world appears up
    assert project(cam, torch.tensor([0.0, 0, 0], dtype=torch.float64), 512, 512).tolist() == pytest.approx([256, 256, 2.7])
    right = project(cam, torch.tensor([0.1, 0, 0], dtype=torch.float64), 512, 512)
    up = project(cam, torch.tensor([0, 0.1, 0], dtype=torch.float64), 512, 512)
    assert right[0] > 256 and up[1] < 256


def test_fact_sheet_example_pose_decodes_to_radius_2_7():
    c2w = orbit_cameras(-0.3152, 0.0063, 2.7, dtype=torch.float64)
    yaw, pitch, radius = orbit_angles(c2w)
    assert c2w.centers.tolist() == pytest.approx([-0.836, 0.017, 2.567], abs=2e-3)
    assert float(radius) == pytest.approx(2.7)
    # the OpenCV y axis (column 1) points down, roughly (0, -1, 0)
    assert c2w.cam2world[:3, 1].tolist() == pytest.approx([0, -1, 0], abs=0.01)


@given(yaws, pitches, radii, coords, coords, coords, focals)
@settings(max_examples=200, deadline=None)
def test_orbit_cameras_are_rigid_look_ats_and_round_trip(yaw, pitch, radius, tx, ty, tz, focal):
    target = torch.tensor([tx, ty, tz], dtype=torch.float64)
    cam = orbit_cameras(yaw, pitch, radius, target, focal, dtype=torch.float64)
    cam.validate(atol=1e-9)
    R = cam.cam2world[:3, :3]
    torch.testing.assert_close(R.T @ R, torch.eye(3, dtype=torch.float64), atol=1e-12, rtol=0)
    assert torch.linalg.det(R) == pytest.approx(1.0)
    # the forward axis points at the target, the image-down axis points against world up
    forward = (target - cam.centers) / radius
    torch.testing.assert_close(R[:, 2], forward, atol=1e-9, rtol=0)
    assert R[1, 1] < 0
    # the target projects to the image centre at depth = radius
    assert project(cam, target, 640, 480).tolist() == pytest.approx([320, 240, radius], rel=1e-9, abs=1e-6)
    # view matrix inverts the pose
    torch.testing.assert_close(cam.world_to_camera() @ cam.cam2world, torch.eye(4, dtype=torch.float64), atol=1e-12, rtol=0)
    # angles and label round trip
    y2, p2, r2 = orbit_angles(cam, target)
    assert (float(y2), float(p2), float(r2)) == pytest.approx((yaw, pitch, radius), abs=1e-9)
    again = Cameras.from_label(cam.to_label())
    assert torch.equal(again.cam2world, cam.cam2world) and torch.equal(again.intrinsics, cam.intrinsics)


@given(yaws, pitches, radii, focals, st.integers(1, 4096), st.integers(1, 4096))
@settings(max_examples=100, deadline=None)
def test_pixel_intrinsics_scale_with_resolution(yaw, pitch, radius, focal, width, height):
    cam = orbit_cameras(yaw, pitch, radius, focal=focal, dtype=torch.float64)
    K = cam.pixel_intrinsics(width, height)
    assert K[0, 0] == pytest.approx(focal * width) and K[1, 1] == pytest.approx(focal * height)
    assert K[0, 2] == pytest.approx(width / 2) and K[1, 2] == pytest.approx(height / 2)
    assert K[2].tolist() == [0, 0, 1]


@given(yaws, pitches, radii, coords, coords, coords)
@settings(max_examples=100, deadline=None)
def test_mirroring_matches_x_reflection(yaw, pitch, radius, px, py, pz):
    cam = orbit_cameras(yaw, pitch, radius, dtype=torch.float64)
    mirrored = cam.mirror_x()
    mirrored.validate(atol=1e-9)
    # mirroring is an involution and equals the orbit camera at -yaw
    torch.testing.assert_close(mirrored.mirror_x().cam2world, cam.cam2world, atol=0, rtol=0)
    torch.testing.assert_close(mirrored.cam2world, orbit_cameras(-yaw, pitch, radius, dtype=torch.float64).cam2world,
                               atol=1e-9, rtol=0)
    # a point and its x-mirror image land on mirrored pixels
    p = torch.tensor([px, py, pz], dtype=torch.float64)
    a = project(cam, p, 200, 100)
    b = project(mirrored, p * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64), 200, 100)
    if a[2] > 0.1:
        assert b.tolist() == pytest.approx([200 - a[0].item(), a[1].item(), a[2].item()], rel=1e-9, abs=1e-6)
    label = cam.to_label()
    torch.testing.assert_close(mirror_label(label), mirrored.to_label())


@given(st.floats(1.0, 170.0))
def test_fov_focal_round_trip(fov):
    assert fov_deg_from_focal(focal_from_fov_deg(fov)) == pytest.approx(fov)


def test_batched_orbits_broadcast():
    cams = orbit_cameras(torch.linspace(-1, 1, 5)[:, None], torch.tensor([-0.2, 0.0, 0.3]), 2.7)
    assert cams.batch_shape == (5, 3)
    assert cams.to_label().shape == (5, 3, 25)
    assert cams[2, 1].cam2world.shape == (4, 4)
    assert len(cams) == 5 and cams.reshape(15).batch_shape == (15,)


def test_bad_labels_and_arguments_are_refused_clearly():
    good = default_camera().to_label()
    with pytest.raises(ValueError, match=r"\[\.\.\., 25\]"):
        Cameras.from_label(good[:24])
    bad = good.clone()
    bad[0] = 2.0
    with pytest.raises(ValueError, match="orthonormal"):
        Cameras.from_label(bad)
    bad = good.clone()
    bad[5] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        Cameras.from_label(bad)
    bad = good.clone()
    bad[0] = -1.0  # a reflection
    with pytest.raises(ValueError, match="reflection"):
        Cameras.from_label(bad)
    bad = good.clone()
    bad[16] = -4.0
    with pytest.raises(ValueError, match="focal"):
        Cameras.from_label(bad)
    with pytest.raises(ValueError, match="radius"):
        orbit_cameras(0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="pitch"):
        orbit_cameras(0.0, math.pi / 2)
    with pytest.raises(ValueError, match="field of view"):
        focal_from_fov_deg(180.0)
    with pytest.raises(ValueError, match="same leading shape"):
        Cameras(torch.eye(4).expand(2, 4, 4), torch.eye(3))
