"""Seconds per frame of the pure-PyTorch reference renderer on the CPU.

Scene: the environment probe's (20k / 100k Gaussians in front of an identity camera with fx = width), so the
figures compare with its naive (Gaussian, pixel)-pair compositor: 0.58 s (20k) and 6.0 s (100k) at 256 px,
3.6 s and 19.8 s at 512 px, 2 threads. Forward only, colour + alpha, median of the repeats.

    python -m bench.render_cpu [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from bench.results import device_name, record
from bench.scenes import identity_camera, probe_scene
from core.render import render


def seconds_per_frame(n: int, res: int, repeats: int) -> float:
    scene, cam = probe_scene(n), identity_camera()
    with torch.no_grad():
        render(scene, cam, res, res, mode="rgb", backend="torch")  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            render(scene, cam, res, res, mode="rgb", backend="torch")
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = device_name("cpu")
    for n, label in ((20_000, "20k"), (100_000, "100k")):
        for res in (256, 512):
            s = seconds_per_frame(n, res, args.repeats)
            record(f"cpu_render_s_{label}_{res}", s, "s/frame", dev, note="probe scene, forward, median")


if __name__ == "__main__":
    main()
