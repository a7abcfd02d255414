"""Inversion speed: stage 1 (latent) + stage 2 (pivotal tuning) on one photo, end to end, as the pipeline runs.

A random-weight generator of the chosen preset (speed does not depend on the weights, apart from how many
pixels the splats cover; the layer scales get random values so the latent matters as in a trained model),
one target image (a render of a random latent from the frontal camera) and the explicit stand-in loss networks
(LPIPS AlexNet and facenet InceptionResnetV1 with random weights: the same cost as the pretrained ones). The
stages are :func:`inversion.latent_search.invert_latent` and :func:`inversion.pivotal_tuning.tune_generator`
with the ``--recipe`` preset's settings (``thorough``: 500 + 300 steps, all losses, every regulariser), one
host sync per step (the losses the pipeline reports), no previews.

Records ``inversion_s_<res>`` (total seconds; target under 30 s for 500 + 300 at 512) and per-step
milliseconds of each stage.

With ``--model FILE --photo IMAGE`` it instead times the whole pipeline (preprocessing, stage 1, stage 2) as
the Inversion panel runs it with a preset's settings (``--recipe``, default: the device's default preset) and
offline losses, and records ``inversion_s_cpu_default`` on the CPU (target: 60 s on 2 cores)::

    python -m bench.inversion --device cpu --model assets/default_model.safetensors --photo data/heldout128/test/images/00001_00.png ``--profile N`` adds a torch.profiler table of N steps of each stage (eager and
graphed) and the kernel launches per step; ``--compare-eager`` also times the eager path (no CUDA graphs).

    python -m bench.inversion [--preset cgs512] [--recipe thorough] [--profile 5] [--compare-eager]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from bench.results import device_name, record
from core.camera import default_camera
from core.generator import PRESETS, Generator
from inversion.config import PRESET_NAMES, preset_settings
from inversion.latent_search import invert_latent
from inversion.objective import LossNetworks, Objective
from inversion.pivotal_tuning import tune_generator
from inversion.preprocess import InversionTarget
from inversion.steps import last_step, render_views


def lively_generator(preset: str, device: torch.device) -> Generator:
    """A random-weight generator whose output depends on w (fresh generators have zero layer scales)."""
    torch.manual_seed(0)
    G = Generator(PRESETS[preset])
    with torch.no_grad():
        for name, p in G.named_parameters():
            if ".scale" in name and name.endswith("weight"):
                p.normal_(0.0, 0.2)
    return G.eval().to(device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run(G, target, settings, obj1, obj2, graphs: bool | None, device) -> tuple[float, float, object]:
    """(stage-1 seconds, stage-2 seconds, stage-1 last step)."""
    sync(device)
    t0 = time.perf_counter()
    s1 = last_step(invert_latent(G, target, settings.latent, obj1, cuda_graphs=graphs))
    sync(device)
    t1 = time.perf_counter()
    last_step(tune_generator(G, s1.ws, target, settings.tuning, obj2, cuda_graphs=graphs))
    sync(device)
    return t1 - t0, time.perf_counter() - t1, s1


def profile(G, target, settings, obj1, obj2, graphs: bool | None, steps: int, device) -> None:
    """Print the top ops of ``steps`` steps of each stage (after 3 warm-up steps) and launches per step."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    for stage in ("latent", "tuning"):
        lat = dataclasses.replace(settings.latent, steps=steps + 3)
        tun = dataclasses.replace(settings.tuning, steps=steps + 3)
        gen = (invert_latent(G, target, lat, obj1, cuda_graphs=graphs) if stage == "latent" else
               tune_generator(G, G.mapping.w_avg[None, None], target, tun, obj2, cuda_graphs=graphs))
        for _ in range(3):
            next(gen)
        sync(device)
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with torch_profile(activities=acts) as prof:
            for _ in range(steps):
                next(gen)
            sync(device)
        gen.close()
        events = prof.key_averages()
        kernels = sum(e.count for e in events if e.device_type.name == "CUDA")
        launches = sum(e.count for e in events if e.key in ("cudaLaunchKernel", "cuLaunchKernel", "cudaGraphLaunch",
                                                            "cudaLaunchKernelExC"))
        cpu_total = sum(e.self_cpu_time_total for e in events) / 1000 / steps
        gpu_total = sum(e.self_device_time_total for e in events if e.device_type.name == "CUDA") / 1000 / steps
        print(f"\n--- profile: {stage}, cuda graphs {graphs}: per step {kernels / steps:.0f} GPU kernels, "
              f"{launches / steps:.0f} host launches, host self time {cpu_total:.1f} ms, GPU kernel time "
              f"{gpu_total:.1f} ms")
        sort = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
        print(events.table(sort_by=sort, row_limit=12, max_name_column_width=60))
        print(events.table(sort_by="self_cpu_time_total", row_limit=10, max_name_column_width=60))


def pipeline_time(args, device: torch.device) -> None:
    """The panel's default run on a real model and photo (see the module docstring)."""
    import os

    from core.model_files import load_generator
    from inversion.config import default_preset
    from inversion.pipeline import Failed, Finished, run_inversion

    G = load_generator(args.model, device).generator.float().eval()
    recipe = args.recipe_given or default_preset(device.type)
    settings = preset_settings(recipe, resolution=G.config.resolution, offline=True)
    t0 = time.perf_counter()
    result = None
    for ev in run_inversion(G, [args.photo], settings):
        if isinstance(ev, Failed):
            raise SystemExit(ev.message)
        if isinstance(ev, Finished):
            result = ev.result
    total = time.perf_counter() - t0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    dev = device_name(device)
    fit = settings.latent.max_resolution
    fitted = f", fitted at {fit} px" if 0 < fit < G.config.resolution else ""
    note = (f"{args.model}, preset {recipe} ({settings.latent.steps} + {settings.tuning.steps} steps, offline losses "
            f"MSE+SSIM{fitted}), one {G.config.resolution} px photo ({os.path.basename(args.photo)}), "
            "whole pipeline; "
            f"load average {load:.1f} at the end (a shared machine)")
    print(f"pipeline: preprocess {result.preprocess_seconds:.1f} s, stage 1 {result.latent.seconds:.1f} s, stage 2 "
          f"{result.tuning.seconds:.1f} s, total {total:.1f} s on {dev} ({note})")
    if not args.no_record and device.type == "cpu":
        record("inversion_s_cpu_default", total, "s", dev, note=note)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cgs512", choices=sorted(PRESETS), help="generator architecture")
    ap.add_argument("--recipe", default=None, choices=PRESET_NAMES,
                    help="inversion preset (default: thorough; with --model: the device's default)")
    ap.add_argument("--model", default=None, help="time the whole pipeline on this model file (with --photo)")
    ap.add_argument("--photo", default=None, help="the photo for --model")
    ap.add_argument("--steps", type=int, default=None, help="override the recipe's stage-1 steps")
    ap.add_argument("--tune-steps", type=int, default=None, help="override the recipe's stage-2 steps")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--tf32", action="store_true", help="allow TF32 matmuls")
    ap.add_argument("--no-graphs", action="store_true", help="eager only (no CUDA graphs)")
    ap.add_argument("--compare-eager", action="store_true", help="also time the eager path")
    ap.add_argument("--profile", type=int, default=0, metavar="N", help="profile N steps of each stage")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    args.recipe_given, args.recipe = args.recipe, args.recipe or "thorough"
    if args.model:
        if not args.photo:
            raise SystemExit("--model needs --photo")
        pipeline_time(args, device)
        return
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32
    G = lively_generator(args.preset, device)
    res = G.config.resolution
    settings = preset_settings(args.recipe, resolution=res, networks=LossNetworks(allow_random=True))
    settings = dataclasses.replace(
        settings, latent=dataclasses.replace(settings.latent, steps=args.steps or settings.latent.steps),
        tuning=dataclasses.replace(settings.tuning, steps=args.tune_steps or settings.tuning.steps))
    cam = default_camera().reshape(1).to(device)
    with torch.no_grad():
        image = render_views(G, G.map(torch.randn(1, G.config.z_dim, device=device)), cam, res)
    target = InversionTarget(image, torch.ones_like(image[:, :1]), cam, ("render",))
    obj1 = Objective(settings.latent.losses, settings.preprocess.framing, settings.networks).to(device)
    obj2 = Objective(settings.tuning.losses, settings.preprocess.framing, settings.networks).to(device)
    variants = [None] if not args.no_graphs else [False]
    if args.compare_eager and not args.no_graphs:
        variants.append(False)
    dev = device_name(device)
    for graphs in variants:
        warm = dataclasses.replace(settings, latent=dataclasses.replace(settings.latent, steps=3),
                                   tuning=dataclasses.replace(settings.tuning, steps=3))
        try:
            run(G, target, warm, obj1, obj2, graphs, device)  # cudnn autotuning, lazy inits, gsplat JIT load
            t1, t2, _ = run(G, target, settings, obj1, obj2, graphs, device)
        except Exception:  # a refused capture must not hide the eager figures
            import traceback

            traceback.print_exc()
            continue
        n1, n2 = settings.latent.steps, settings.tuning.steps
        mode = "CUDA graphs" if graphs is None and device.type == "cuda" else "eager"
        note = (f"{args.preset}, recipe {args.recipe}: {n1} latent + {n2} tuning steps, 1 photo, stand-in "
                f"LPIPS/ID nets (random weights, real architectures), fp32, tf32 {'on' if args.tf32 else 'off'}, "
                f"{mode}")
        print(f"stage 1: {t1:.2f} s ({1000 * t1 / n1:.1f} ms/step); stage 2: {t2:.2f} s ({1000 * t2 / n2:.1f} "
              f"ms/step); total {t1 + t2:.2f} s on {dev} ({note})", flush=True)
        if not args.no_record and graphs is variants[0]:
            record(f"inversion_s_{res}", t1 + t2, "s", dev, note=note)
            record(f"inversion_latent_ms_per_step_{res}", 1000 * t1 / n1, "ms", dev, note=note)
            record(f"inversion_tuning_ms_per_step_{res}", 1000 * t2 / n2, "ms", dev, note=note)
    if args.profile > 0:
        for graphs in variants[::-1]:
            profile(G, target, settings, obj1, obj2, graphs, args.profile, device)


if __name__ == "__main__":
    main()
