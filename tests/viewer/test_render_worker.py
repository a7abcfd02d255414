"""The render worker (viewer/viewport/worker.py) and the render state (ui_state/render.py): CPU, tiny generator, no display.

Note: tests/viewer has no __init__.py on purpose (it would shadow the ``viewer`` package).
"""

from __future__ import annotations

import dataclasses
from dataclasses import replace as dc_replace
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from core.camera import default_camera
from core.generator import PRESETS, Generator
from core.ply import read_ply, write_ply
from core.render import render
from ui_state.render import CameraParams, LatentParams, RenderParams, RenderResult, SliderParams
from viewer.jobs import JobRunner
from viewer.viewport.requests import camera_from_params
from viewer.viewport.worker import RenderWorker

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 120.0
BASE = RenderParams(source="random:tiny", width=40, height=32, device="cpu")


@pytest.fixture
def worker():
    w = RenderWorker()
    yield w
    w.close()


def run(w: RenderWorker, params: RenderParams) -> RenderResult:
    gen = w.submit(params)
    r = w.wait(gen, TIMEOUT)
    assert r is not None and r.generation == gen, "no result for the request in time"
    return r


def ok(r: RenderResult) -> RenderResult:
    assert r.error is None, r.error
    return r


# ---------------------------------------------------------------- state


def test_state_imports_no_torch():
    code = ("import sys, ui_state.ui, ui_state.actions, ui_state.camera_control; "
            "bad = [m for m in ('torch', 'core', 'numpy.torch') if m in sys.modules]; print(bad)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_params_are_frozen_hashable_and_validated():
    a = RenderParams(camera=CameraParams(yaw_deg=10.0), latent=LatentParams(seed=3))
    b = RenderParams(camera=CameraParams(yaw_deg=10.0), latent=LatentParams(seed=3))
    assert a == b and hash(a) == hash(b) and a != dataclasses.replace(a, low_res=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.width = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        RenderParams(yaw=0.3)  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        RenderParams(mode="normals")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        CameraParams(radius=0.0)
    assert not hasattr(a, "__dict__")  # slotted


def test_default_camera_matches_core():
    cam = camera_from_params(CameraParams(), 64, 64)
    ref = default_camera()
    torch.testing.assert_close(cam.cam2world, ref.cam2world, atol=1e-5, rtol=0)
    torch.testing.assert_close(cam.intrinsics, ref.intrinsics, atol=1e-4, rtol=0)
    # fly mode at the orbit camera's position with the same angles is the same camera
    orbit = CameraParams(yaw_deg=25.0, pitch_deg=-10.0, radius=3.0)
    pos = tuple(camera_from_params(orbit, 64, 64).centers.tolist())
    fly = camera_from_params(dataclasses.replace(orbit, mode="fly", position=pos), 64, 64)
    torch.testing.assert_close(fly.cam2world, camera_from_params(orbit, 64, 64).cam2world, atol=1e-5, rtol=0)


# ---------------------------------------------------------------- worker


def test_modes_shapes_and_dtypes(worker):
    for mode in ("rgb", "alpha", "depth", "centres"):
        r = ok(run(worker, dataclasses.replace(BASE, mode=mode)))
        assert r.image.shape == (32, 40, 3) and r.image.dtype == np.uint8, mode
        assert r.image.flags.c_contiguous
        assert (r.stats.width, r.stats.height, r.stats.gaussians) == (40, 32, PRESETS["tiny"].num_gaussians)
        assert r.stats.random_weights and r.stats.source_kind == "generator"
        if mode == "alpha":
            assert (r.image[..., 0] == r.image[..., 2]).all()
    low = ok(run(worker, dataclasses.replace(BASE, width=64, height=48, low_res=True)))
    assert low.image.shape == (24, 32, 3) and low.stats.backend == "cpu-splats"  # half size on the CPU path
    low = ok(run(worker, dataclasses.replace(BASE, width=64, height=48, low_res=True, mode="depth")))
    assert low.image.shape == (12, 16, 3)  # a quarter with the torch reference (and gsplat)
    # rgb on a coloured background: empty corners show it
    red = ok(run(worker, dataclasses.replace(BASE, background=(1.0, 0.0, 0.0))))
    assert tuple(red.image[0, 0]) == (255, 0, 0)


def test_camera_change_reuses_gaussians_latent_change_regenerates(worker):
    first = ok(run(worker, BASE))
    assert first.stats.synthesized and first.stats.synthesis_count == 1
    for change in (dict(camera=CameraParams(yaw_deg=30.0)), dict(width=24), dict(mode="depth"),
                   dict(splat_scale=2.0), dict(low_res=True)):
        r = ok(run(worker, dataclasses.replace(BASE, **change)))
        assert not r.stats.synthesized and r.stats.synthesis_count == 1, change
    moved = ok(run(worker, dataclasses.replace(BASE, camera=CameraParams(yaw_deg=30.0))))
    assert not np.array_equal(moved.image, first.image)
    r = ok(run(worker, dataclasses.replace(BASE, latent=LatentParams(seed=1))))
    assert r.stats.synthesized and r.stats.synthesis_count == 2
    # (no image comparison: a random-init generator ignores w, its layer scales from w start at zero)
    r = ok(run(worker, dataclasses.replace(BASE, latent=LatentParams(seed=1, psi=0.3))))
    assert r.stats.synthesis_count == 3
    again = ok(run(worker, BASE))  # back to the first latent: still cached, same picture
    assert again.stats.synthesis_count == 3 and np.array_equal(again.image, first.image)


def test_explicit_latents(worker):
    cfg = PRESETS["tiny"]
    z = torch.randn(1, cfg.z_dim, generator=torch.Generator().manual_seed(5))
    by_seed = ok(run(worker, dataclasses.replace(BASE, latent=LatentParams(seed=5))))
    by_z = ok(run(worker, dataclasses.replace(BASE, latent=LatentParams(latent=tuple(z[0].tolist())))))
    assert np.array_equal(by_seed.image, by_z.image)
    w = ok(run(worker, dataclasses.replace(BASE, latent=LatentParams(space="w", latent=(0.1,) * cfg.w_dim))))
    assert w.image.shape == (32, 40, 3)
    bad = run(worker, dataclasses.replace(BASE, latent=LatentParams(latent=(0.0, 1.0))))
    assert bad.image is None and "z_dim" in bad.error


def test_latest_wins(worker, monkeypatch):
    gate, served = threading.Event(), []
    original = worker._serve

    def gated(generation, params):
        gate.wait(TIMEOUT)
        served.append(generation)
        return original(generation, params)

    monkeypatch.setattr(worker, "_serve", gated)
    requests = [dataclasses.replace(BASE, camera=CameraParams(yaw_deg=float(i))) for i in range(20)]
    gens = [worker.submit(p) for p in requests]
    assert gens == sorted(gens) and len(set(gens)) == 20
    assert worker.latest() is None  # submit never waited for a render
    gate.set()
    r = ok(worker.wait(gens[-1], TIMEOUT))
    assert r.generation == gens[-1] and r.params == requests[-1]
    assert served[-1] == gens[-1] and len(served) <= 2, served  # the blocked first one, then only the newest
    assert worker.latest().generation == gens[-1]


def test_errors_are_data_and_the_worker_survives(worker, tmp_path):
    missing = run(worker, dataclasses.replace(BASE, source=str(tmp_path / "missing.pkl")))
    assert missing.image is None and "FileNotFoundError" in missing.error
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"\x80\x04not a pickle at all" * 10)
    bad = run(worker, dataclasses.replace(BASE, source=str(junk)))
    assert bad.image is None and bad.error and "Traceback" in bad.error
    broken_ply = tmp_path / "broken.ply"
    broken_ply.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 100\nend_header\n")
    assert run(worker, dataclasses.replace(BASE, source=str(broken_ply))).error
    unknown = run(worker, dataclasses.replace(BASE, source="random:huge"))
    assert "unknown built-in source" in unknown.error
    assert worker.alive
    good = ok(run(worker, BASE))
    assert good.image.shape == (32, 40, 3)


def test_ply_source_matches_core_render(worker, tmp_path):
    torch.manual_seed(0)
    G = Generator(PRESETS["tiny"]).eval()
    with torch.no_grad():
        scene = G(torch.randn(1, PRESETS["tiny"].z_dim)).gaussians[0]
    path = tmp_path / "head.ply"
    write_ply(path, scene)
    params = dataclasses.replace(BASE, source=str(path), camera=CameraParams(yaw_deg=20.0, pitch_deg=5.0),
                                 background=(0.2, 0.3, 0.4))
    r = ok(run(worker, params))
    assert r.stats.source_kind == "scene" and not r.stats.random_weights
    assert r.stats.gaussians == scene.num_gaussians
    cams = camera_from_params(params.camera, 40, 32)
    with torch.no_grad():
        ref = render(read_ply(path), cams, 40, 32, background=(0.2, 0.3, 0.4), mode="rgb", backend="torch").color
    expected = (ref.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    assert np.array_equal(r.image, expected)
    assert r.stats.synthesis_count == 0  # a scene is never synthesized


def test_close_joins_the_thread():
    w = RenderWorker()
    gen = w.submit(BASE)
    w.close()
    assert not w.alive
    with pytest.raises(RuntimeError):
        w.submit(BASE)
    r = w.latest()
    assert r is None or r.generation == gen
    with RenderWorker() as w2:
        ok(run(w2, BASE))
    assert not w2.alive


def test_latent_grid_sliders_and_scene_output(worker):
    """Drag-plot grid corners equal their seeds; sliders move the latent through core.editing and 0 is exact;
    "scene" output carries GL arrays and both the base and the edited ws."""
    from core.editing import pca_direction_set
    from core.latent import load_generator_source
    from viewer.viewport.requests import latent_ws

    G = load_generator_source("random:tiny")
    n = 4
    corner = latent_ws(G, LatentParams(seed=5, grid_xy=(2.0, 1.0), grid_size=n, space="w"), "cpu")
    direct = latent_ws(G, LatentParams(seed=5 + 2 + 1 * n), "cpu")
    torch.testing.assert_close(corner, direct)
    mid = latent_ws(G, LatentParams(seed=5, grid_xy=(2.5, 1.0), grid_size=n, space="w"), "cpu")
    right = latent_ws(G, LatentParams(seed=5 + 3 + 1 * n), "cpu")
    torch.testing.assert_close(mid, 0.5 * (direct + right))
    dirs = pca_direction_set(G, "0" * 64, 256, 4)
    worker.set_directions(BASE.source, 1, dirs)
    plain = ok(run(worker, dc_replace(BASE, output="scene", latent=LatentParams(seed=2))))
    moved = ok(run(worker, dc_replace(BASE, output="scene", latent=LatentParams(seed=2),
                                      sliders=SliderParams((("PCA0", 2.0),), 1))))
    np.testing.assert_array_equal(moved.base_ws, plain.ws)
    expected = plain.ws + dirs.get("PCA0").offset(2.0).astype(np.float32)  # PCA: every slot
    np.testing.assert_allclose(moved.ws, expected, atol=1e-5)
    assert not np.array_equal(moved.ws, plain.ws)
    unknown = ok(run(worker, dc_replace(BASE, output="scene", latent=LatentParams(seed=2),
                                        sliders=SliderParams((("nope", 1.0),), 1))))
    np.testing.assert_array_equal(unknown.ws, plain.ws)  # a slider the model does not have adds nothing
    stale = run(worker, dc_replace(BASE, latent=LatentParams(seed=2), sliders=SliderParams((("PCA0", 1.0),), 7)))
    assert stale.error and "directions" in stale.error
    assert plain.image is None and plain.splats is not None and len(plain.splats) == plain.stats.gaussians
    assert plain.ws.shape == (G.config.num_ws, G.config.w_dim)


def test_worker_jobs_interleave_with_renders_and_cancel(worker):
    """A GPU job that is a generator runs one step per worker turn, renders are served in between, progress
    and errors are data, and a cancel closes it (its finally block runs)."""
    jobs = JobRunner(worker)
    steps, closed, gate = [], [], threading.Event()

    def long_job(ctx, gpu):
        G = gpu.generator("random:tiny", "cpu")
        try:
            for i in range(10_000):
                steps.append(i)
                ctx.progress(i / 10_000, f"step {i}")
                if i == 2:
                    gate.set()
                yield
        finally:
            closed.append(G.config.z_dim)

    assert jobs.start_on_worker("video", long_job)
    assert gate.wait(TIMEOUT)
    r = ok(run(worker, BASE))  # served while the job still runs
    assert r.image is not None and jobs.running("video")
    jobs.cancel("video")
    assert jobs.wait("video", TIMEOUT)
    status = jobs.poll()["video"]
    assert status.error == "cancelled" and closed == [64] and len(steps) < 10_000
    got = []
    assert jobs.start_on_worker("inspect", lambda ctx, gpu: gpu.generator("random:tiny", "cpu").config.w_dim,
                                on_done=got.append)
    assert jobs.wait("inspect", TIMEOUT)
    assert jobs.poll()["inspect"].error is None and got == [64]
    assert jobs.start_on_worker("match", lambda ctx, gpu: gpu.generator(str(Path("/nonexistent.pkl")), "cpu"))
    assert jobs.wait("match", TIMEOUT)
    assert "FileNotFoundError" in jobs.poll()["match"].error
    with pytest.raises(ValueError, match="job name"):
        jobs.start("no such job", lambda ctx: None)  # type: ignore[arg-type]


def test_cpu_images_use_the_cpu_splat_rasterizer_and_match_the_reference(worker):
    """RGB and alpha on the CPU come from viewer/viewport/cpu_splats.py; depth and centres from
    core.render."""
    params = dataclasses.replace(BASE, camera=CameraParams(yaw_deg=-30.0, pitch_deg=10.0),
                                 background=(0.9, 0.8, 0.1))
    r = ok(run(worker, params))
    assert r.stats.backend == "cpu-splats" and worker.cpu_splats_error is None
    with torch.no_grad():  # the Gaussians the worker drew
        ref = render(r.scene, camera_from_params(params.camera, 40, 32), 40, 32, background=(0.9, 0.8, 0.1),
                     mode="rgb", backend="torch").color
    expected = (ref.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    assert np.abs(r.image.astype(int) - expected.astype(int)).max() <= 1
    assert ok(run(worker, dataclasses.replace(params, mode="alpha"))).stats.backend == "cpu-splats"
    assert ok(run(worker, dataclasses.replace(params, mode="depth"))).stats.backend == "torch"


def test_without_the_cpu_rasterizer_the_worker_renders_with_torch(monkeypatch):
    from viewer.viewport import cpu_splats

    monkeypatch.setattr(cpu_splats, "unavailable", lambda: "CPU splat rasterizer unavailable (test)")
    with RenderWorker() as w:
        r = ok(run(w, BASE))
        assert r.stats.backend == "torch" and w.cpu_splats_error == "CPU splat rasterizer unavailable (test)"
