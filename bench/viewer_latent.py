"""From a new seed to the new head on screen, in the studio window on a machine without a GPU.

Runs ``run_viewer.py --bench-seeds N`` (the default model at 512 x 512, under Xvfb + llvmpipe when there is no
display): the window steps the seed N times and times each change until the frame presenting the new head has
been drawn and swapped: synthesis on the render worker, the splat arrays, the draw (the worker's CPU splat
rasterizer; on the OpenGL path the GUI thread's draw) and the texture.

- ``viewer_latent_ms_cpu_512``: the median, milliseconds (p90 and the synthesis share in the note). Target
  <= 300 ms on 2 cores.

    python -m bench.viewer_latent [--seeds 12] [--model PATH] [--resolution 512]
"""

from __future__ import annotations

import argparse

import numpy as np

from bench.results import record
from bench.viewer_window import cpu_device, machine_load, run_viewer_bench


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=12)
    ap.add_argument("--model", default=None, help="default: the embedded default model")
    ap.add_argument("--resolution", type=int, default=512)
    args = ap.parse_args()
    load_before = machine_load()
    s = run_viewer_bench([*([args.model] if args.model else []), "--device", "cpu", "--resolution",
                          str(args.resolution), "--bench-seeds", str(args.seeds)],
                         args.resolution + 460, args.resolution + 40)
    ms = np.asarray(s["latent_ms"][1:] if len(s["latent_ms"]) > 2 else s["latent_ms"])  # the first warms caches
    synth = np.asarray(s["synth_ms"][-len(ms):])
    draw = np.asarray(s["render_ms"][-len(ms):])
    note = (f"median of {len(ms)} seed changes, p90 {np.percentile(ms, 90):.0f} ms; synthesis {np.median(synth):.0f} "
            f"ms, {s['display_path']} draw {np.median(draw):.0f} ms (medians); {s['gaussians']:,} Gaussians, "
            f"{args.model or 'default model'}, {s['gl_renderer']}; {load_before} before, {machine_load()} after")
    print(f"viewer_latent_ms_cpu_{args.resolution}: {np.median(ms):.0f} ms ({note})")
    record(f"viewer_latent_ms_cpu_{args.resolution}", float(np.median(ms)), "ms", cpu_device(), note=note)


if __name__ == "__main__":
    main()
