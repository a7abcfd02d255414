"""The CPU splat rasterizer alone (viewer/viewport/cpu_splats.py): what the render worker spends on one
picture of the default model without CUDA.

Draws the default model (seed 0, psi 0.7, the studio's default camera distance) into a 512 x 512 image from
``--views`` yaws round the head and records medians over the views:

- ``viewer_cpu_splats_ms_cpu_512``: one whole draw (numba projection and sort, binning, the tiles on all
  cores, the uint8 image), as the worker runs it.
- ``viewer_cpu_splats_project_ms_cpu_512``: the projection and sort alone (part of the draw).
- ``viewer_cpu_splats_1thread_ms_cpu_512``: the whole draw on one thread.

Variants are interleaved view by view, so a machine whose speed drifts shifts them alike. The same splats
through the OpenGL path: ``bench.gl_draw``; the whole window: ``bench.viewer_fps``.

    python -m bench.cpu_splats [--views 48] [--model PATH] [--resolution 512]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench.results import record
from bench.viewer_window import cpu_device, machine_load


def measure(model: str | None, resolution: int, views: int) -> dict:
    """Median milliseconds per whole draw (all cores, one thread) and per projection over ``views`` yaws."""
    import torch

    from bench.scenes import default_model_head
    from ui_state.render import CameraParams
    from viewer.viewport import cpu_splats, splats

    torch.set_num_threads(1)
    arrays = splats.splat_arrays(default_model_head(model))
    full, single = cpu_splats.CpuSplatRasterizer(), cpu_splats.CpuSplatRasterizer(threads=1)
    times: dict[str, list[float]] = {"draw": [], "project": [], "single": []}
    counts = []
    try:
        for i in range(-2, views):  # two warm-up views
            cam = CameraParams(yaw_deg=360.0 * max(i, 0) / views)
            view, K = splats.view_matrix(cam), splats.intrinsics(cam, resolution, resolution)
            t0 = time.perf_counter()
            cpu_splats.project_splats(arrays, view, K, resolution, resolution)
            t1 = time.perf_counter()
            full.draw(arrays, view, K, resolution, resolution, (1.0, 1.0, 1.0))
            t2 = time.perf_counter()
            single.draw(arrays, view, K, resolution, resolution, (1.0, 1.0, 1.0))
            t3 = time.perf_counter()
            if i >= 0:
                times["project"].append(t1 - t0)
                times["draw"].append(t2 - t1)
                times["single"].append(t3 - t2)
                counts.append(full.count)
    finally:
        full.close()
        single.close()
    out = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
    out["splats"], out["threads"] = int(np.median(counts)), full.threads
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--views", type=int, default=48)
    ap.add_argument("--model", default=None, help="default: the embedded default model")
    ap.add_argument("--resolution", type=int, default=512)
    args = ap.parse_args()
    load_before = machine_load()
    m = measure(args.model, args.resolution, args.views)
    note = (f"{m['splats']:,} visible splats (median view), {args.model or 'default model'}, seed 0, "
            f"psi 0.7, {args.views} yaws, {m['threads']} threads; {load_before} before, "
            f"{machine_load()} after")
    r = args.resolution
    for key, name in (("draw", f"viewer_cpu_splats_ms_cpu_{r}"),
                      ("project", f"viewer_cpu_splats_project_ms_cpu_{r}"),
                      ("single", f"viewer_cpu_splats_1thread_ms_cpu_{r}")):
        print(f"{name}: {m[key]:.2f} ms ({note})")
        record(name, m[key], "ms", cpu_device(), note=note)


if __name__ == "__main__":
    main()
