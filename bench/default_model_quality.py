"""Ground-truth quality of a generator (the default model by default), recorded as benchmark figures.

    python -m bench.default_model_quality --data out/heads256_heldout [--network M] [--resolution R]
        [--metrics gt_fit consistency floaters] [--tag v1-256]

The data is a synthetic-heads dataset with a held-out split; its evaluation part alone is enough:
``python -m training.synthetic_heads --out out/heads256_heldout --num-identities 8000 --views-per-identity 6
--full-yaw-fraction 0.5 --resolution 256 --test-fraction 0.008 --seed 0 --held-out-only`` (the split of the v2
dataset, tools/train_default_model_v2.sh). Figures (training/metrics; docs/default-model-v2.md):

    default_model_gt_fit_psnr         dB, 16 held-out heads, W+ fitted to all 10 evaluation views
                                      (2,000 steps at lr 0.03: training.metrics.groundtruth.GtFitSettings)
    default_model_gt_fit_ssim         the same fits' SSIM
    default_model_consistency_psnr    dB, reprojection consistency, 32 heads, views 20 deg apart, view A
                                      frontal (yaw ~ N(0, 20 deg)): the protocol of v1's 26.3 dB
    default_model_consistency_psnr_full  the same with view A anywhere on the circle (the back included)
    default_model_floaters            %, opacity outside the head's dilated silhouette, 64 heads at psi 1.0,
                                      the 10 evaluation views

``--ground-truth`` measures the consistency of the held-out split's own heads instead (the first 32 of
``--data``, their Gaussians as written; ``@ground-truth`` unless ``--tag`` says otherwise): the ceiling a
generator of such heads can reach under the same protocol (``--resolution`` required).

Each is measured at ``--resolution`` (default: the generator's). With ``--tag T`` the names get ``@T``
(e.g. ``default_model_gt_fit_psnr@v1-256``), which keeps several models and resolutions side by side;
without a tag they describe the model measured (the note names it) and replace the previous figure.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from bench.results import device_name, record
from core.model_files import load_generator
from training.metrics.consistency import (
    ConsistencyResult, generator_consistency, load_eval_split, scenes_consistency,
)
from training.metrics.floaters import generator_floaters
from training.metrics.groundtruth import GtFitSettings, gt_fit
from training.metrics.sampling import full_circle_labels

DEFAULT_NETWORK = Path(__file__).resolve().parents[1] / "assets" / "default_model.safetensors"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--network", type=Path, default=DEFAULT_NETWORK)
    ap.add_argument("--data", type=Path, help="synthetic-heads dataset with a held-out split (gt_fit, floaters)")
    ap.add_argument("--metrics", nargs="+", default=["gt_fit", "consistency", "floaters"],
                    choices=["gt_fit", "consistency", "floaters"])
    ap.add_argument("--resolution", type=int, default=None)
    ap.add_argument("--tag", default="")
    ap.add_argument("--gt-steps", type=int, default=GtFitSettings.steps, help="gt_fit: optimisation steps")
    ap.add_argument("--gt-lr", type=float, default=GtFitSettings.lr, help="gt_fit: Adam step size (w units)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--figure", type=Path, default=None,
                    help="gt_fit: save the first 4 heads' truth (odd rows) and fits (even rows), 10 views, as PNG")
    ap.add_argument("--ground-truth", action="store_true",
                    help="consistency of the held-out split's own heads (the ceiling), not of a generator")
    args = ap.parse_args(argv)
    if args.ground_truth:
        if args.data is None or args.resolution is None or set(args.metrics) != {"consistency"}:
            ap.error("--ground-truth needs --data, --resolution and --metrics consistency")
        ground_truth_consistency(args.data, args.resolution, args.tag or "ground-truth")
        return
    device = torch.device(args.device)
    G = load_generator(args.network, device).generator.eval()
    res = args.resolution or G.config.resolution
    sha = hashlib.sha256(args.network.read_bytes()).hexdigest()[:12]
    model = (f"{args.network.name} (sha256 {sha}, {G.config.num_gaussians:,} Gaussians, made for "
             f"{G.config.resolution} px) at {res} px")
    dev = device_name(device)
    suffix = f"@{args.tag}" if args.tag else ""
    split = load_eval_split(args.data, limit=16) if args.data is not None else None
    if "gt_fit" in args.metrics:
        if split is None:
            ap.error("gt_fit needs --data")
        t0 = time.time()
        settings = GtFitSettings(heads=16, steps=args.gt_steps, lr=args.gt_lr, resolution=res)
        r = gt_fit(G, split, settings, device=device, progress=True)
        what = (f"{model}; held-out identities {split[0].identity}-{split[15].identity} of {args.data.name}, "
                f"W+ fitted to all 10 evaluation views, "
                f"{args.gt_steps} steps at lr {args.gt_lr:g}; "
                "per view (0, -45, 45, -90, 90, -135, 135, 180, up, down): "
                + " ".join(f"{v:.1f}" for v in r.psnr_by_view) + f" dB; outside the true silhouette "
                f"{100 * r.outside_gt:.2f} %; {time.time() - t0:.0f} s")
        if args.figure is not None:
            rows = [np.concatenate(list(im), axis=1) for h in r.heads[:4] for im in (h.truth, h.render)]
            args.figure.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.concatenate(rows, axis=0)).save(args.figure)
        record(f"default_model_gt_fit_psnr{suffix}", r.psnr, "dB", dev, note=what)
        record(f"default_model_gt_fit_ssim{suffix}", r.ssim, "SSIM", dev, note=what)
    if "consistency" in args.metrics:
        def measure(labels):
            return generator_consistency(G, 32, res, 20.0, labels=labels, seed=0, batch=4, device=device)

        record_consistency(measure, model, 32, suffix, dev)
    if "floaters" in args.metrics:
        from training.synthetic_heads.cameras import eval_cameras

        cams = split[0].cameras if split else eval_cameras()
        r = generator_floaters(G, cams, 64, res, 1.0, seed=0, batch=4, device=device)
        record(f"default_model_floaters{suffix}", 100 * r.share, "%", dev,
               note=f"{model}; 64 heads at psi 1.0 x the 10 evaluation views")


def ground_truth_consistency(data: Path, resolution: int, tag: str, heads: int = 32) -> None:
    """Record ``default_model_consistency_psnr[_full]@tag`` for the first ``heads`` held-out heads of ``data``."""
    split = load_eval_split(data, limit=heads)
    if len(split) < heads:
        raise SystemExit(f"{data}: the held-out split has {len(split)} heads, {heads} needed")
    scenes = [identity.gt for identity in split]
    subject = (f"ground truth: held-out identities {split[0].identity}-{split[-1].identity} of {data.name} "
               f"(their Gaussians) at {resolution} px")
    record_consistency(lambda labels: scenes_consistency(scenes, resolution, 20.0, labels=labels, seed=0),
                       subject, heads, f"@{tag}", device_name(torch.device("cpu")))


def record_consistency(measure: Callable[[torch.Tensor | None], ConsistencyResult], subject: str, heads: int,
                       suffix: str, device: str) -> None:
    """Record ``default_model_consistency_psnr<suffix>`` (view A frontal) and ``..._full<suffix>`` (view A
    anywhere on the circle) from ``measure(labels)``, which returns the pooled result for view-A ``labels``
    (None: frontal)."""
    for views, labels in (("", None), ("_full", full_circle_labels(4096, seed=0))):
        r = measure(labels)
        view_a = "anywhere on the circle" if labels is not None else "yaw ~ N(0, 20 deg)"
        what = (f"{subject}; {heads} heads, views 20 deg apart, view A {view_a}; depth agreement "
                f"{r.depth_agreement:.3f}, depth spread {r.depth_spread:.4f}, coverage {r.coverage:.2f}")
        record(f"default_model_consistency_psnr{views}{suffix}", r.psnr, "dB", device, note=what)


if __name__ == "__main__":
    main()
