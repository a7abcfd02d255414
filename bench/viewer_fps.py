"""Frames per second of the studio window while the camera orbits, from the app's own frame statistics.

Runs ``run_viewer.py --bench-orbit-s S`` in a fresh process (under ``xvfb-run`` when there is no display), which
orbits the camera at 90 deg/s once the head is on screen, then writes its per-frame log; this script turns the
log into figures:

- ``viewer_fps_cpu_512``: on-screen frames per second at 512 x 512 on the OpenGL splat path (no CUDA), every
  frame a new camera and a new full-resolution splat draw.
- ``viewer_fps_cpu_512_dragging``: the same with the progressive drag mode (while the camera moves the OpenGL
  path draws at 1/2 .. 1/6 of the size, the largest that kept the last draw under 22 ms; full size when it
  stops).

    python -m bench.viewer_fps [--seconds 10] [--model PATH] [--resolution 512]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.results import record

ROOT = Path(__file__).resolve().parents[1]


def run_orbit(model: str | None, resolution: int, seconds: float, low_res: bool, device: str = "cpu") -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        stats = Path(tmp) / "stats.json"
        cmd = [sys.executable, "run_viewer.py", *([model] if model else []), "--device", device, "--resolution",
               str(resolution), "--bench-orbit-s", str(seconds), "--stats-json", str(stats), "--state-dir", tmp,
               "--width", str(resolution + 420), "--height", str(resolution + 40)]
        if low_res:
            cmd.append("--bench-low-res")
        if not os.environ.get("DISPLAY") and shutil.which("xvfb-run"):
            cmd = ["xvfb-run", "-a", "-s", f"-screen 0 {resolution + 420}x{resolution + 40}x24", *cmd]
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
        if r.returncode != 0 or not stats.exists():
            raise RuntimeError(f"viewer run failed ({r.returncode}):\n{r.stderr[-3000:]}")
        return json.loads(stats.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--model", default=None, help="default: the embedded default model")
    ap.add_argument("--resolution", type=int, default=512)
    args = ap.parse_args()
    for low_res, suffix in ((False, ""), (True, "_dragging")):
        s = run_orbit(args.model, args.resolution, args.seconds, low_res)
        fps = s["frames"] / s["seconds"]
        draws = s["gl_draws"] / s["seconds"]
        drag = f", size divisors used while moving {s.get('drawn_sizes')}" if low_res else ""
        note = (f"{s['display_path']} path{drag}, {s['gaussians']:,} Gaussians, {args.model or 'default model'}, "
                f"orbit 90 deg/s for {s['seconds']:.1f} s, {draws:.1f} splat draws/s, {s['gl_renderer']}")
        print(f"viewer_fps_cpu_{args.resolution}{suffix}: {fps:.1f} fps ({note})")
        record(f"viewer_fps_cpu_{args.resolution}{suffix}", fps, "frames/s", f"CPU x86_64, {os.cpu_count()} cores",
               note=note)


if __name__ == "__main__":
    main()
