"""Time the synthetic heads dataset command: images per second and the wall time of 20,000 images.

Runs ``training.synthetic_heads`` (the same code as ``python -m training.synthetic_heads``) into a temporary
folder and records, at the chosen resolution:

    synthetic_dataset_img_per_s_<res>   images per second over the whole run (head building, rendering,
                                        PNG encoding, writing, worker start-up)
    synthetic_dataset_s_20k_<res>       seconds for 20,000 images: measured when the run makes 20,000
                                        images (the default), otherwise extrapolated (the note says so)

    python -m bench.synthetic_dataset [--identities 4000] [--views 5] [--resolution 128] [--workers 2]
    # on a GPU machine: gsplat renders, the CPU workers build heads and encode PNGs
    python -m bench.synthetic_dataset --identities 500 --views 6 --resolution 256 --full-yaw-fraction 0.5 \\
        --device cuda --workers 16

With ``--device cuda`` the names get ``_cuda`` and ``synthetic_dataset_s_per_1k_<res>_cuda`` (seconds per
1,000 images) is recorded as well.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from bench.results import device_name, record
from training.synthetic_heads.config import DatasetConfig
from training.synthetic_heads.dataset import write_dataset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--identities", type=int, default=4000)
    ap.add_argument("--views", type=int, default=5)
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--exact", action="store_true", help="no back-face culling")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where training images are rendered")
    ap.add_argument("--full-yaw-fraction", type=float, default=0.0)
    ap.add_argument("--keep", type=Path, default=None, help="write the dataset here instead of a temporary folder")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.keep or Path(tmp) / "heads"
        cfg = DatasetConfig(out=out, num_identities=args.identities, views_per_identity=args.views,
                            resolution=args.resolution, workers=args.workers, exact=args.exact, seed=0,
                            device=args.device, full_yaw_fraction=args.full_yaw_fraction)
        t0 = time.perf_counter()
        summary = write_dataset(cfg, progress=True)
        seconds = time.perf_counter() - t0
    if summary.rendered != cfg.num_images:
        raise SystemExit(f"{out} already held part of the dataset ({summary.rendered} of {cfg.num_images} images "
                         "rendered now); time it in an empty folder")
    rate = summary.rendered / seconds
    torch.set_num_threads(1)  # what each worker uses; device_name reports it
    dev = f"{device_name('cpu')} x {args.workers} worker process(es)"
    if args.device == "cuda":
        dev = f"{device_name('cuda')} (gsplat) + {dev}"
    mode = "exact" if args.exact else "back-face culled"
    what = (f"{args.identities} identities x {args.views} views, {mode}, full-yaw fraction "
            f"{args.full_yaw_fraction:g}, PNG to disk")
    tag = ("_exact" if args.exact else "") + ("_cuda" if args.device == "cuda" else "")
    record(f"synthetic_dataset_img_per_s_{args.resolution}{tag}", rate, "images/s", dev, note=what)
    if args.device == "cuda":
        record(f"synthetic_dataset_s_per_1k_{args.resolution}_cuda", 1000 / rate, "s", dev, note=what)
    measured = summary.rendered == 20_000
    record(f"synthetic_dataset_s_20k_{args.resolution}{tag}", 20_000 / rate if not measured
           else seconds, "s", dev, note=what + ("" if measured else f"; extrapolated from {summary.rendered} images"))
    print(f"{summary.rendered} images in {seconds:.1f} s = {rate:.1f} images/s "
          f"(cpu count {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} at the end)")


if __name__ == "__main__":
    main()
