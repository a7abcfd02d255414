"""The viewer's CUDA path, headless: the render worker (the thread the window talks to) serving camera moves and
latent changes for the 512 preset at 1024 x 1024, measured with the worker's own statistics.

The GPU machine has no display, so this times everything up to the texture upload: request -> worker ->
generator (latent changes only) -> gsplat -> uint8 image in host memory, i.e. what the GUI thread receives each
frame. (Uploading a 1024^2 RGB image into a GL texture is a further ~1 ms on a desktop GPU; not measured here.)

- ``viewer_fps_gpu_1024``: camera moves served per second (each a new orbit camera, waiting for each image).
- ``viewer_latent_ms_gpu_1024``: slider-to-image latency of a latent change (new seed: mapping, synthesis,
  render, copy), median.

    python -m bench.viewer_gpu [--frames 300] [--preset cgs512] [--resolution 1024]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from bench.results import device_name, record
from core.generator import PRESETS, Generator
from core.model_files import save_generator
from core.latent import wake_layer_scales
from ui_state.render import CameraParams, LatentParams, RenderParams
from viewer.viewport.worker import RenderWorker


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--latents", type=int, default=30)
    ap.add_argument("--preset", default="cgs512")
    ap.add_argument("--resolution", type=int, default=1024)
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        G = Generator(PRESETS[args.preset])
        wake_layer_scales(G)  # switch the zero-initialised layer scales on, as a trained model has them
        path = Path(tmp) / f"{args.preset}.safetensors"
        save_generator(G, path)
        del G
        base = RenderParams(source=str(path), width=args.resolution, height=args.resolution, device=args.device,
                            latent=LatentParams(seed=0))
        with RenderWorker() as w:
            first = w.wait(w.submit(base), 600)
            if first is None or first.error:
                raise SystemExit(f"first render failed: {first.error if first else 'timeout'}")
            for i in range(20):  # warm-up
                w.wait(w.submit(replace(base, camera=CameraParams(yaw_deg=float(i)))), 60)
            t0 = time.perf_counter()
            render_ms = []
            for i in range(args.frames):
                r = w.wait(w.submit(replace(base, camera=CameraParams(yaw_deg=0.5 * i, pitch_deg=5.0))), 60)
                assert r is not None and r.error is None and not r.stats.synthesized, r.error if r else "timeout"
                render_ms.append(r.stats.total_ms)
            fps = args.frames / (time.perf_counter() - t0)
            latency = []
            for s in range(1, args.latents + 1):
                t = time.perf_counter()
                r = w.wait(w.submit(replace(base, latent=LatentParams(seed=s))), 60)
                assert r is not None and r.error is None and r.stats.synthesized, r.error if r else "timeout"
                latency.append(1000.0 * (time.perf_counter() - t))
            gaussians = r.stats.gaussians
    dev = device_name(args.device)
    note = (f"{args.preset} ({gaussians:,} Gaussians) at {args.resolution}^2, headless render worker "
            f"(request -> uint8 image on the host), worker total {statistics.median(render_ms):.2f} ms median")
    record(f"viewer_fps_gpu_{args.resolution}", fps, "frames/s", dev, note=note)
    record(f"viewer_latent_ms_gpu_{args.resolution}", statistics.median(latency), "ms", dev,
           note=f"latent change (new seed): mapping + synthesis + render + copy, median of {args.latents}; "
                f"p90 {sorted(latency)[int(0.9 * len(latency)) - 1]:.1f} ms")
    print(f"camera moves: {fps:.1f} fps; latent change: {statistics.median(latency):.1f} ms median")


if __name__ == "__main__":
    main()
