"""One discriminator step per blur implementation (``TrainOptions.d_blur``): the D alone, no generator.

Times, for each ``--impls`` value on the same D (same weights, same inputs): ``plain``, a forward and backward
(weights and input, as the G and D steps), and ``r1``, a forward, the input gradient with ``create_graph`` and
the backward of ``|grad|^2`` (the lazy R1 step's double backward). The D is the recipe's (``--recipe``,
training/recipes.py: channel_base, bf16 blocks, channels-last on CUDA); under ``--autocast`` its top
``d_bf16_blocks`` blocks run in bf16 as in training. Also prints how far each implementation's logits and
weight gradients are from the float32 convolution blur's (the worst per-tensor relative L2 error; under
``--autocast`` the bf16 convolution blur's own error is the noise floor to compare with). Repeats are
interleaved (impl A, B, A, B, ...) and the minimum is reported, which suits a shared CPU; on CUDA it
synchronizes around each step.

Prints only; it records no figure (the training figures are bench/train_speed.py's). A CPU timing says
nothing about cuDNN's depthwise kernels, which are what ``slices`` is meant to avoid.

    python -m bench.d_blur_step --device cpu --batch 4 --threads 1
    python -m bench.d_blur_step --device cuda --batch 128 --autocast    # the recipe's G-step D batch (V x B)
"""

from __future__ import annotations

import argparse
import time

import torch

from training.discriminator import Discriminator
from training.discriminator_conv import BLUR_IMPLS
from training.options import TrainOptions
from training.recipes import RECIPES
from training.trainer import build_discriminator


def build(recipe: str, impl: str, device: torch.device) -> Discriminator:
    """The recipe's discriminator as training builds it (training.trainer.build_discriminator), blur ``impl``."""
    r = RECIPES[recipe]
    torch.manual_seed(0)
    return build_discriminator(TrainOptions(data="-", **{**r.overrides(), "d_blur": impl}), r.image_resolution(), device)


def step(d: Discriminator, x: torch.Tensor, c: torch.Tensor, kind: str, autocast: bool):
    """One step; returns (logits, {name: weight gradient})."""
    d.zero_grad(set_to_none=True)
    x = x.detach().requires_grad_(True)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast):
        logits = d(x, c)
    if kind == "r1":
        (gx,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
        gx.square().sum(dim=(1, 2, 3)).mean().backward()
    else:
        torch.nn.functional.softplus(logits).mean().backward()
    return logits.detach(), {k: p.grad for k, p in d.named_parameters() if p.grad is not None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="cpu128", choices=list(RECIPES))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--impls", nargs="+", default=list(BLUR_IMPLS), choices=BLUR_IMPLS)
    ap.add_argument("--autocast", action="store_true", help="bf16 autocast for the recipe's bf16 blocks")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    ds = {impl: build(args.recipe, impl, dev) for impl in args.impls}
    res = ds[args.impls[0]].config.resolution
    g = torch.Generator().manual_seed(1)
    x = torch.randn(args.batch, 3, res, res, generator=g).to(dev)
    c = torch.randn(args.batch, 25, generator=g).to(dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    print(f"D of recipe {args.recipe} at {res} px, batch {args.batch}, {dev} "
          f"({'bf16 autocast' if args.autocast else 'float32'}, {torch.get_num_threads()} CPU threads)")
    reference = build(args.recipe, "conv", dev)
    for kind in ("plain", "r1"):
        ref_logits, ref_grads = step(reference, x, c, kind, autocast=False)
        for impl in args.impls:  # warm-up (cuDNN autotune) and the comparison
            logits, grads = step(ds[impl], x, c, kind, args.autocast)
            dl = float((logits - ref_logits).abs().max())
            dg = max(float((grads[k] - ref_grads[k]).norm() / ref_grads[k].norm().clamp_min(1e-30)) for k in grads)
            print(f"  {kind} {impl} vs float32 conv blur: logits max |diff| {dl:.2e}, weight gradients worst "
                  f"relative L2 error {dg:.2e}")
        times = {impl: [] for impl in args.impls}
        for _ in range(args.repeats):
            for impl in args.impls:
                sync()
                t = time.perf_counter()
                step(ds[impl], x, c, kind, args.autocast)
                sync()
                times[impl].append(time.perf_counter() - t)
        print(f"  {kind}: " + ", ".join(f"{impl} {min(v) * 1000:.0f} ms" for impl, v in times.items())
              + f" (min of {args.repeats})")


if __name__ == "__main__":
    main()
