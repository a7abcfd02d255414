"""Training speed on one GPU: seconds per kimg, peak GPU memory and MFU (real training loop, real losses).

The dataset is a throw-away folder of noise images with valid EG3D labels at the chosen resolution
(speed does not depend on what the images show). The figure is the median over ticks of the real loop
(``--tick-kimg``, default 16 steps so every tick holds one lazy-R1 step), the first tick (warm-up, cuDNN
autotune, first image grid) excluded. MFU = the step's counted FLOPs (bench/train_flops.py: the
discriminator's and generator's convolutions and matrix products) per second over the GPU's measured
bf16 dense matrix-product rate.

Two set-ups:
  * ``--recipe cpu128``: the default-model recipe (training/recipes.py, as tools/train_default_model.sh;
    its precision replaced by ``--precision``) -> ``train_s_per_kimg_cpu128``,
    ``train_mfu_cpu128``, ``train_peak_gpu_mem_gib_cpu128``.
  * ``--recipe cgs`` (default): preset cgs<R> per ``--resolutions``, batch = batch_gpu, 4 views ->
    ``train_gpu_s_per_kimg_<R>``, ``train_mfu_<R>``, ``train_peak_gpu_mem_gib_<R>`` (suffix ``_bf16`` with
    ``--precision bf16``, as before).

The discriminator settings default to the training defaults (float32/TF32, NCHW, batched D calls);
``--d-bf16-blocks 4 --channels-last`` measures the bf16 option (figure suffix ``_bf16d``), ``--d-channel-base``
another D size (suffix ``_cb<N>``), ``--legacy`` the old per-view D calls (suffix ``_legacy``).

    python -m bench.train_speed --recipe cpu128 --d-channel-base 16384
    python -m bench.train_speed --resolutions 512
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import get_args

import numpy as np
import torch
from PIL import Image

from bench.results import device_name, record
from core.camera import orbit_cameras
from core.runs import read_stats
from training.options import Precision
from training.recipes import CPU128, TrainRecipe


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


def measure(setup: TrainRecipe, args, tmp: Path) -> tuple[float, float, int, object]:
    """(median s/kimg, peak GiB, ticks measured, options) of one run of the real loop."""
    from training.loop import train
    from training.options import TrainOptions

    data = noise_dataset(tmp / "data", setup.image_resolution())
    tick_kimg = args.tick_kimg or 16 * setup.batch / 1000
    fast = {} if args.legacy else dict(d_bf16_blocks=args.d_bf16_blocks, channels_last=args.channels_last,
                                       batch_d_calls=True)
    legacy = dict(d_bf16_blocks=0, channels_last=False, batch_d_calls=False) if args.legacy else {}
    extra = {"d_channel_base": args.d_channel_base} if args.d_channel_base else {}
    opts = TrainOptions(data=str(data), outdir=str(tmp / "runs"), kimg=args.ticks * tick_kimg, tick_kimg=tick_kimg,
                        snap_kimg=1e6, image_snap_kimg=1e6, workers=4, device="cuda",
                        **{**setup.overrides(), "precision": args.precision, **fast, **legacy, **extra})
    torch.cuda.reset_peak_memory_stats()
    run = train(opts, progress=False)
    ticks = read_stats(run)
    spk = statistics.median(t["sec_per_kimg"] for t in ticks[1:])
    mem = max(t["peak_gpu_mem_gib"] for t in ticks)
    print(f"{setup.preset}: {spk:.2f} s/kimg, peak {mem:.2f} GiB; ticks {[round(t['sec_per_kimg'], 2) for t in ticks]}; "
          "losses at the end: " + ", ".join(f"{k}={ticks[-1][k]:.3f}" for k in ("G_adv", "D_real", "D_fake")))
    return spk, mem, len(ticks) - 1, opts


def main() -> None:
    from bench.train_flops import matmul_peak_tflops, recipe_step_flops

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="cgs", choices=["cgs", "cpu128"])
    ap.add_argument("--resolutions", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--batch-gpu", type=int, default=8)
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--ticks", type=int, default=4, help="ticks to run; the first is not measured")
    ap.add_argument("--tick-kimg", type=float, default=None, help="default: 16 steps")
    ap.add_argument("--precision", default="tf32", choices=get_args(Precision))
    ap.add_argument("--d-bf16-blocks", type=int, default=0)
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--d-channel-base", type=int, default=None)
    ap.add_argument("--legacy", action="store_true", help="the old D path: float32, NCHW, one call per view")
    args = ap.parse_args()
    dev = device_name("cuda")
    peak = matmul_peak_tflops(torch.bfloat16)
    record("gpu_matmul_peak_tflops_bf16", peak, "TFLOP/s", dev, note="8192^3 bf16 matmul, random data, median of 30")
    if args.recipe == "cpu128":
        setups = [("cpu128", CPU128)]
    else:
        setups = [(str(r), TrainRecipe(preset=f"cgs{r}", batch=args.batch_gpu, batch_gpu=args.batch_gpu,
                                       num_views=args.views)) for r in args.resolutions]
    for tag, setup in setups:
        with tempfile.TemporaryDirectory() as tmp:
            spk, mem, n, opts = measure(setup, args, Path(tmp))
        flops = recipe_step_flops(opts, setup.image_resolution(), "cuda").total
        mfu = flops * 1000 / setup.batch / spk / (peak * 1e12)
        d = ("legacy D (float32/TF32, NCHW, one call per view)" if args.legacy else
             f"D: {opts.d_bf16_blocks} bf16 blocks, {'NHWC' if opts.channels_last else 'NCHW'}, batched calls")
        note = (f"batch {setup.batch} in micro-batches of {setup.batch_gpu} on 1 GPU, {opts.num_views} views, "
                f"{args.precision}, {d}, D channel_base {opts.d_channel_base}; median of {n} ticks of 16 steps; "
                f"{flops / 1e12:.2f} TFLOP/step counted")
        suffix = "" if args.precision == "tf32" else f"_{args.precision}"
        if args.d_bf16_blocks and not args.legacy:
            suffix += "_bf16d"
        if args.d_channel_base and args.d_channel_base != 32768:
            suffix += f"_cb{args.d_channel_base}"
        if args.legacy:
            suffix += "_legacy"
        if tag == "cpu128":
            record(f"train_s_per_kimg_cpu128{suffix}", spk, "s/kimg", dev, note=note)
        else:
            record(f"train_gpu_s_per_kimg_{tag}{suffix}", spk, "GPU-s/kimg", dev, note=note)
        record(f"train_mfu_{tag}{suffix}", mfu, "fraction of bf16 peak", dev,
               note=f"{flops * 1000 / setup.batch / spk / 1e12:.1f} TFLOP/s achieved of {peak:.0f}; " + note)
        record(f"train_peak_gpu_mem_gib_{tag}{suffix}", mem, "GiB", dev, note=note)


if __name__ == "__main__":
    main()
