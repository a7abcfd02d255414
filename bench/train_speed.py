"""Training speed on one GPU: seconds per kimg and peak GPU memory (real training loop, real losses).

The dataset is a throw-away folder of noise images with valid EG3D labels at the chosen resolution
(speed does not depend on what the images show). Per resolution: ``--kimg`` of training with batch =
batch_gpu (one GPU), ``--views`` multi-view renders per scene; the first tick (warm-up, cuDNN autotune,
first image grid) is excluded; the figure is the median of the remaining ticks.

    python -m bench.train_speed [--resolutions 256 512] [--batch-gpu 8] [--views 4] [--precision tf32]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.results import device_name, record
from core.camera import orbit_cameras


def noise_dataset(root: Path, resolution: int, n: int = 64) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    g = np.random.default_rng(0)
    labels = orbit_cameras(torch.linspace(-0.8, 0.8, n), 0.1).to_label()
    entries = []
    for i in range(n):
        name = f"{i:05d}.png"
        Image.fromarray(g.integers(0, 255, (resolution, resolution, 3), dtype=np.uint8)).save(root / name)
        entries.append([name, labels[i].tolist()])
    (root / "dataset.json").write_text(json.dumps({"labels": entries}))
    return root


def main() -> None:
    from training.loop import train
    from training.options import TrainOptions

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resolutions", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--batch-gpu", type=int, default=8)
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--kimg", type=float, default=0.24)
    ap.add_argument("--tick-kimg", type=float, default=0.04)
    ap.add_argument("--precision", default="tf32", choices=["fp32", "tf32", "bf16"])
    args = ap.parse_args()
    dev = device_name("cuda")
    for res in args.resolutions:
        with tempfile.TemporaryDirectory() as tmp:
            data = noise_dataset(Path(tmp) / "data", res)
            torch.cuda.reset_peak_memory_stats()
            opts = TrainOptions(data=str(data), outdir=str(Path(tmp) / "runs"), preset=f"cgs{res}", batch=args.batch_gpu,
                                batch_gpu=args.batch_gpu, kimg=args.kimg, tick_kimg=args.tick_kimg, snap_kimg=1e6,
                                image_snap_kimg=1e6, num_views=args.views, workers=4, device="cuda",
                                precision=args.precision)
            run = train(opts, progress=False)
            ticks = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
        spk = statistics.median(t["sec_per_kimg"] for t in ticks[1:])
        mem = max(t["peak_gpu_mem_gib"] for t in ticks)
        note = (f"batch {args.batch_gpu} on 1 GPU, {args.views} views, {args.precision}; median of "
                f"{len(ticks) - 1} ticks of {args.tick_kimg} kimg")
        suffix = "" if args.precision == "tf32" else f"_{args.precision}"
        record(f"train_gpu_s_per_kimg_{res}{suffix}", spk, "GPU-s/kimg", dev, note=note)
        record(f"train_peak_gpu_mem_gib_{res}{suffix}", mem, "GiB", dev, note=note)
        print(f"res {res}: {spk:.1f} s/kimg, peak {mem:.2f} GiB; losses at the end: "
              + ", ".join(f"{k}={ticks[-1][k]:.3f}" for k in ("G_adv", "D_real", "D_fake")))


if __name__ == "__main__":
    main()
