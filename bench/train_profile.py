"""Where a training kimg goes, and what each speed-up buys: one script for one GPU call.

Stages (``--stages``, in this order):
    peak      bf16 and TF32 matrix-product rates of this GPU (the MFU denominators)
    variants  s/kimg of the recipe under each variant (the real train loop, ``--ticks`` ticks of 16 steps,
              the first excluded), with the GPU time of each phase of the step (CUDA events on the stream,
              where the trainer has its ``marker`` hook) and the counted FLOPs -> MFU
    profile   torch.profiler over 16 steps of one variant: GPU time by kernel kind (convolutions, matrix
              products, element-wise, rasterizer, optimizer, copies) and how busy the GPU was
    quality   a short real run per variant on synthetic heads (same seed, same kimg): losses, EMA image
              grid, sliced Wasserstein distance to the reals (Laplacian pyramid, as in ProGAN) and the
              reprojection consistency (training/metrics)

Variants (cumulative; ``--variants``): ``legacy`` (the D as before: per-view calls, NCHW, float32/TF32),
``batched`` (one D call per phase), ``nhwc`` (+ channels_last), ``bf16-nchw`` (batched + 4 D blocks in
bf16, NCHW), ``bf16`` (+ channels_last), ``bf16-matmul`` (the same with the blurs as banded products: cgs512's
fast D),
``bf16-cb16k`` (+ D channel_base 16384: the cpu128 recipe's D), ``bf16-cb16k-gbf16`` (+ generator features
in bf16), ``bf16-cb16k-slices`` / ``-slices16`` (the recipe's D with its blurs as slices, ``d_blur="slices"``
/ ``"slices_bf16"``), ``bf16-cb16k-matmul`` (as banded-matrix products, ``d_blur="matmul"``). The script
also runs on an older checkout (options it lacks are left out; variants that need them are skipped), which
is how the "before" column of docs/training.md was measured. The recipes and variants are in
bench/train_variants.py, the quality stage in bench/train_quality.py.

    python -m bench.train_profile --recipe cpu128 --stages peak variants profile --out /tmp/prof
    python -m bench.train_profile --recipe cpu128 --stages quality --variants legacy bf16 --quality-kimg 12
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
import traceback
from pathlib import Path

import torch

from bench.train_quality import ensure_heads, quality_run
from bench.train_variants import CUDA, DEVICE, RECIPES, VARIANTS, noise_dataset, options_for
from core.runs import read_stats

KERNEL_KINDS = (  # first match wins; lower-case substrings of CUDA kernel names
    ("rasterizer (gsplat)", ("gsplat",)),
    ("attention", ("fmha", "flash", "attention")),
    ("grouped/1-channel conv (blurs)", ("grouped", "depthwise", "c1_k1")),
    ("average pool (D blurs)", ("avg_pool", "avgpool")),
    ("convolution", ("xmma", "conv", "fprop", "dgrad", "wgrad", "implicit_gemm", "cudnn", "nhwc", "nchw")),
    ("matrix product", ("gemm", "cublas", "cutlass")),
    ("optimizer / foreach", ("adam", "multi_tensor", "foreach")),
    ("sort / scan", ("sort", "scan", "radix", "cub::")),
    ("reduction", ("reduce", "norm")),
    ("copy / cat / fill", ("copy", "memcpy", "memset", "cat", "fill", "index")),
    ("element-wise", ("elementwise", "vectorized", "unrolled", "where", "act")),
)


LOOP_PHASE = "loop: EMA, data, checks"  # the mark _hook_trainer sets as each step starts


class PhaseClock:
    """CUDA events at the trainer's phase marks; ms of GPU-stream time per phase and step, overall and per tick
    (to see which phase grows when the ticks slow down during a run)."""

    def __init__(self) -> None:
        self.marks: list[tuple[str, torch.cuda.Event, int]] = []
        self.recording = False
        self.step = 0  # the step being run (set by the hook)
        self._read: tuple[int, list[tuple[str, float, int]]] | None = None  # (marks read, their intervals)

    def mark(self, phase: str) -> None:
        if self.recording and CUDA:
            e = torch.cuda.Event(enable_timing=True)
            e.record()
            self.marks.append((phase, e, self.step))

    def _intervals(self) -> list[tuple[str, float, int]]:
        """(phase ending at a mark, ms since the previous mark, the step it belongs to): a step's phases end at
        its marks; the loop phase, marked as the next step starts, is the host work after the previous one
        (at a tick's end: the tick's wait and log), so it belongs to the step of the mark before it."""
        if not self.marks:
            return []
        if self._read is not None and self._read[0] == len(self.marks):  # read once (thousands of events)
            return self._read[1]
        if CUDA:
            torch.cuda.synchronize()
        out = [(phase, a.elapsed_time(b), step_a if phase == LOOP_PHASE else step)
               for (_, a, step_a), (phase, b, step) in zip(self.marks, self.marks[1:])]
        self._read = (len(self.marks), out)
        return out

    def per_step(self, steps: int) -> dict[str, float]:
        out: dict[str, float] = {}
        for phase, ms, _ in self._intervals():
            out[phase] = out.get(phase, 0.0) + ms
        return {k: v / max(steps, 1) for k, v in out.items()}

    def per_tick(self, steps_per_tick: int) -> list[dict[str, float]]:
        """Per tick of ``steps_per_tick`` steps (the measured ones, in order): ms per step of each phase."""
        ticks: dict[int, dict[str, float]] = {}
        for phase, ms, step in self._intervals():
            t = ticks.setdefault(step // steps_per_tick, {})
            t[phase] = t.get(phase, 0.0) + ms / steps_per_tick
        return [ticks[k] for k in sorted(ticks)]


def _hook_trainer(on_step_start=None, on_step_end=None, clock: PhaseClock | None = None):
    """Patch training.loop.Trainer (this process only) to call the hooks around each step."""
    from training import loop

    orig_init, orig_step = loop.Trainer.__init__, loop.Trainer.step

    def init(self, *a, **k):
        orig_init(self, *a, **k)
        if clock is not None and hasattr(self, "marker"):
            self.marker = clock.mark

    def step(self, step, *a, **k):
        if clock is not None:
            clock.step = step
        if on_step_start:
            on_step_start(step)
        if clock is not None:
            clock.mark(LOOP_PHASE)
        out = orig_step(self, step, *a, **k)
        if on_step_end:
            on_step_end(step)
        return out

    loop.Trainer.__init__, loop.Trainer.step = init, step
    return lambda: (setattr(loop.Trainer, "__init__", orig_init), setattr(loop.Trainer, "step", orig_step))


def time_variant(recipe: str, name: str, data: Path, work: Path, ticks: int, flops_per_step: float | None,
                 peak: float | None) -> dict | None:
    from training.loop import train

    batch = RECIPES[recipe].batch
    tick_kimg = 16 * batch / 1000
    opts = options_for(recipe, VARIANTS[name], data, work / f"runs-{name}", kimg=ticks * tick_kimg,
                       tick_kimg=tick_kimg, snap_kimg=1e6, image_snap_kimg=1e6)
    if opts is None:
        print(f"variant {name}: not available in this checkout, skipped")
        return None
    clock = PhaseClock()
    first_measured = 16  # the first tick (cuDNN autotune, allocator warm-up) is not measured
    unhook = _hook_trainer(on_step_start=lambda s: setattr(clock, "recording", s >= first_measured), clock=clock)
    if CUDA:
        torch.cuda.reset_peak_memory_stats()
    try:
        run = train(opts, progress=False)
    finally:
        unhook()
    ticks_log = read_stats(run)
    spk = statistics.median(t["sec_per_kimg"] for t in ticks_log[1:])
    phases = clock.per_step((ticks - 1) * 16)
    per_tick = clock.per_tick(16)
    if len(per_tick) >= 3:  # which phases grow; the first measured tick lacks its first loop interval
        a, b = per_tick[1], per_tick[-1]
        growth = {k: b.get(k, 0.0) - a.get(k, 0.0) for k in b}
        print(f"variant {name}: ms per step, second -> last measured tick: " + ", ".join(
            f"{k} {a.get(k, 0.0):.1f} -> {b[k]:.1f}" for k in sorted(growth, key=lambda k: -abs(growth[k]))[:6]))
    result = {"variant": name, "recipe": recipe, "s_per_kimg": spk, "ticks": [t["sec_per_kimg"] for t in ticks_log],
              "peak_gpu_mem_gib": max(t.get("peak_gpu_mem_gib", 0) for t in ticks_log), "phases_ms": phases,
              "phases_ms_per_tick": per_tick,
              "losses": {k: ticks_log[-1].get(k) for k in ("G_adv", "D_real", "D_fake")}}
    if flops_per_step:
        result["tflop_per_step"] = flops_per_step / 1e12
        result["achieved_tflops"] = flops_per_step * (1000 / batch) / spk / 1e12
        if peak:
            result["mfu_bf16_peak"] = result["achieved_tflops"] / peak
    shutil.rmtree(run, ignore_errors=True)
    return result


def kernel_kind(name: str) -> str:
    low = name.lower()
    for kind, keys in KERNEL_KINDS:
        if any(k in low for k in keys):
            return kind
    return "other"


def profile_variant(recipe: str, name: str, data: Path, work: Path, out: Path) -> dict | None:
    from torch.profiler import ProfilerActivity, profile, schedule

    from training.loop import train

    batch = RECIPES[recipe].batch
    warm, active = 18, 16
    opts = options_for(recipe, VARIANTS[name], data, work / f"prof-{name}", kimg=(warm + active + 1) * batch / 1000,
                       tick_kimg=1e6, snap_kimg=1e6, image_snap_kimg=1e6)
    if opts is None:
        return None
    prof = profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if CUDA else []),
                   schedule=schedule(wait=warm - 2, warmup=2, active=active, repeat=1))
    t = {}

    def end(step: int) -> None:
        if step in (warm - 1, warm + active - 1):
            if CUDA:
                torch.cuda.synchronize()
            t["start" if step == warm - 1 else "end"] = time.perf_counter()
        prof.step()

    unhook = _hook_trainer(on_step_end=end)
    try:
        with prof:
            train(opts, progress=False)
    finally:
        unhook()
    wall_ms = (t["end"] - t["start"]) * 1000 / active
    kinds: dict[str, float] = {}
    top: dict[str, float] = {}
    for e in prof.events():
        if getattr(e, "device_type", None) != torch.autograd.DeviceType.CUDA and CUDA:
            continue
        if not CUDA and e.cpu_parent is not None:  # CPU smoke test: top-level ops only
            continue
        if e.name.startswith("ProfilerStep"):  # the step annotation, not a kernel
            continue
        us = e.time_range.elapsed_us()
        kinds[kernel_kind(e.name)] = kinds.get(kernel_kind(e.name), 0.0) + us / 1000 / active
        top[e.name] = top.get(e.name, 0.0) + us / 1000 / active
    busy = sum(kinds.values())
    for key in ("self_device_time_total", "self_cuda_time_total"):
        try:
            table = prof.key_averages().table(sort_by=key, row_limit=60)
            break
        except (AttributeError, KeyError, ValueError):
            table = ""
    (out / f"profile_{recipe}_{name}.txt").write_text(table)
    return {"variant": name, "recipe": recipe, "wall_ms_per_step": wall_ms, "gpu_busy_ms_per_step": busy,
            "gpu_busy_fraction": busy / wall_ms, "kinds_ms_per_step": dict(sorted(kinds.items(), key=lambda kv: -kv[1])),
            "top_kernels_ms_per_step": dict(sorted(top.items(), key=lambda kv: -kv[1])[:25])}


# ------------------------------------------------------------------------------------------------- quality


def figure_name(recipe: str, variant: str) -> tuple[str, str, str]:
    """``(speed figure, its unit, tag)`` for ``variant`` of ``recipe`` under bench/train_speed.py's names (the
    suffix from :func:`bench.train_speed.figure_suffix`, against the recipe's own settings), e.g.
    ``("train_s_per_kimg_cpu128_bf16d_dconv", "s/kimg", "cpu128_bf16d_dconv")``."""
    from bench.train_speed import figure_suffix, speed_figure
    from training.options import TrainOptions

    base = RECIPES[recipe].overrides()
    sfx = figure_suffix(TrainOptions(data="", **{**base, **VARIANTS[variant]}), TrainOptions(data="", **base))
    setup = recipe[3:] if recipe.startswith("cgs") else recipe  # bench.train_speed's set-up tags: "512", "cpu128"
    return (*speed_figure(setup, sfx), setup + sfx)


def record_from(path: Path) -> None:
    """Record the figures of a saved report (the device's output) under bench/train_speed.py's names."""
    from bench.results import record

    rep = json.loads(path.read_text())
    dev, peaks = rep["device"], rep.get("peak_tflops", {})
    for kind, value in peaks.items():
        record(f"gpu_matmul_peak_tflops_{kind}", value, "TFLOP/s", dev, note="8192^3 matmul, random data, median of 30")
    for v in rep.get("variants", []):
        recipe = v["recipe"]
        base = (f"measured by `python -m bench.train_profile --recipe {recipe} --stages peak variants` (variant "
                f"{v['variant']}: {VARIANTS[v['variant']]}), the real train loop, median of {len(v['ticks']) - 1} "
                f"ticks of 16 steps after a warm-up tick; {v.get('tflop_per_step', 0):.2f} TFLOP/step counted")
        name, unit, tag = figure_name(recipe, v["variant"])
        record(name, v["s_per_kimg"], unit, dev, note=base)
        if "mfu_bf16_peak" in v:
            record(f"train_mfu_{tag}", v["mfu_bf16_peak"], "fraction of bf16 peak", dev,
                   note=f"{v['achieved_tflops']:.1f} TFLOP/s of {peaks.get('bf16', 0):.0f}; " + base)
        record(f"train_peak_gpu_mem_gib_{tag}", v["peak_gpu_mem_gib"], "GiB", dev, note=base)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="cpu128", choices=sorted(RECIPES))
    ap.add_argument("--stages", nargs="+", default=["peak", "variants", "profile"],
                    choices=["peak", "variants", "profile", "quality"])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--profile-variants", nargs="+", default=None, choices=list(VARIANTS))
    ap.add_argument("--ticks", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("train_profile_out"))
    ap.add_argument("--tag", default="", help="suffix of the output files (e.g. 'before')")
    ap.add_argument("--heads", type=Path, default=None, help="synthetic heads folder (made if missing)")
    ap.add_argument("--heads-identities", type=int, default=1000)
    ap.add_argument("--heads-views", type=int, default=3)
    ap.add_argument("--heads-workers", type=int, default=16)
    ap.add_argument("--quality-kimg", type=float, default=12.0)
    ap.add_argument("--metric-images", type=int, default=2048)
    ap.add_argument("--record-from", type=Path, default=None,
                    help="record the figures of a saved report (e.g. docs/training/speed_profile_cpu128.json)")
    args = ap.parse_args()
    if args.record_from:
        record_from(args.record_from)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    if CUDA:
        torch.backends.cuda.matmul.allow_tf32 = True
    report: dict = {"recipe": args.recipe, "device": torch.cuda.get_device_name() if CUDA else "cpu",
                    "torch": torch.__version__}
    out_json = args.out / f"train_profile_{args.recipe}{('_' + args.tag) if args.tag else ''}.json"

    def save() -> None:
        out_json.write_text(json.dumps(report, indent=1))

    peak = None
    if "peak" in args.stages:
        peak = matmul_peak(report)
        save()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        res = RECIPES[args.recipe].image_resolution()
        if "variants" in args.stages or "profile" in args.stages:
            data = noise_dataset(work / "noise", res)
        if "variants" in args.stages:
            report["variants"] = []
            for name in args.variants:
                try:
                    flops = _flops(args.recipe, name, data, work)
                    r = time_variant(args.recipe, name, data, work, args.ticks, flops, peak)
                except Exception:  # one broken variant must not cost the others
                    traceback.print_exc()
                    continue
                if r is not None:
                    report["variants"].append(r)
                    print(json.dumps(r))
                    save()
        if "profile" in args.stages:
            report["profiles"] = []
            for name in args.profile_variants or [args.variants[0], args.variants[-1]]:
                try:
                    r = profile_variant(args.recipe, name, data, work, args.out)
                except Exception:  # a profiler quirk must not cost the rest of the call
                    traceback.print_exc()
                    continue
                if r is not None:
                    report["profiles"].append(r)
                    print(json.dumps(r))
                    save()
        if "quality" in args.stages:
            heads = ensure_heads(args.heads or work / "heads", args.heads_identities, args.heads_views,
                                 args.heads_workers, res)
            report["quality"] = []
            for name in args.variants:
                try:
                    r = quality_run(args.recipe, name, heads, work, args.out, args.quality_kimg, args.metric_images)
                except Exception:
                    traceback.print_exc()
                    continue
                if r is not None:
                    report["quality"].append(r)
                    print(json.dumps(r))
                    save()
    print_table(report)


def matmul_peak(report: dict) -> float:
    from bench.train_flops import matmul_peak_tflops

    bf16 = matmul_peak_tflops(torch.bfloat16)
    tf32 = matmul_peak_tflops(torch.float32)
    report["peak_tflops"] = {"bf16": bf16, "tf32": tf32}
    print(f"matrix peak: bf16 {bf16:.0f} TFLOP/s, TF32 {tf32:.0f} TFLOP/s")
    return bf16


def _flops(recipe: str, name: str, data: Path, work: Path) -> float | None:
    try:
        from bench.train_flops import recipe_step_flops
    except ImportError:
        return None
    opts = options_for(recipe, VARIANTS[name], data, work)
    if opts is None:
        return None
    res = RECIPES[recipe].image_resolution()
    try:
        return recipe_step_flops(opts, res, DEVICE).total
    except RuntimeError as exc:  # e.g. an older discriminator that cannot run on the meta device
        print(f"FLOPs not counted for {name}: {exc}")
        return None


def print_table(report: dict) -> None:
    for r in report.get("variants", []):
        mfu = r.get("mfu_bf16_peak")
        print(f"{r['recipe']:7s} {r['variant']:18s} {r['s_per_kimg']:7.2f} s/kimg  "
              f"{r.get('achieved_tflops', float('nan')):6.1f} TFLOP/s  MFU(bf16) {mfu if mfu else float('nan'):.3f}  "
              f"peak {r['peak_gpu_mem_gib']:.1f} GiB")
    for r in report.get("profiles", []):
        print(f"profile {r['variant']}: {r['wall_ms_per_step']:.1f} ms/step, GPU busy {r['gpu_busy_fraction']:.0%}: "
              + ", ".join(f"{k} {v:.1f}" for k, v in r["kinds_ms_per_step"].items()))
    for r in report.get("quality", []):
        print(f"quality {r['variant']}: {r['kimg']} kimg in {r['seconds']:.0f} s, SWD {r['swd_mean']:.1f} "
              f"{[round(v, 1) for v in r['swd_x1e3_by_level']]}, PSNR {r['consistency_psnr']:.2f}, {r['final']}")


if __name__ == "__main__":
    main()
