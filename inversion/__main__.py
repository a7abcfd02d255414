"""Photo(s) -> 3D head: ``python -m inversion photo.jpg [more.jpg ...] --model G.safetensors --out results/``.

Runs preprocessing (detection, alignment, cameras), stage 1 (latent inversion) and stage 2 (pivotal tuning)
(:mod:`inversion.pipeline`) with progress bars, then writes everything listed in :mod:`inversion.outputs`.
A folder that already holds results is refused unless ``--overwrite``. Ctrl-C ends the current stage early
and still writes the results so far (twice: abort). Exit codes: 0 done, 2 bad input (no usable photo, bad
option, missing weight file, results already in --out), 130 interrupted before stage 1 took a step.
"""

from __future__ import annotations

import argparse
import typing
import contextlib
import dataclasses
import signal
import sys
import threading

import torch
from tqdm import tqdm

from core.model_files import load_generator
from inversion.config import PRESET_NAMES, default_preset, preset_settings
from inversion.framing import FRAMINGS, get_framing
from core.latent_fit import LatentSpace
from inversion.objective import LossNetworks
from inversion.preprocess import CameraModel
from inversion.outputs import OutputExistsError, check_output_folder, write_results
from inversion.pipeline import (Event, Failed, Finished, InversionSettings, StageFinished, StageStarted, StepDone,
                                run_inversion)
from inversion.webcam import WebcamError, grab_frames


# option -> (settings path, type, help); None keeps the preset's value (inversion/config.py owns the defaults)
OVERRIDES: dict[str, dict[str, tuple[str, type, str]]] = {
    "stage 1: latent inversion": {
        "--steps": ("latent.steps", int, "optimisation steps"),
        "--lr": ("latent.lr", float, "peak learning rate (w units per step)"),
        "--warmup": ("latent.warmup", float, "warm-up, fraction of the steps"),
        "--rampdown": ("latent.rampdown", float, "cosine ramp-down, fraction of the steps"),
        "--space": ("latent.space", str, "latent space: one w for all layers, or one per layer"),
        "--batch-size": ("latent.batch_size", int, "photos per step"),
        "--id-weight": ("latent.losses.id", float, "identity loss (facenet) weight"),
        "--mse-weight": ("latent.losses.mse", float, "pixel MSE weight"),
        "--ssim-weight": ("latent.losses.ssim", float, "1 - SSIM weight"),
        "--lpips-weight": ("latent.losses.lpips", float, "LPIPS weight"),
        "--noise": ("latent.noise_strength", float, "latent noise strength (x w_std)"),
        "--camera-lr": ("latent.camera_lr", float, "camera refinement step size (radians)"),
        "--no-camera-refine": ("latent.refine_cameras", bool, "keep the estimated cameras"),
        "--fit-resolution": ("latent.max_resolution", int, "fit at most at this many px (0: the photos' own; "
                             "quick: 128)"),
    },
    "stage 2: pivotal tuning": {
        "--tune-steps": ("tuning.steps", int, "optimisation steps (0: skip stage 2)"),
        "--tune-fit-resolution": ("tuning.max_resolution", int,
                                  "tune at most at this many px (0: the photos' own; quick: 128)"),
        "--tune-lr": ("tuning.lr", float, "learning rate"),
        "--tune-batch-size": ("tuning.batch_size", int, "photos per step"),
        "--tune-id-weight": ("tuning.losses.id", float, "identity loss weight"),
        "--tune-mse-weight": ("tuning.losses.mse", float, "pixel MSE weight"),
        "--tune-ssim-weight": ("tuning.losses.ssim", float, "1 - SSIM weight"),
        "--tune-lpips-weight": ("tuning.losses.lpips", float, "LPIPS weight"),
        "--geometry-weight": ("tuning.geometry_weight", float, "geometry anchor weight"),
        "--hidden-weight": ("tuning.hidden_weight", float, "hidden-Gaussian anchor weight"),
        "--view-weight": ("tuning.view_weight", float, "turned-away view anchor weight"),
        "--weight-anchor": ("tuning.weight_anchor", float, "pull of the weights toward the original"),
        "--locality-weight": ("tuning.locality_weight", float, "PTI locality regulariser weight"),
        "--locality-alpha": ("tuning.locality_alpha", float, "locality latent distance from the pivot"),
        "--locality-every": ("tuning.locality_every", int, "apply the locality regulariser every N steps"),
        "--lpips-stop": ("tuning.lpips_stop", float, "stop once LPIPS is at or below this"),
    },
}


CHOICES = {"--space": typing.get_args(LatentSpace)}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m inversion", description=__doc__,
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("photos", nargs="*", help="photos of one person (jpg/png/webp/...)")
    ap.add_argument("--webcam", type=int, default=0, metavar="N",
                    help="also grab N frames from the first webcam")
    ap.add_argument("--model", required=True,
                    help="generator file (.safetensors or .safetensors.index.json: ours; .pkl: an official CGS-GAN pickle, a GGHead checkpoint or our older data-only format)")
    ap.add_argument("--out", required=True,
                    help="output folder (created); one that already holds results is refused")
    ap.add_argument("--overwrite", action="store_true", help="replace the results already in --out")
    ap.add_argument("--framing", default="synthetic-heads", choices=sorted(FRAMINGS),
                    help="the model's face framing")
    ap.add_argument("--resolution", type=int, default=None,
                    help="aligned photo size (default: the model's); the fit may run smaller "
                         "(--fit-resolution)")
    ap.add_argument("--camera-model", default="pnp", choices=typing.get_args(CameraModel),
                    help="the camera estimated from the landmarks: pnp keeps the full PnP pose, orbit snaps it onto "
                         "the sphere the generator was trained on")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                    help="torch device: cpu, cuda or cuda:N")
    ap.add_argument("--seed", type=int, default=0, help="photo subsets per step and the locality latents")
    ap.add_argument("--bf16", action="store_true", help="bf16 feature path on CUDA (faster; heads stay fp32)")
    ap.add_argument("--preset", default=None, choices=PRESET_NAMES,
                    help="step counts and settings (default: quick on the CPU, standard on a GPU); the options "
                         "below override single settings")
    for group, options in OVERRIDES.items():
        g = ap.add_argument_group(group + " (default: the preset's)")
        for flag, (path, kind, text) in options.items():
            if kind is bool:
                g.add_argument(flag, default=None, action="store_const", const=True, help=text)
            elif flag in CHOICES:
                g.add_argument(flag, type=kind, default=None, choices=CHOICES[flag], help=text)
            else:
                g.add_argument(flag, type=kind, default=None, help=text)
    ap.add_argument("--no-tuning", action="store_true", help="skip stage 2")
    w = ap.add_argument_group("loss networks")
    w.add_argument("--weights-dir", default=None,
                   help="folder searched first for the pretrained weight files")
    w.add_argument("--lpips-net", default="alex", choices=["alex", "vgg"])
    w.add_argument("--offline", action="store_true",
                   help="never download a missing weight file (default: fetched on first use into the torch cache)")
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
    """The preset's settings with the options the user gave applied (ValueError for bad values)."""
    preset = args.preset or default_preset(torch.device(args.device).type)
    if args.tune_steps == 0:  # the old way to skip stage 2
        args.no_tuning, args.tune_steps = True, None
    settings = preset_settings(preset, resolution=resolution, framing=get_framing(args.framing),
                               networks=LossNetworks(args.weights_dir, args.random_loss_weights, args.lpips_net,
                                                     args.offline), tuning=not args.no_tuning)
    settings = dataclasses.replace(
        settings, preprocess=dataclasses.replace(settings.preprocess, camera_model=args.camera_model),
        latent=dataclasses.replace(settings.latent, seed=args.seed),
        tuning=None if settings.tuning is None else dataclasses.replace(settings.tuning, seed=args.seed))
    for options in OVERRIDES.values():
        for flag, (path, kind, _) in options.items():
            value = getattr(args, flag.lstrip("-").replace("-", "_"))
            if value is None or (path.startswith("tuning.") and settings.tuning is None):
                continue
            if flag == "--no-camera-refine":
                value = False
            settings = _replace_path(settings, path.split("."), value)
    return settings


def _replace_path(obj, path: list[str], value):
    if len(path) == 1:
        return dataclasses.replace(obj, **{path[0]: value})
    return dataclasses.replace(obj, **{path[0]: _replace_path(getattr(obj, path[0]), path[1:], value)})


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
