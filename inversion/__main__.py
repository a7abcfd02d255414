"""Photo(s) -> 3D head: ``python -m inversion photo.jpg [more.jpg ...] --model G.pkl --out results/``.

Runs preprocessing (detection, alignment, cameras), stage 1 (latent inversion) and stage 2 (pivotal tuning)
(:mod:`inversion.pipeline`) with progress bars, then writes everything listed in :mod:`inversion.outputs`.
A folder that already holds results is refused unless ``--overwrite``. Ctrl-C ends the current stage early
and still writes the results so far (twice: abort). Exit codes: 0 done, 2 bad input (no usable photo, bad
option, missing weight file, results already in --out), 130 interrupted before stage 1 took a step.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading

import torch
from tqdm import tqdm

from core.model_files import load_generator
from inversion.framing import FRAMINGS, get_framing
from inversion.latent_search import LatentConfig
from inversion.objective import LossNetworks, LossWeights
from inversion.outputs import OutputExistsError, check_output_folder, write_results
from inversion.pipeline import (Event, Failed, Finished, InversionSettings, StageFinished, StageStarted, StepDone,
                                run_inversion)
from inversion.pivotal_tuning import TuningConfig
from inversion.preprocess import PreprocessConfig
from inversion.webcam import WebcamError, grab_frames


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m inversion", description=__doc__,
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("photos", nargs="*", help="photos of one person (jpg/png/webp/...)")
    ap.add_argument("--webcam", type=int, default=0, metavar="N",
                    help="also grab N frames from the first webcam")
    ap.add_argument("--model", required=True,
                    help="generator file (.pkl: ours, an official CGS-GAN pickle or a GGHead checkpoint)")
    ap.add_argument("--out", required=True,
                    help="output folder (created); one that already holds results is refused")
    ap.add_argument("--overwrite", action="store_true", help="replace the results already in --out")
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


class _Progress:
    """tqdm bars for the pipeline's events (one per stage)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: tqdm | None = None

    def __call__(self, ev: Event) -> None:
        if isinstance(ev, StageStarted):
            self.close()
            self.bar = tqdm(total=ev.total, desc=STAGE_LABELS[ev.stage], disable=self.quiet, unit="step",
                            dynamic_ncols=True)
        elif isinstance(ev, StepDone) and self.bar is not None:
            self.bar.update(ev.step - self.bar.n)
            if ev.losses:
                self.bar.set_postfix({k: f"{v:.4f}" for k, v in ev.losses.items()}, refresh=False)
        elif isinstance(ev, StageFinished):
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@contextlib.contextmanager
def _ctrl_c_cancels(cancel: threading.Event, progress: _Progress):
    """While inside: the first Ctrl-C sets ``cancel`` (the pipeline ends its stage and keeps the result), the
    second raises KeyboardInterrupt as usual."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        progress.close()
        print("\ninterrupted: keeping the result so far (Ctrl-C again to abort)", file=sys.stderr)

    old = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


STAGE_LABELS = {"preprocess": "preprocessing", "latent": "stage 1 (latent)", "tuning": "stage 2 (tuning)"}


def settings_from_args(args: argparse.Namespace, resolution: int) -> InversionSettings:
    framing = get_framing(args.framing)
    lat_cfg = LatentConfig(steps=args.steps, lr=args.lr, warmup=args.warmup, rampdown=args.rampdown,
                           space=args.space, batch_size=args.batch_size,
                           losses=LossWeights(args.id_weight, args.mse_weight, args.lpips_weight),
                           w_avg_samples=args.w_avg_samples, noise_strength=args.noise,
                           refine_cameras=not args.no_camera_refine, camera_lr=args.camera_lr,
                           preview_every=0, seed=args.seed)
    tune_cfg = None
    if args.tune_steps > 0:
        tune_cfg = TuningConfig(steps=args.tune_steps, lr=args.tune_lr, batch_size=args.tune_batch_size,
                                losses=LossWeights(args.tune_id_weight, args.tune_mse_weight,
                                                   args.tune_lpips_weight),
                                locality_weight=args.locality_weight, locality_alpha=args.locality_alpha,
                                locality_every=args.locality_every,
                                lpips_stop=args.lpips_stop, preview_every=0, seed=args.seed)
    return InversionSettings(
        preprocess=PreprocessConfig(framing=framing, resolution=resolution, camera_model=args.camera_model),
        latent=lat_cfg, tuning=tune_cfg,
        networks=LossNetworks(args.weights_dir, args.random_loss_weights, args.lpips_net))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        out = check_output_folder(args.out, args.overwrite)
    except OutputExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        loaded = load_generator(args.model, args.device)
    except (OSError, ValueError) as exc:
        print(f"error: cannot load the model: {exc}", file=sys.stderr)
        return 2
    G = loaded.generator
    if args.bf16:
        G.feature_dtype = torch.bfloat16
    try:
        settings = settings_from_args(args, args.resolution or G.config.resolution)
    except ValueError as exc:
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

    cancel = threading.Event()
    progress = _Progress(args.quiet)
    result = None
    with _ctrl_c_cancels(cancel, progress):
        try:
            for ev in run_inversion(G, sources, settings, cancel):
                progress(ev)
                if isinstance(ev, Failed):
                    print(f"error: {ev.message}", file=sys.stderr)
                    return 2
                if isinstance(ev, StageFinished) and ev.stage == "preprocess":
                    for msg in ev.result.problems:  # type: ignore[union-attr]
                        print(f"skipped: {msg}", file=sys.stderr)
                    for msg in ev.result.messages:  # type: ignore[union-attr]
                        print(f"note: {msg}", file=sys.stderr)
                if isinstance(ev, Finished):
                    result = ev.result
        except KeyboardInterrupt:
            return 130
        finally:
            progress.close()
    if result is None or result.latent is None:
        print("error: stopped before stage 1 took a step; nothing written", file=sys.stderr)
        return 130
    write_results(out, G, result, settings, model=str(args.model), model_format=loaded.source_format,
                  device=str(args.device), orbit_count=args.orbit_frames, overwrite=args.overwrite,
                  extra={"command": ["python -m inversion", *(argv if argv is not None else sys.argv[1:])]})
    if not args.quiet:
        print(f"done: results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
