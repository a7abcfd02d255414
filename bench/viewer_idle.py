"""The studio window idle and while the user works in the side panels, on a machine without a GPU.

Runs ``run_viewer.py --bench-idle-s S`` (the default model, a 1600 x 1000 window under Xvfb + llvmpipe when
there is no display): once the head is on screen and 3 s have passed, the window measures its own process's CPU
use over S idle seconds, then its frame rate over ``--bench-ui-s`` seconds with the pointer sweeping over the
side panels every frame (the picture does not change). Figures:

- ``viewer_idle_cpu_percent``: CPU use of the whole process while idle, percent of one core (as ``top``).
  Target <= 5 %.
- ``viewer_ui_fps_idle_cpu``: GUI frames per second while the user works in the panels (the splats are not
  redrawn; the window's frame cap is 75 fps). Target >= 60.

    python -m bench.viewer_idle [--idle-seconds 20] [--ui-seconds 10] [--model PATH]
"""

from __future__ import annotations

import argparse

from bench.results import record
from bench.viewer_window import cpu_device, machine_load, run_viewer_bench

WIDTH, HEIGHT = 1600, 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--idle-seconds", type=float, default=20.0)
    ap.add_argument("--ui-seconds", type=float, default=10.0)
    ap.add_argument("--model", default=None, help="default: the embedded default model")
    args = ap.parse_args()
    load_before = machine_load()
    s = run_viewer_bench([*([args.model] if args.model else []), "--device", "cpu", "--bench-idle-s",
                          str(args.idle_seconds), "--bench-ui-s", str(args.ui_seconds)], WIDTH, HEIGHT)
    where = (f"{WIDTH}x{HEIGHT} window, {s['resolution'][0]}^2 head, {s['gaussians']:,} Gaussians, "
             f"{args.model or 'default model'}, {s['gl_renderer']}; {load_before} before, {machine_load()} after")
    print(f"idle: {s['idle_cpu_percent']:.1f} % CPU at {s['idle_fps']:.1f} frames/s over {s['idle_seconds']:.0f} s; "
          f"panels: {s['ui_fps']:.1f} frames/s at {s['ui_cpu_percent']:.0f} % CPU ({where})")
    record("viewer_idle_cpu_percent", s["idle_cpu_percent"], "% of one core", cpu_device(),
           note=f"idle {s['idle_seconds']:.0f} s, {s['idle_fps']:.1f} frames/s; {where}")
    record("viewer_ui_fps_idle_cpu", s["ui_fps"], "frames/s", cpu_device(),
           note=f"pointer over the panels for {s['ui_seconds']:.0f} s, {s['ui_cpu_percent']:.0f} % CPU; {where}")


if __name__ == "__main__":
    main()
