"""Inversion speed: stage 1 (latent) + stage 2 (pivotal tuning) steps on one photo, end to end.

A random-weight generator of the chosen preset (speed does not depend on the weights, apart from how many
pixels the splats cover; the layer scales get random values so the latent matters as in a trained model),
one target image (a render of a random latent from the frontal camera) and the explicit stand-in loss networks
(LPIPS AlexNet and facenet InceptionResnetV1 with random weights: the same cost as the pretrained ones). No
previews (``preview_every=0``). Stage 2 includes the locality regulariser every step.

Records ``inversion_s_<res>`` (total seconds for ``--steps`` + ``--tune-steps``, the target is under 30 s for
500 + 300 at 512) and the per-step milliseconds of each stage.

    python -m bench.inversion [--preset cgs512] [--steps 500] [--tune-steps 300] [--bf16] [--tf32]
                              [--locality-every 1]
"""

from __future__ import annotations

import argparse
import time

import torch

from bench.results import device_name, record
from core.camera import default_camera
from core.generator import Generator, PRESETS
from inversion.framing import SYNTHETIC_HEADS
from inversion.latent_search import LatentConfig, invert_latent
from inversion.objective import LossNetworks, LossWeights, Objective
from inversion.pivotal_tuning import TuningConfig, tune_generator
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cgs512", choices=sorted(PRESETS))
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--tune-steps", type=int, default=300)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--bf16", action="store_true", help="bf16 feature path (G.feature_dtype)")
    ap.add_argument("--tf32", action="store_true", help="allow TF32 matmuls")
    ap.add_argument("--locality-every", type=int, default=1, help="stage-2 locality regulariser every N steps")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.benchmark = device.type == "cuda"
    G = lively_generator(args.preset, device)
    if args.bf16:
        G.feature_dtype = torch.bfloat16
    res = G.config.resolution
    cam = default_camera().reshape(1).to(device)
    with torch.no_grad():
        image = render_views(G, G.map(torch.randn(1, G.config.z_dim, device=device)), cam, res)
    target = InversionTarget(image, torch.ones_like(image[:, :1]), cam, ("render",))
    weights = LossWeights(id=0.1, mse=0.1, lpips=1.0)
    stand_ins = LossNetworks(allow_random=True)  # explicit: random-weight LPIPS / facenet, same cost
    obj1 = Objective(weights, SYNTHETIC_HEADS, stand_ins).to(device)
    obj2 = Objective(LossWeights(id=0.1, mse=1.0, lpips=1.0), SYNTHETIC_HEADS, stand_ins).to(device)
    lat = LatentConfig(steps=args.steps, batch_size=1, losses=weights, preview_every=0)
    tune = TuningConfig(steps=max(args.tune_steps, 1), batch_size=1, losses=obj2.weights, preview_every=0,
                        locality_every=args.locality_every)
    # Warm-up (cudnn autotuning, lazy inits, gsplat JIT load): a few steps of each stage.
    warm = last_step(invert_latent(G, target, LatentConfig(steps=3, batch_size=1, losses=weights,
                                                           preview_every=0), obj1))
    last_step(tune_generator(G, warm.ws, target, TuningConfig(steps=3, batch_size=1, losses=obj2.weights,
                                                             preview_every=0), obj2))
    sync(device)
    t0 = time.perf_counter()
    s1 = last_step(invert_latent(G, target, lat, obj1))
    sync(device)
    t1 = time.perf_counter()
    if args.tune_steps > 0:
        last_step(tune_generator(G, s1.ws, target, tune, obj2))
    sync(device)
    t2 = time.perf_counter()
    total = t2 - t0
    dev = device_name(device)
    flags = (f"{'bf16' if args.bf16 else 'fp32'} features, tf32 {'on' if args.tf32 else 'off'}, "
             f"locality every {args.locality_every}")
    note = (f"{args.preset}, {args.steps} latent + {args.tune_steps} tuning steps, 1 photo, stand-in LPIPS/ID nets, "
            f"{flags}")
    print(f"stage 1: {t1 - t0:.2f} s ({1000 * (t1 - t0) / args.steps:.1f} ms/step); stage 2: {t2 - t1:.2f} s; "
          f"total {total:.2f} s on {dev} ({note})")
    if not args.no_record:
        record(f"inversion_s_{res}", total, "s", dev, note=note)
        record(f"inversion_latent_ms_per_step_{res}", 1000 * (t1 - t0) / args.steps, "ms", dev, note=note)
        if args.tune_steps > 0:
            record(f"inversion_tuning_ms_per_step_{res}", 1000 * (t2 - t1) / args.tune_steps, "ms", dev, note=note)


if __name__ == "__main__":
    main()
