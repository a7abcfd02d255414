"""Frames per second of the studio window while the camera orbits, from the app's own frame statistics.

Runs ``run_viewer.py --bench-orbit-s S`` in a fresh process (under ``xvfb-run`` when there is no display), which
orbits the camera at 90 deg/s once the head is on screen, then writes its per-frame log; this script turns the
log into figures:

- ``viewer_fps_cpu_512``: new pictures on screen per second at 512 x 512 without CUDA (the display path
  "auto" chooses: the render worker's CPU splat rasterizer, or the OpenGL splats without numba), each a new
  camera and a full-resolution splat draw. Window frames that show no new picture do not count (the image
  path's window may draw more frames than the worker makes pictures; both rates are in the note).
- ``viewer_fps_cpu_512_dragging``: the same with the progressive drag mode (the CPU rasterizer's images at
  half the size while the camera moves; the OpenGL path draws at 1/2 .. 1/6 of the size, the largest that
  kept the last draw under 22 ms; full size when it stops).

    python -m bench.viewer_fps [--seconds 10] [--model PATH] [--resolution 512] [--display auto]
"""

from __future__ import annotations

import argparse

from bench.results import record
from bench.viewer_window import cpu_device, machine_load, run_viewer_bench


def run_orbit(model: str | None, resolution: int, seconds: float, low_res: bool, device: str = "cpu",
              display: str = "auto") -> dict:
    args = [*([model] if model else []), "--device", device, "--resolution", str(resolution), "--bench-orbit-s",
            str(seconds), "--display", display, *(["--bench-low-res"] if low_res else [])]
    return run_viewer_bench(args, resolution + 460, resolution + 40)


def _median(values: list[float]) -> str:
    return f"{sorted(values)[len(values) // 2]:.1f}" if values else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--model", default=None, help="default: the embedded default model")
    ap.add_argument("--resolution", type=int, default=512)
    ap.add_argument("--display", choices=("auto", "opengl", "image"), default="auto",
                    help="the display path (run_viewer.py --display); figures of a forced path get its name "
                         "as a suffix")
    args = ap.parse_args()
    path = "" if args.display == "auto" else f"_{args.display}"
    for low_res, suffix in ((False, path), (True, f"_dragging{path}")):
        load_before = machine_load()
        s = run_orbit(args.model, args.resolution, args.seconds, low_res, display=args.display)
        fps = s["pictures"] / s["seconds"]
        frames = s["frames"] / s["seconds"]
        drag = (f", size divisors used while moving {s.get('drawn_sizes')}"
                if low_res and s["display_path"] == "opengl" else "")
        note = (f"{s['display_path']} path{drag}, {s['gaussians']:,} Gaussians, {args.model or 'default model'}, "
                f"orbit 90 deg/s for {s['seconds']:.1f} s, {frames:.1f} window frames/s, "
                f"render {_median(s['render_ms'])} ms, {s['gl_renderer']}; "
                f"{load_before} before, {machine_load()} after")
        print(f"viewer_fps_cpu_{args.resolution}{suffix}: {fps:.1f} fps ({note})")
        record(f"viewer_fps_cpu_{args.resolution}{suffix}", fps, "pictures/s", cpu_device(), note=note)


if __name__ == "__main__":
    main()
