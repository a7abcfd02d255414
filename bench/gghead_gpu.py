"""A GGHead model in the viewer's CUDA path, headless, measured exactly as ``bench/viewer_gpu.py`` measures
cgs512: the render worker (the thread the window talks to) serving camera moves and latent changes at
1024 x 1024, with the worker's own statistics.

The model is the released FFHQ-512 layout (GGHEAD-1: 235,156 Gaussians from a 256^2 UV map, SH degree 1,
28.8 M parameters) with random weights, written as a GGHead-format ``checkpoint-<kimg>.pkl`` by
:mod:`core.gghead.format_writer` and opened by the worker through ``core.model_files.load_generator``, as a
user's file would be. (No released checkpoint is available here; rendering cost depends on the Gaussians' sizes
and opacities, which random weights only approximate.)

- ``gghead_fps_gpu_1024``: camera moves served per second (each a new orbit camera, waiting for each image).
- ``gghead_latent_ms_gpu_1024``: slider-to-image latency of a latent change (new seed: mapping, synthesis,
  UV decoding, render, copy), median.

    python -m bench.gghead_gpu [--frames 300] [--latents 30] [--resolution 1024]
    python -m bench.gghead_gpu --preset tiny --device cpu --resolution 64 --frames 3 --latents 2 --warmup 1 \
        --no-record
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
from core.gghead.config import PRESETS
from core.gghead.format_writer import write_gghead_checkpoint
from ui_state.render import CameraParams, LatentParams, RenderParams
from viewer.viewport.worker import RenderWorker


def _time_ms(fn, device: str) -> float:
    """One call of ``fn`` in ms: CUDA events on a CUDA device, the host clock otherwise."""
    if not device.startswith("cuda"):
        t = time.perf_counter()
        fn()
        return 1000.0 * (time.perf_counter() - t)
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    fn()
    b.record()
    torch.cuda.synchronize()
    return a.elapsed_time(b)


def stage_times(path: Path, resolution: int, device: str, repeats: int = 20) -> dict[str, float]:
    """Median ms of each stage of a latent change on a directly loaded copy of the model (CUDA events):
    mapping, StyleGAN2 backbone (fp32 / bf16 autocast), the whole synthesis with UV decoding (fp32 / bf16) and
    one render at ``resolution``."""
    from core.camera import orbit_cameras
    from core.model_files import load_generator
    from core.render import render

    G = load_generator(path, device=device).generator
    z = torch.randn(1, G.config.z_dim, device=device)
    cam = orbit_cameras(0.0, 0.0).to(device)
    with torch.no_grad():
        ws = G.map(z, 0.7)
        gs = G.synthesis(ws).gaussians[0]

        def bf16(fn):
            def run():
                G.feature_dtype = torch.bfloat16
                try:
                    return fn()
                finally:
                    G.feature_dtype = None
            return run

        backbone = lambda: G.synthesis_network(ws, G.config.noise_mode)  # noqa: E731
        synth = lambda: G.synthesis(ws)  # noqa: E731
        amp = lambda: torch.autocast(torch.device(device).type, torch.bfloat16)  # noqa: E731

        def backbone_bf16():
            with amp():
                return backbone()

        stages = {"mapping": lambda: G.map(z, 0.7), "backbone fp32": backbone, "backbone bf16": backbone_bf16,
                  "synthesis fp32": synth, "synthesis bf16": bf16(synth),
                  f"render {resolution}": lambda: render(gs, cam, resolution, resolution)}
        out = {}
        for name, fn in stages.items():
            for _ in range(3):
                fn()
            out[name] = statistics.median(_time_ms(fn, device) for _ in range(repeats))
    return out


def measure(preset: str, resolution: int, device: str, frames: int, latents: int, warmup: int = 20,
            profile: bool = False) -> dict:
    """Run the worker on a written GGHead checkpoint; returns fps, latency list and counts (``profile``: also
    the stage times and the latency with a bf16 backbone)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "checkpoint-023200.pkl"
        t = time.perf_counter()
        write_gghead_checkpoint(path, PRESETS[preset], entries="G_ema", seed=0)
        write_s = time.perf_counter() - t
        base = RenderParams(source=str(path), width=resolution, height=resolution, device=device,
                            latent=LatentParams(seed=0))
        with RenderWorker() as w:
            t = time.perf_counter()
            first = w.wait(w.submit(base), 600)
            load_s = time.perf_counter() - t
            if first is None or first.error:
                raise SystemExit(f"first render failed: {first.error if first else 'timeout'}")
            for i in range(warmup):
                w.wait(w.submit(replace(base, camera=CameraParams(yaw_deg=float(i)))), 60)
            t0 = time.perf_counter()
            render_ms = []
            for i in range(frames):
                r = w.wait(w.submit(replace(base, camera=CameraParams(yaw_deg=0.5 * i, pitch_deg=5.0))), 60)
                assert r is not None and r.error is None and not r.stats.synthesized, r.error if r else "timeout"
                render_ms.append(r.stats.total_ms)
            fps = frames / (time.perf_counter() - t0)
            latency = []
            for s in range(1, latents + 1):
                t = time.perf_counter()
                r = w.wait(w.submit(replace(base, latent=LatentParams(seed=s))), 60)
                assert r is not None and r.error is None and r.stats.synthesized, r.error if r else "timeout"
                latency.append(1000.0 * (time.perf_counter() - t))
            extra = {}
            if profile:
                w.call(lambda gpu: setattr(gpu.generator(str(path), device), "feature_dtype", torch.bfloat16), 60)
                bf16 = []
                for s in range(1001, 1001 + latents):
                    t = time.perf_counter()
                    r = w.wait(w.submit(replace(base, latent=LatentParams(seed=s))), 60)
                    assert r is not None and r.error is None, r.error if r else "timeout"
                    bf16.append(1000.0 * (time.perf_counter() - t))
                extra = dict(latency_bf16=bf16, stages=stage_times(path, resolution, device))
    return dict(fps=fps, latency=latency, render_ms=render_ms, gaussians=r.stats.gaussians, write_s=write_s,
                load_s=load_s, backend=r.stats.backend, **extra)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--latents", type=int, default=30)
    ap.add_argument("--preset", default="gghead512", choices=sorted(PRESETS))
    ap.add_argument("--resolution", type=int, default=1024)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--warmup", type=int, default=20, help="camera moves before timing")
    ap.add_argument("--no-record", action="store_true", help="print only; do not write bench/results.json")
    ap.add_argument("--profile", action="store_true",
                    help="also print each stage's time and the latency with a bf16 backbone")
    args = ap.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda needs CUDA (use --device cpu with --preset tiny for a plumbing check)")
    m = measure(args.preset, args.resolution, args.device, args.frames, args.latents, args.warmup, args.profile)
    lat = sorted(m["latency"])
    p90 = lat[max(0, int(0.9 * len(lat)) - 1)]
    print(f"{args.preset}: {m['gaussians']:,} Gaussians at {args.resolution}^2 on {args.device} "
          f"({m['backend']}); checkpoint written in {m['write_s']:.1f} s, first image after {m['load_s']:.1f} s")
    print(f"camera moves: {m['fps']:.1f} fps (worker {statistics.median(m['render_ms']):.2f} ms median); "
          f"latent change: {statistics.median(lat):.1f} ms median, p90 {p90:.1f} ms")
    if "stages" in m:
        print(f"latent change with a bf16 backbone: {statistics.median(m['latency_bf16']):.1f} ms median")
        print("stages (median ms): " + ", ".join(f"{k} {v:.2f}" for k, v in m["stages"].items()))
    if args.no_record:
        return
    dev = device_name(args.device)
    note = (f"{args.preset} GGHead layout ({m['gaussians']:,} Gaussians, SH degree 1, random weights) at "
            f"{args.resolution}^2, headless render worker (request -> uint8 image on the host), worker total "
            f"{statistics.median(m['render_ms']):.2f} ms median")
    record(f"gghead_fps_gpu_{args.resolution}", m["fps"], "frames/s", dev, note=note)
    record(f"gghead_latent_ms_gpu_{args.resolution}", statistics.median(lat), "ms", dev,
           note=f"latent change (new seed): mapping + StyleGAN2 synthesis + UV decoding + render + copy, median "
                f"of {args.latents}; p90 {p90:.1f} ms")


if __name__ == "__main__":
    main()
