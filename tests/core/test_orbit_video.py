"""core.orbit_video: settings validation, orbit cameras, a tiny mp4 read back, cancel/failure cleanup, the CLI."""

from __future__ import annotations

import threading

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from core.camera import orbit_angles
from core.gaussians import GaussianSet
from core.orbit_video import OrbitVideoSettings, main, orbit_frames, orbit_video_cameras, write_orbit_video


def blob_scene(n: int = 150) -> GaussianSet:
    g = torch.Generator().manual_seed(0)
    return GaussianSet.from_activated((torch.rand(n, 3, generator=g) - 0.5) * 0.8, torch.rand(n, 3, generator=g),
                                      torch.full((n,), 0.9), torch.full((n, 3), 0.05))


def mp4s(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".mp4"))


def test_settings_validation_and_cameras():
    with pytest.raises(ValueError, match="resolution must be even"):
        OrbitVideoSettings(resolution=33)
    with pytest.raises(ValueError, match="elevation_deg must be in"):
        OrbitVideoSettings(elevation_deg=90.0)
    with pytest.raises(ValueError, match="frames must be an int"):
        OrbitVideoSettings(frames=2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="background"):
        OrbitVideoSettings(background=(0.0, 2.0, 0.0))
    s = OrbitVideoSettings(frames=4, radius=3.0, elevation_deg=20.0, start_yaw_deg=90.0)
    yaw, pitch, radius = orbit_angles(orbit_video_cameras(s))
    np.testing.assert_allclose(np.degrees(yaw.numpy()), [90.0, 180.0, -90.0, 0.0], atol=1e-4)
    np.testing.assert_allclose(np.degrees(pitch.numpy()), 20.0, atol=1e-4)
    np.testing.assert_allclose(radius.numpy(), 3.0, rtol=1e-5)


def test_six_frame_video_round_trip(tmp_path):
    s = OrbitVideoSettings(frames=6, resolution=32, background=(0.0, 0.0, 0.0))
    seen = []
    path = tmp_path / "orbit.mp4"
    r = write_orbit_video(orbit_frames(blob_scene(), s), path, s.fps, total=6, progress=lambda d, t: seen.append((d, t)))
    assert (r.path, r.frames_written, r.cancelled) == (str(path), 6, False)
    assert seen == [(i, 6) for i in range(1, 7)] and mp4s(tmp_path) == ["orbit.mp4"]
    with imageio.get_reader(path) as reader:
        frames = [f for f in reader]
    assert len(frames) == 6 and frames[0].shape == (32, 32, 3)
    assert all(f.std() > 5 for f in frames)  # not one flat colour
    assert np.abs(frames[0].astype(int) - frames[3].astype(int)).mean() > 1  # the camera moved


def test_cancel_and_failure_leave_no_file(tmp_path):
    s = OrbitVideoSettings(frames=6, resolution=16)
    cancel = threading.Event()
    r = write_orbit_video(orbit_frames(blob_scene(), s), tmp_path / "c.mp4", s.fps,
                          progress=lambda d, t: cancel.set() if d == 2 else None, cancel=cancel)
    assert (r.path, r.frames_written, r.cancelled) == (None, 2, True)
    assert list(tmp_path.iterdir()) == []

    def broken():
        yield np.zeros((16, 16, 3), np.uint8)
        raise RuntimeError("renderer died")

    with pytest.raises(RuntimeError, match="renderer died"):
        write_orbit_video(broken(), tmp_path / "f.mp4")
    with pytest.raises(ValueError, match="even width and height"):
        write_orbit_video([np.zeros((15, 16, 3), np.uint8)], tmp_path / "odd.mp4")
    with pytest.raises(ValueError, match="no frames"):
        write_orbit_video([], tmp_path / "empty.mp4")
    with pytest.raises(ValueError, match="must end in .mp4"):
        write_orbit_video([], tmp_path / "x.avi")
    assert list(tmp_path.iterdir()) == []


def test_frames_from_a_function_and_batch_refused():
    s = OrbitVideoSettings(frames=2, resolution=8)
    calls = []
    frames = list(orbit_frames(lambda i: calls.append(i) or blob_scene(20), s))
    assert calls == [0, 1] and frames[0].dtype == np.uint8 and frames[0].shape == (8, 8, 3)
    with pytest.raises(ValueError, match="one scene"):
        next(orbit_frames(GaussianSet.stack([blob_scene(5), blob_scene(5)]), s))


def test_cli_end_to_end_on_a_tiny_generator(tmp_path, capsys):
    from core.generator import PRESETS, Generator
    from core.model_files import save_generator

    torch.manual_seed(0)
    save_generator(Generator(PRESETS["tiny"]), tmp_path / "G.pkl")
    out = tmp_path / "head.mp4"
    args = ["--model", str(tmp_path / "G.pkl"), "--seed", "3", "--psi", "0.7", "--out", str(out),
            "--frames", "3", "--resolution", "16", "--device", "cpu"]
    assert main(args) == 0
    assert "wrote" in capsys.readouterr().out
    with imageio.get_reader(out) as reader:
        assert len([f for f in reader]) == 3
    assert main(["--out", str(tmp_path / "x.mp4")]) == 2
    assert "exactly one of --model" in capsys.readouterr().err
    assert main(["--ply", str(tmp_path / "missing.ply"), "--out", str(tmp_path / "y.mp4")]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["--model", str(tmp_path / "G.pkl"), "--out", str(tmp_path / "z.mp4"), "--resolution", "15"]) == 2
    assert "resolution must be even" in capsys.readouterr().err
    assert mp4s(tmp_path) == ["head.mp4"]


def test_cli_never_replaces_an_existing_video_unless_asked(tmp_path, capsys):
    """Issue 19 item 9: ``--out existing.mp4`` fails before rendering and keeps the file; --overwrite replaces it."""
    from core.ply import write_ply

    write_ply(tmp_path / "scene.ply", blob_scene(20))
    out = tmp_path / "existing.mp4"
    out.write_bytes(b"my video")
    args = ["--ply", str(tmp_path / "scene.ply"), "--out", str(out), "--frames", "2", "--resolution", "16",
            "--device", "cpu"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "exists already" in err and "--overwrite" in err
    assert out.read_bytes() == b"my video"
    assert mp4s(tmp_path) == ["existing.mp4"]  # no temporary file left
    assert main(args + ["--overwrite"]) == 0
    with imageio.get_reader(out) as reader:
        assert len([f for f in reader]) == 2


def test_writer_refuses_a_name_taken_while_encoding(tmp_path):
    """overwrite=False is checked again when the finished video is put in place (a file created meanwhile)."""
    out = tmp_path / "late.mp4"

    def frames():
        yield np.zeros((16, 16, 3), np.uint8)
        out.write_bytes(b"someone else's")
        yield np.zeros((16, 16, 3), np.uint8)

    with pytest.raises(FileExistsError, match="exists already"):
        write_orbit_video(frames(), out, 10, overwrite=False)
    assert out.read_bytes() == b"someone else's"
    assert mp4s(tmp_path) == ["late.mp4"]


def test_an_existing_video_is_replaced_only_when_asked(tmp_path):
    s = OrbitVideoSettings(frames=2, resolution=16)
    path = tmp_path / "v.mp4"
    path.write_bytes(b"the user's own video")
    with pytest.raises(FileExistsError, match="not replaced"):
        write_orbit_video(orbit_frames(blob_scene(), s), path, s.fps)
    assert path.read_bytes() == b"the user's own video"
    assert write_orbit_video(orbit_frames(blob_scene(), s), path, s.fps, overwrite=True).frames_written == 2
    assert path.read_bytes() != b"the user's own video"
