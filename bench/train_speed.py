"""Training speed on one GPU: seconds per kimg, peak GPU memory and MFU (real training loop, real losses).

The dataset is a throw-away folder of noise images with valid EG3D labels at the chosen resolution
(speed does not depend on what the images show; the loader draws from an endless sampler with persistent
workers, so a small dataset causes no periodic stall). The figure is the median over ticks of the real loop
(``--tick-kimg``, default 16 steps so every tick holds one lazy-R1 step), the first ``--warmup-ticks`` (1:
cuDNN autotune, allocator warm-up) excluded; min, median and mean are printed and noted. MFU = the step's
counted FLOPs (bench/train_flops.py: the discriminator's and generator's convolutions and matrix products)
per second over the GPU's measured bf16 dense matrix-product rate.

The D-input blur. While it fades (the first ``blur_fade_kimg``: 40 for cpu128, 200 x batch / 32 otherwise)
its kernel, ``2 floor(3 sigma) + 1`` taps, loses a tap on each side every ``fade / (3 sigma0)`` kimg (1.33 kimg
for cpu128); with ``cudnn.benchmark`` on, each new kernel length is a new convolution shape that cuDNN
autotunes again, in the G/D step at once and in the R1 double backward at the next R1 step (the slower of the
two). In 0.512-kimg ticks that is a slow tick every second or third one; the ticks of the 2026-12-02 H200
run line up with these events one for one (docs/training.md, "Training speed"). So by default the bench
measures the steady state after the fade (blur off: what every step past ``blur_fade_kimg`` runs, the bulk of
a long run); ``--blur-fade`` keeps the recipe's fade from kimg 0 (figure suffix ``_fade``) and marks each tick
that saw a new blur width (``gd``: G/D step, ``r1``: R1 step); "clean" ticks are those without one.

Two set-ups:
  * ``--recipe cpu128``: the default-model recipe itself (training/recipes.py, as tools/train_default_model.sh)
    -> ``train_s_per_kimg_cpu128``, ``train_mfu_cpu128``, ``train_peak_gpu_mem_gib_cpu128``; likewise
    ``--recipe cpu256``, the v2 recipe (tools/train_default_model_v2.sh) -> ``train_s_per_kimg_cpu256``, ...
  * ``--recipe cgs`` (default): preset cgs<R> per ``--resolutions``, batch = batch_gpu, 4 views, the training
    defaults otherwise -> ``train_gpu_s_per_kimg_<R>``, ``train_mfu_<R>``, ``train_peak_gpu_mem_gib_<R>``.

Variants: ``--precision``, ``--d-bf16-blocks``, ``--[no-]channels-last``, ``--d-channel-base``, ``--d-blur`` and
``--legacy`` (the D before the speed work: float32/TF32, NCHW, one call per view, channel_base 32768) replace
the set-up's values; a run that differs from its set-up gets a figure suffix naming its own D settings
(:func:`figure_suffix`: ``_bf16d`` = 4 bf16 blocks + NHWC, ``_cb16384``, ``_legacy``, ...), plus ``_dslices``
(``_dslices_bf16``, ``_dconv``) when the D's blurs are not the set-up's (``--d-blur slices``).

    python -m bench.train_speed --recipe cpu128 --ticks 12
    python -m bench.train_speed --recipe cpu128 --legacy            # -> train_s_per_kimg_cpu128_legacy
    python -m bench.train_speed --recipe cpu128 --d-blur slices     # -> train_s_per_kimg_cpu128_dslices
    python -m bench.train_speed --resolutions 512 --d-bf16-blocks 4 --channels-last   # -> ..._512_bf16d
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
from bench.train_variants import LEGACY as LEGACY_D  # the D before the speed work
from core.camera import orbit_cameras
from core.runs import read_stats
from training.discriminator_conv import BLUR_IMPLS
from training.options import Precision
from training.recipes import RECIPES, TrainRecipe


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


D_KEYS = ("precision", "batch_d_calls", "d_bf16_blocks", "channels_last", "d_channel_base")


def variant(args) -> dict:
    """The TrainOptions fields the command line sets over the set-up's own (``None`` flags leave them)."""
    if args.legacy and (args.d_bf16_blocks or args.channels_last):
        raise SystemExit("--legacy is the float32 NCHW D; it takes no --d-bf16-blocks or --channels-last")
    v = dict(LEGACY_D) if args.legacy else {}
    given = {"precision": args.precision, "d_bf16_blocks": args.d_bf16_blocks, "channels_last": args.channels_last,
             "d_channel_base": args.d_channel_base, "d_blur": args.d_blur,
             "g_cuda_graphs": args.g_cuda_graphs}
    return {**v, **{k: x for k, x in given.items() if x is not None}}


def figure_suffix(opts, base) -> str:
    """``""`` when ``opts`` has the set-up's (``base``) precision and D; else a tag for ``opts``' own settings:
    ``_<precision>`` unless TF32, then ``_legacy`` (per-view calls) or ``_bf16d[N]`` (N bf16 blocks, 4 unsaid;
    ``_nchw`` added when not channels-last) or ``_nhwc`` (float32 D, channels-last), then ``_cb<N>`` unless the
    channel_base is 32768; ``_fp32d`` when nothing else names it (float32 NCHW batched D of 32768). Then
    ``_d<d_blur>`` (``_dslices``, ``_dconv``, ...) when the D's blurs are not the set-up's, and ``_graphs`` when
    the D step's generator forward is replayed from a CUDA graph and the set-up's is not."""
    return _d_suffix(opts, base) + ("_graphs" if opts.g_cuda_graphs and not base.g_cuda_graphs else "")


def _d_suffix(opts, base) -> str:
    if not opts.batch_d_calls:  # "_legacy" is the D before the speed work, conv blurs included
        blur = "" if opts.d_blur == "conv" else f"_d{opts.d_blur}"
    else:
        blur = "" if opts.d_blur == base.d_blur else f"_d{opts.d_blur}"
    if all(getattr(opts, k) == getattr(base, k) for k in D_KEYS):
        return blur
    s = "" if opts.precision == "tf32" else f"_{opts.precision}"
    if not opts.batch_d_calls:
        s += "_legacy"
    elif opts.d_bf16_blocks:
        s += "_bf16d" + ("" if opts.d_bf16_blocks == 4 else str(opts.d_bf16_blocks))
        s += "" if opts.channels_last else "_nchw"
    elif opts.channels_last:
        s += "_nhwc"
    if opts.d_channel_base != 32768:
        s += f"_cb{opts.d_channel_base}"
    return (s or "_fp32d") + blur


def speed_figure(setup: str, suffix: str) -> tuple[str, str]:
    """``(name, unit)`` of the speed figure of a set-up: a recipe (``cpu128``, ...) in seconds per kimg
    (``train_s_per_kimg_cpu128<suffix>``), a cgs resolution (``512``) in GPU-seconds per kimg
    (``train_gpu_s_per_kimg_512<suffix>``). The MFU and memory figures are ``train_mfu_<setup><suffix>`` and
    ``train_peak_gpu_mem_gib_<setup><suffix>``."""
    if setup.isdigit():
        return f"train_gpu_s_per_kimg_{setup}{suffix}", "GPU-s/kimg"
    return f"train_s_per_kimg_{setup}{suffix}", "s/kimg"


def blur_events(opts, ticks: int, steps_per_tick: int) -> list[str]:
    """Per tick: which parts of the step met a D-input blur kernel length not seen before (``"gd"``: the G and
    D steps, ``"r1"``: the R1 step; ``""``: none), i.e. a new convolution shape for cuDNN's autotuner."""
    from training.blur import blur_kernel, blur_sigma

    seen_gd, seen_r1, out = set(), set(), []
    for t in range(ticks):
        tags = []
        for step in range(t * steps_per_tick, (t + 1) * steps_per_tick):
            sigma = blur_sigma(step * opts.batch, opts.blur_fade_kimg_value, opts.blur_sigma)
            taps = blur_kernel(sigma).numel() if sigma > 0 else 0
            if taps > 1 and taps not in seen_gd:
                seen_gd.add(taps)
                tags.append("gd")
            if opts.gamma > 0 and step % opts.r1_interval == 0 and taps > 1 and taps not in seen_r1:
                seen_r1.add(taps)
                tags.append("r1")
        out.append("+".join(dict.fromkeys(tags)))
    return out


def measure(setup: TrainRecipe, args, tmp: Path) -> tuple[float, float, int, object, str]:
    """(median s/kimg, peak GiB, ticks measured, options, summary for the note) of one run of the real loop."""
    from training.loop import train
    from training.options import TrainOptions

    data = noise_dataset(tmp / "data", setup.image_resolution())
    steps = round(args.tick_kimg * 1000 / setup.batch) if args.tick_kimg else 16
    tick_kimg = steps * setup.batch / 1000
    blur = {} if args.blur_fade else {"blur_fade_kimg": 0.0}
    opts = TrainOptions(data=str(data), outdir=str(tmp / "runs"), kimg=args.ticks * tick_kimg, tick_kimg=tick_kimg,
                        snap_kimg=1e6, image_snap_kimg=1e6, workers=4, device="cuda",
                        **{**setup.overrides(), **variant(args), **blur})
    torch.cuda.reset_peak_memory_stats()
    run = train(opts, progress=False)
    if opts.g_cuda_graphs:
        from training.trainer import GRAPH_FALLBACK_NOTE

        fallback = [line for line in (run / "log.txt").read_text().splitlines() if GRAPH_FALLBACK_NOTE in line]
        if fallback:  # the figure would be named _graphs but measure the eager forward
            raise SystemExit(f"nothing recorded: {fallback[0]}")
    ticks = read_stats(run)
    events = blur_events(opts, len(ticks), steps)
    times = [t["sec_per_kimg"] for t in ticks[args.warmup_ticks:]]
    clean = [t for t, e in zip(times, events[args.warmup_ticks:]) if not e]
    spk, mem = statistics.median(times), max(t.get("peak_gpu_mem_gib", 0.0) for t in ticks)
    summary = (f"ticks after {args.warmup_ticks} warm-up: min {min(times):.2f}, median {spk:.2f}, "
               f"mean {statistics.fmean(times):.2f} s/kimg")
    if args.blur_fade:
        summary += (f"; {len(times) - len(clean)} of them met a new blur width, the others median "
                    f"{statistics.median(clean):.2f}" if clean else "; every tick met a new blur width")
    print(f"{setup.preset}: {spk:.2f} s/kimg, peak {mem:.2f} GiB; {summary}\n  ticks: "
          + ", ".join(f"{t['sec_per_kimg']:.2f}" + (f"({e})" if e else "") for t, e in zip(ticks, events))
          + "\n  losses at the end: " + ", ".join(f"{k}={ticks[-1][k]:.3f}" for k in ("G_adv", "D_real", "D_fake")))
    return spk, mem, len(times), opts, summary


def describe_d(opts) -> str:
    blur = "blurs as depthwise convs" if opts.d_blur == "conv" else f"blurs as {opts.d_blur}"
    graphs = ", D-step G forward from a CUDA graph" if opts.g_cuda_graphs else ""
    if not opts.batch_d_calls:
        return (f"D: per-view calls, {opts.d_bf16_blocks} bf16 blocks, {'NHWC' if opts.channels_last else 'NCHW'}, "
                + blur + graphs)
    return f"D: {opts.d_bf16_blocks} bf16 blocks, {'NHWC' if opts.channels_last else 'NCHW'}, batched calls, {blur}{graphs}"


def main() -> None:
    from bench.train_flops import matmul_peak_tflops, recipe_step_flops
    from training.options import TrainOptions

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="cgs", choices=["cgs", *RECIPES])
    ap.add_argument("--resolutions", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--batch-gpu", type=int, default=8)
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--ticks", type=int, default=4, help="ticks to run, warm-up included")
    ap.add_argument("--warmup-ticks", type=int, default=1, help="first ticks not measured")
    ap.add_argument("--tick-kimg", type=float, default=None, help="default: 16 steps")
    ap.add_argument("--blur-fade", action="store_true",
                    help="keep the D-input blur fade from kimg 0 (suffix _fade); default: measure after it")
    ap.add_argument("--precision", default=None, choices=get_args(Precision), help="default: the set-up's")
    ap.add_argument("--d-bf16-blocks", type=int, default=None, help="default: the set-up's")
    ap.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                    help="default: the set-up's")
    ap.add_argument("--d-channel-base", type=int, default=None, help="default: the set-up's")
    ap.add_argument("--d-blur", default=None, choices=BLUR_IMPLS,
                    help="how the D computes its blurs (suffix _d<value>); default: the set-up's")
    ap.add_argument("--g-cuda-graphs", action=argparse.BooleanOptionalAction, default=None,
                    help="the D step's generator forward from a CUDA graph (suffix _graphs); default: the set-up's")
    ap.add_argument("--legacy", action="store_true",
                    help="the D before the speed work: float32, NCHW, one call per view, channel_base 32768")
    args = ap.parse_args()
    if args.ticks <= args.warmup_ticks:
        ap.error("--ticks must exceed --warmup-ticks")
    dev = device_name("cuda")
    peak = matmul_peak_tflops(torch.bfloat16)
    record("gpu_matmul_peak_tflops_bf16", peak, "TFLOP/s", dev, note="8192^3 bf16 matmul, random data, median of 30")
    if args.recipe in RECIPES:
        setups = [(args.recipe, RECIPES[args.recipe])]
    else:
        setups = [(str(r), TrainRecipe(preset=f"cgs{r}", batch=args.batch_gpu, batch_gpu=args.batch_gpu,
                                       num_views=args.views)) for r in args.resolutions]
    for tag, setup in setups:
        with tempfile.TemporaryDirectory() as tmp:
            spk, mem, n, opts, summary = measure(setup, args, Path(tmp))
        flops = recipe_step_flops(opts, setup.image_resolution(), "cuda").total
        mfu = flops * 1000 / setup.batch / spk / (peak * 1e12)
        suffix = figure_suffix(opts, TrainOptions(data="", **setup.overrides()))
        suffix += "_fade" if args.blur_fade else ""
        phase = (f"D-input blur fading from kimg 0 over {opts.blur_fade_kimg_value:g} kimg" if args.blur_fade else
                 "after the D-input blur fade (blur off)")
        note = (f"batch {setup.batch} in micro-batches of {setup.batch_gpu} on 1 GPU, {opts.num_views} views, "
                f"{opts.precision}, {describe_d(opts)}, D channel_base {opts.d_channel_base}; {phase}; median of "
                f"{n} ticks of {opts.tick_kimg * 1000 / setup.batch:g} steps ({summary}); "
                f"{flops / 1e12:.2f} TFLOP/step counted")
        name, unit = speed_figure(tag, suffix)
        record(name, spk, unit, dev, note=note)
        record(f"train_mfu_{tag}{suffix}", mfu, "fraction of bf16 peak", dev,
               note=f"{flops * 1000 / setup.batch / spk / 1e12:.1f} TFLOP/s achieved of {peak:.0f}; " + note)
        record(f"train_peak_gpu_mem_gib_{tag}{suffix}", mem, "GiB", dev, note=note)


if __name__ == "__main__":
    main()
