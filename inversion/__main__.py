"""Photo(s) -> 3D head: ``python -m inversion photo.jpg [more.jpg ...] --model G.pkl --out results/``.

Runs preprocessing (detection, alignment, cameras), stage 1 (latent inversion) and stage 2 (pivotal tuning)
with progress bars, then writes everything listed in :mod:`inversion.outputs`. Ctrl-C ends the current stage
early and still writes the results so far. Exit codes: 0 done, 2 bad input (no usable photo, bad option,
missing weight file), 130 interrupted during preprocessing.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import torch
from tqdm import tqdm

from core.model_files import load_generator
from inversion.framing import FRAMINGS, get_framing
from inversion.latent_search import LatentConfig, invert_latent
from inversion.objective import LossNetworks, LossWeights, Objective
from inversion.outputs import write_results
from inversion.pivotal_tuning import TuningConfig, tune_generator
from inversion.preprocess import InversionTarget, PreprocessConfig, make_target, preprocess_photos
from inversion.pretrained import MissingWeightsError
from inversion.steps import InversionStep
from inversion.webcam import WebcamError, grab_frames


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m inversion", description=__doc__,
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("photos", nargs="*", help="photos of one person (jpg/png/webp/...)")
    ap.add_argument("--webcam", type=int, default=0, metavar="N",
                    help="also grab N frames from the first webcam")
    ap.add_argument("--model", required=True,
                    help="generator file (.pkl: ours or an official CGS-GAN pickle)")
    ap.add_argument("--out", required=True, help="output folder (created)")
    ap.add_argument("--framing", default="synthetic-heads", choices=sorted(FRAMINGS),
                    help="the model's face framing")
    ap.add_argument("--resolution", type=int, default=None, help="aligned/render size (default: the model's)")
    ap.add_argument("--camera-model", default="pnp", choices=["pnp", "orbit"])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bf16", action="store_true", help="bf16 feature path on CUDA (faster; heads stay fp32)")
    g = ap.add_argument_group("stage 1: latent inversion")
    g.add_argument("--steps", type=int, default=500)
    g.add_argument("--lr", type=float, default=0.01)
    g.add_argument("--warmup", type=float, default=0.05, help="fraction of the steps")
    g.add_argument("--rampdown", type=float, default=0.25, help="fraction of the steps")
    g.add_argument("--space", default="w+", choices=["w", "w+"])
    g.add_argument("--batch-size", type=int, default=4)
    g.add_argument("--id-weight", type=float, default=0.1)
    g.add_argument("--mse-weight", type=float, default=0.1)
    g.add_argument("--lpips-weight", type=float, default=1.0)
    g.add_argument("--w-avg-samples", type=int, default=0, help="0: the model's w_avg")
    g.add_argument("--noise", type=float, default=0.05, help="latent noise strength (x w_std)")
    g.add_argument("--no-camera-refine", action="store_true")
    g.add_argument("--camera-lr", type=float, default=1e-3)
    t = ap.add_argument_group("stage 2: pivotal tuning")
    t.add_argument("--tune-steps", type=int, default=300, help="0 skips stage 2")
    t.add_argument("--tune-lr", type=float, default=3e-4)
    t.add_argument("--tune-batch-size", type=int, default=4)
    t.add_argument("--tune-id-weight", type=float, default=0.1)
    t.add_argument("--tune-mse-weight", type=float, default=1.0)
    t.add_argument("--tune-lpips-weight", type=float, default=1.0)
    t.add_argument("--locality-weight", type=float, default=0.1)
    t.add_argument("--locality-alpha", type=float, default=30.0)
    t.add_argument("--locality-every", type=int, default=1, help="apply the regulariser every N steps")
    t.add_argument("--lpips-stop", type=float, default=None)
    w = ap.add_argument_group("loss networks")
    w.add_argument("--weights-dir", default=None,
                   help="folder searched first for the pretrained weight files")
    w.add_argument("--lpips-net", default="alex", choices=["alex", "vgg"])
    w.add_argument("--random-loss-weights", action="store_true",
                   help="use untrained stand-ins for missing LPIPS/ID weights (testing only: not meaningful)")
    o = ap.add_argument_group("outputs")
    o.add_argument("--orbit-frames", type=int, default=48, help="0 skips the orbit video")
    o.add_argument("--quiet", action="store_true", help="no progress bars")
    return ap


def run_stage(steps: Iterator[InversionStep], total: int, label: str, quiet: bool, history: list[dict],
              cancel: threading.Event) -> InversionStep | None:
    """Drain a stage with a progress bar; Ctrl-C cancels it (the steps so far are kept)."""
    last = None
    bar = tqdm(total=total, desc=label, disable=quiet, unit="step", dynamic_ncols=True)
    try:
        for last in steps:
            history.append({"step": last.step, "lr": last.lr, **last.losses})
            bar.update(1)
            bar.set_postfix({k: f"{v:.4f}" for k, v in last.losses.items()}, refresh=False)
    except KeyboardInterrupt:
        cancel.set()
        done = 0 if last is None else last.step
        print(f"\n{label}: interrupted after {done} steps; keeping the result so far", file=sys.stderr)
    finally:
        bar.close()
    return last


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    try:
        loaded = load_generator(args.model, args.device)
    except (OSError, ValueError) as exc:
        print(f"error: cannot load the model: {exc}", file=sys.stderr)
        return 2
    G = loaded.generator
    if args.bf16:
        G.feature_dtype = torch.bfloat16
    framing = get_framing(args.framing)
    res = args.resolution or G.config.resolution
    pre_cfg = PreprocessConfig(framing=framing, resolution=res, camera_model=args.camera_model)
    networks = LossNetworks(args.weights_dir, args.random_loss_weights, args.lpips_net)
    lat_cfg = LatentConfig(steps=args.steps, lr=args.lr, warmup=args.warmup, rampdown=args.rampdown,
                           space=args.space, batch_size=args.batch_size,
                           losses=LossWeights(args.id_weight, args.mse_weight, args.lpips_weight),
                           w_avg_samples=args.w_avg_samples, noise_strength=args.noise,
                           refine_cameras=not args.no_camera_refine, camera_lr=args.camera_lr,
                           preview_every=0, seed=args.seed)
    tune_cfg = TuningConfig(steps=max(args.tune_steps, 1), lr=args.tune_lr, batch_size=args.tune_batch_size,
                            losses=LossWeights(args.tune_id_weight, args.tune_mse_weight,
                                               args.tune_lpips_weight),
                            locality_weight=args.locality_weight, locality_alpha=args.locality_alpha,
                            locality_every=args.locality_every,
                            lpips_stop=args.lpips_stop, preview_every=0, seed=args.seed)
    try:
        objective = Objective(lat_cfg.losses, framing, networks).to(args.device)
        tune_objective = None
        if args.tune_steps > 0:
            tune_objective = Objective(tune_cfg.losses, framing, networks).to(args.device)
    except MissingWeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    sources: list = list(args.photos)
    if args.webcam > 0:
        try:
            sources += grab_frames(args.webcam)
        except WebcamError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if not sources:
        print("error: give at least one photo (or --webcam N)", file=sys.stderr)
        return 2
    try:
        pre = preprocess_photos(sources, pre_cfg)
    except KeyboardInterrupt:
        return 130
    for msg in pre.problems:
        print(f"skipped: {msg}", file=sys.stderr)
    for msg in pre.messages:
        print(f"note: {msg}", file=sys.stderr)
    if not pre.aligned:
        print("error: no usable photo; nothing to invert", file=sys.stderr)
        return 2
    target: InversionTarget = make_target(pre.aligned)
    t_pre = time.perf_counter()

    cancel = threading.Event()
    hist1: list[dict] = []
    s1 = run_stage(invert_latent(G, target, lat_cfg, objective, cancel), lat_cfg.steps, "stage 1 (latent)",
                   args.quiet, hist1, cancel)
    t_s1 = time.perf_counter()
    if s1 is None:
        print("error: stage 1 took no step", file=sys.stderr)
        return 130
    refined = target.with_cameras(s1.cameras)
    hist2: list[dict] = []
    s2 = None
    if tune_objective is not None and not cancel.is_set():
        s2 = run_stage(tune_generator(G, s1.ws, refined, tune_cfg, tune_objective, cancel), tune_cfg.steps,
                       "stage 2 (tuning)", args.quiet, hist2, cancel)
    t_s2 = time.perf_counter()
    report = {
        "photos": list(target.names), "skipped": pre.problems, "notes": pre.messages,
        "model": str(args.model), "model_format": loaded.source_format, "framing": framing.name,
        "resolution": res, "device": str(args.device), "loss_networks": objective.sources,
        "settings": {k: (v if isinstance(v, (int, float, str, bool, type(None))) else str(v))
                     for k, v in vars(args).items()},
        "stage1": {"steps_done": s1.step, "final": s1.losses, "history": hist1},
        "stage2": None if s2 is None else {"steps_done": s2.step, "final": s2.losses, "history": hist2},
        "seconds": {"preprocess": t_pre - t_start, "stage1": t_s1 - t_pre, "stage2": t_s2 - t_s1},
    }
    write_results(out, G, pre.aligned, s1, framing, lat_cfg.space, None if s2 is None else s2.generator,
                  args.orbit_frames, report,
                  metadata={"inversion": {"photos": list(target.names), "model": str(args.model)}})
    if not args.quiet:
        print(f"done: results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
