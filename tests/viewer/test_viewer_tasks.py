"""The viewer's background jobs and the file work behind its panels (no window)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from viewer import tasks
from viewer.jobs import JobRunner
from viewer.state.ui import UiState

ROOT = Path(__file__).resolve().parents[2]


def wait_done(jobs: JobRunner, name: str):
    assert jobs.wait(name, 60.0)
    return jobs.poll()[name]


def test_job_progress_cancel_and_errors_as_data():
    jobs = JobRunner()
    started = threading.Event()

    def slow(ctx):
        started.set()
        for i in range(1000):
            ctx.progress(i / 1000, f"step {i}")
            ctx.check()
            time.sleep(0.005)
        return "never"

    assert jobs.start("slow", slow)
    started.wait(5)
    assert not jobs.start("slow", slow), "a second job with the same name must be refused while running"
    status = jobs.poll()["slow"]
    assert status.running and 0.0 <= status.progress < 1.0
    jobs.cancel("slow")
    status = wait_done(jobs, "slow")
    assert not status.running and status.error == "cancelled"

    got = []
    jobs.start("boom", lambda ctx: 1 / 0, on_done=got.append)
    status = wait_done(jobs, "boom")
    assert "ZeroDivisionError" in status.error and got == []
    jobs.start("ok", lambda ctx: 42, on_done=got.append)
    status = wait_done(jobs, "ok")
    assert status.error is None and status.progress == 1.0 and got == [42]
    assert jobs.shutdown(1.0) == []


def test_free_path_never_overwrites(tmp_path):
    p = tmp_path / "head.ply"
    assert tasks.free_path(p) == p
    p.write_bytes(b"x")
    assert tasks.free_path(p) == tmp_path / "head_2.ply"
    (tmp_path / "head_2.ply").write_bytes(b"x")
    assert tasks.free_path(p) == tmp_path / "head_3.ply"


def test_latent_files_round_trip_and_refuse_bad_input(tmp_path):
    ui = UiState()
    ui.info.current_ws = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    ui.latent.latent = type(ui.latent.latent)(seed=9)
    jobs = JobRunner()
    tasks.start_save_latent(jobs, ui, str(tmp_path / "a.npz"))
    assert wait_done(jobs, "save_latent").error is None
    np.testing.assert_array_equal(tasks.read_latent(tmp_path / "a.npz"), ui.info.current_ws)
    tasks.start_load_latent(jobs, ui, str(tmp_path / "a.npz"))
    assert wait_done(jobs, "load_latent").error is None
    assert ui.latent.latent.space == "w" and len(ui.latent.latent.latent) == 40
    np.savez(tmp_path / "b.npz", w=np.zeros((1, 3, 8), np.float32))
    assert tasks.read_latent(tmp_path / "b.npz").shape == (3, 8)
    (tmp_path / "junk.npz").write_bytes(b"not a zip file at all")
    np.savez(tmp_path / "nokey.npz", z=np.zeros(3))
    np.savez(tmp_path / "nan.npz", ws=np.full((2, 4), np.nan, np.float32))
    np.save(tmp_path / "obj.npy", np.array([object()], dtype=object), allow_pickle=True)
    for name, match in (("junk.npz", "not a readable"), ("nokey.npz", "no 'ws' or 'w'"), ("nan.npz", "finite"),
                        ("missing.npz", "not a readable")):
        with pytest.raises(ValueError, match=match):
            tasks.read_latent(tmp_path / name)
    tasks.start_load_latent(jobs, ui, str(tmp_path / "junk.npz"))
    assert "not a readable" in wait_done(jobs, "load_latent").error


def test_save_ply_and_image_and_inspect(tmp_path):
    from core.gaussians import GaussianSet
    from core.ply import read_ply

    g = torch.Generator().manual_seed(0)
    gs = GaussianSet(torch.rand(50, 3, generator=g) - 0.5, torch.randn(50, 4, generator=g), torch.full((50, 3), -4.0),
                     torch.randn(50, generator=g), torch.randn(50, 1, 3, generator=g))
    ui, jobs = UiState(), JobRunner()
    tasks.start_save_ply(jobs, ui, gs, str(tmp_path / "out" / "h.ply"))
    assert wait_done(jobs, "save_ply").error is None
    back = read_ply(tmp_path / "out" / "h.ply")
    torch.testing.assert_close(back.means, gs.means)
    tasks.start_save_ply(jobs, ui, None, str(tmp_path / "none.ply"))
    assert "nothing to save" in ui.info.messages[-1].text
    img = np.random.default_rng(1).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    tasks.start_save_image(jobs, ui, img, str(tmp_path / "out" / "v.png"))
    assert wait_done(jobs, "save_image").error is None
    from PIL import Image

    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / "v.png")), img)
    tasks.start_inspect(jobs, ui, gs)
    wait_done(jobs, "inspect")
    assert ui.info.inspect is not None and ui.info.inspect.count == 50
    labels = [label for label, _ in ui.info.inspect.histograms]
    assert labels[:2] == ["scale (log10)", "opacity"] and len(labels) == 8
    opacity = dict(ui.info.inspect.histograms)["opacity"]
    assert opacity.counts.sum() == 50 and opacity.min >= 0 and opacity.max <= 1


def test_recent_list_survives_corruption(tmp_path):
    f = tasks.recent_file(tmp_path)
    assert tasks.read_recent(f) == []
    tasks.write_recent(f, ["a.pkl", "b.ply"])
    assert tasks.read_recent(f) == ["a.pkl", "b.ply"]
    f.write_text("{not json")
    assert tasks.read_recent(f) == []
    f.write_text('{"a": 1}')
    assert tasks.read_recent(f) == []


def test_check_source(tmp_path):
    assert tasks.check_source("random:tiny") == ""
    assert "unknown built-in" in tasks.check_source("random:huge")
    assert "file not found" in tasks.check_source(str(tmp_path / "x.pkl"))
    assert "folder" in tasks.check_source(str(tmp_path))


def test_thumbnail_is_square_and_small():
    img = np.arange(100 * 60 * 3, dtype=np.uint32).reshape(60, 100, 3).astype(np.uint8)
    t = tasks.thumbnail(img, 16)
    assert t.shape == (16, 16, 3) and t.flags.c_contiguous


def test_run_viewer_without_display_fails_clearly():
    if sys.platform != "linux":
        pytest.skip("the no-display check is Linux-only")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    r = subprocess.run([sys.executable, "run_viewer.py"], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2
    assert "no display" in r.stderr and "xvfb-run" in r.stderr
