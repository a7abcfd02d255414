"""Where an OpenGL splat frame goes on this machine: the viewer's splat draw alone, without the window.

Draws the default model (seed 0, psi 0.7, the studio's default camera distance) with
``viewer.viewport.gl_splats.GLSplatRenderer`` into a 512 x 512 target from ``--views`` yaws round the head,
``glFinish`` after each, in a hidden glfw window (re-run under ``xvfb-run`` when there is no display), and
records medians over the views:

- ``viewer_gl_draw_ms_cpu_512``: one full draw (numpy projection and sort, upload, llvmpipe's vertex and fill
  work, the resolve pass).
- ``viewer_gl_project_ms_cpu_512``: the numpy projection and sort alone (part of the draw).
- ``viewer_gl_fixed_ms_cpu_512``: the same splats drawn as quads of one pixel: the draw without its fill, so
  the draw minus this is what the splats' footprints cost.

Variants are interleaved view by view in one process, so a machine whose speed drifts (a shared virtual
machine) shifts them alike. ``bench.viewer_fps`` measures the whole window.

    python -m bench.gl_draw [--views 48] [--model PATH] [--resolution 512]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

import numpy as np

from bench.results import record
from bench.viewer_window import cpu_device, machine_load


def _context(width: int = 64, height: int = 64):
    import imgui_bundle  # noqa: F401  (before glfw: both must use imgui_bundle's libglfw)
    import glfw

    if not glfw.init():
        raise SystemExit("glfw.init() failed (no display?)")
    for hint, value in ((glfw.VISIBLE, glfw.FALSE), (glfw.CONTEXT_VERSION_MAJOR, 3), (glfw.CONTEXT_VERSION_MINOR, 3),
                        (glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE), (glfw.OPENGL_FORWARD_COMPAT, glfw.TRUE)):
        glfw.window_hint(hint, value)
    win = glfw.create_window(width, height, "bench.gl_draw", None, None)
    if not win:
        raise SystemExit("could not create a hidden OpenGL 3.3 core window")
    glfw.make_context_current(win)


def measure(model: str | None, resolution: int, views: int) -> dict:
    """Median milliseconds per draw, projection and fill-less draw over ``views`` yaws, and the GL renderer."""
    import torch
    from OpenGL import GL

    from bench.scenes import default_model_head
    from ui_state.render import CameraParams
    from viewer.viewport import gl_splats

    torch.set_num_threads(1)
    arrays = gl_splats.splat_arrays(default_model_head(model))

    class OnePixelQuads(gl_splats.GLSplatRenderer):
        def _instances(self, *args):  # the same splats, every quad one pixel
            return _one_pixel(super()._instances(*args))

    full, fixed = gl_splats.GLSplatRenderer(), OnePixelQuads()
    full.set_scene(arrays)
    fixed.set_scene(arrays)
    cams = [CameraParams(yaw_deg=360.0 * i / views) for i in range(views)]
    times: dict[str, list[float]] = {"draw": [], "project": [], "fixed": []}
    counts = []
    for cam in cams[:2]:  # warm-up: shaders compiled, targets allocated
        full.draw_camera(cam, resolution, resolution)
        fixed.draw_camera(cam, resolution, resolution)
        GL.glFinish()
    for cam in cams:
        view, K = gl_splats.view_matrix(cam), gl_splats.intrinsics(cam, resolution, resolution)
        t0 = time.perf_counter()
        gl_splats.project(arrays, view, K, resolution, resolution)
        t1 = time.perf_counter()
        full.draw_camera(cam, resolution, resolution)
        GL.glFinish()
        t2 = time.perf_counter()
        fixed.draw_camera(cam, resolution, resolution)
        GL.glFinish()
        t3 = time.perf_counter()
        times["project"].append(t1 - t0)
        times["draw"].append(t2 - t1)
        times["fixed"].append(t3 - t2)
        counts.append(full.count)
    out = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
    out["splats"] = int(np.median(counts))
    out["gl_renderer"] = GL.glGetString(GL.GL_RENDERER).decode()
    full.release()
    fixed.release()
    return out


def _one_pixel(instances: np.ndarray) -> np.ndarray:
    instances[:, 2:4] = 0.5  # half-size: the quad covers the pixel the centre falls in
    return instances


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--views", type=int, default=48)
    ap.add_argument("--model", default=None, help="default: the embedded default model")
    ap.add_argument("--resolution", type=int, default=512)
    args = ap.parse_args()
    if not os.environ.get("DISPLAY") and shutil.which("xvfb-run") and not os.environ.get("BENCH_GL_DRAW_CHILD"):
        cmd = ["xvfb-run", "-a", "-s", "-screen 0 640x480x24", sys.executable, "-m", "bench.gl_draw", *sys.argv[1:]]
        raise SystemExit(subprocess.call(cmd, env={**os.environ, "BENCH_GL_DRAW_CHILD": "1"}))
    _context()
    load_before = machine_load()
    m = measure(args.model, args.resolution, args.views)
    note = (f"{m['splats']:,} visible splats (median view), {args.model or 'default model'}, seed 0, psi 0.7, "
            f"{args.views} yaws, {m['gl_renderer']}; {load_before} before, {machine_load()} after")
    r = args.resolution
    for key, name in (("draw", f"viewer_gl_draw_ms_cpu_{r}"), ("project", f"viewer_gl_project_ms_cpu_{r}"),
                      ("fixed", f"viewer_gl_fixed_ms_cpu_{r}")):
        print(f"{name}: {m[key]:.2f} ms ({note})")
        record(name, m[key], "ms", cpu_device(), note=note)


if __name__ == "__main__":
    main()
