"""The arithmetic a training step needs, counted, and the GPU's matrix peak: the two numbers behind MFU.

FLOPs are counted, not estimated: every matrix product and convolution that PyTorch dispatches is counted
with the formulas of ``torch.utils.flop_counter`` (2 per multiply-add), for one image or scene, and scaled
by the recipe's batch. The discriminator is counted on the meta device (no memory, no time); the
generator on the given device with one scene (its attention is counted only where the fused attention
kernels run, i.e. on CUDA). Element-wise work, the rasterizer and the optimizer are not counted: they are
memory-bound and the profile (bench/train_profile.py) shows their time separately.

Per optimizer step of ``batch`` images (R = r1_interval, V = views, B = batch):

    G step:  G forward + backward (B scenes) + D forward and input gradient (V x B images, D frozen)
    D step:  G forward (B scenes, no grad) + D forward and backward (2 B images: reals and fakes)
    R1:      D forward, input gradient with graph, and its backward (B reals), every R steps: / R

    python -m bench.train_flops --preset cpu128 --resolution 128 --batch 32 --views 4   # prints the table
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode


class FlopCount(TorchDispatchMode):
    """Counts the FLOPs of dispatched matrix products and convolutions (forward and backward alike).

    (``torch.utils.flop_counter.FlopCounterMode`` itself hooks modules, which breaks ``autograd.grad`` with
    ``create_graph``; this uses its formulas without the hooks.)"""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0
        self._registry = FlopCounterMode(display=False).flop_registry

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = self._registry.get(func._overloadpacket)
        if formula is not None:
            self.total += int(formula(*args, **kwargs, out_val=out))
        return out


@dataclass(frozen=True)
class DFlops:
    """FLOPs per image of a discriminator: ``forward``; ``input_grad``: forward + gradient w.r.t. the image
    with frozen weights (the G step); ``weight_grad``: forward + backward to the weights (the D step);
    ``r1``: forward + input gradient with graph + its backward to the weights (the R1 step)."""

    forward: int
    input_grad: int
    weight_grad: int
    r1: int


def discriminator_flops(config) -> DFlops:
    from training.discriminator import Discriminator

    D = Discriminator(config).to("meta")
    r = config.resolution
    c = torch.empty(1, config.c_dim, device="meta")

    def count(fn) -> int:
        with FlopCount() as f:
            fn()
        return f.total

    x = torch.empty(1, 3, r, r, device="meta")
    xg = torch.empty(1, 3, r, r, device="meta", requires_grad=True)

    def r1() -> None:
        (g,) = torch.autograd.grad(D(xg, c).sum(), xg, create_graph=True)
        g.square().sum().backward()

    forward = count(lambda: D(x, c))
    weight_grad = count(lambda: D(x, c).sum().backward())
    r1_flops = count(r1)
    D.requires_grad_(False)
    input_grad = count(lambda: torch.autograd.grad(D(xg, c).sum(), xg))
    return DFlops(forward, input_grad, weight_grad, r1_flops)


def generator_flops(g_config, device: torch.device | str = "cpu") -> tuple[int, int]:
    """``(forward, forward + backward)`` FLOPs of one scene (backward from every Gaussian attribute)."""
    from core.generator import Generator

    G = Generator(g_config).to(device)
    z = torch.randn(1, g_config.z_dim, device=device)
    with FlopCount() as f, torch.no_grad():
        G(z)
    forward = f.total
    with FlopCount() as f:
        out = G(z)
        parts: list[torch.Tensor] = []
        out.gaussians.map(lambda t: parts.append(t.float().sum()) or t)
        (torch.stack(parts).sum() + out.anchors.sum()).backward()
    return forward, f.total


@dataclass(frozen=True)
class StepFlops:
    """Counted FLOPs of one optimizer step, by part (see the module docstring)."""

    d_g_step: float
    d_d_step: float
    d_r1: float
    g_g_step: float
    g_d_step: float

    @property
    def total(self) -> float:
        return self.d_g_step + self.d_d_step + self.d_r1 + self.g_g_step + self.g_d_step

    def rows(self) -> list[tuple[str, float]]:
        return [("D in the G step (V x B images, forward + input gradient)", self.d_g_step),
                ("D in the D step (2 B images, forward + backward)", self.d_d_step),
                ("D in R1 (B images / r1_interval)", self.d_r1),
                ("G in the G step (B scenes, forward + backward)", self.g_g_step),
                ("G in the D step (B scenes, forward)", self.g_d_step)]


def step_flops(d_config, g_config, batch: int, views: int, r1_interval: int, gamma: float = 1.0,
               device: torch.device | str = "cpu") -> StepFlops:
    d = discriminator_flops(d_config)
    g_fwd, g_fwd_bwd = generator_flops(g_config, device)
    r1 = d.r1 * batch / r1_interval if gamma > 0 else 0.0
    return StepFlops(d.input_grad * views * batch, d.weight_grad * 2 * batch, r1, g_fwd_bwd * batch, g_fwd * batch)


def recipe_step_flops(opts, resolution: int, device: torch.device | str = "cpu") -> StepFlops:
    """:func:`step_flops` for a :class:`training.options.TrainOptions` (per step of ``opts.batch``)."""
    import dataclasses

    from core.generator import PRESETS
    from training.trainer import discriminator_config

    # the arithmetic does not depend on the precision: counted on the float32 network
    d_config = dataclasses.replace(discriminator_config(opts, resolution), num_autocast_blocks=0)
    views = opts.num_views if opts.multiview else 1
    return step_flops(d_config, PRESETS[opts.preset], opts.batch, views, opts.r1_interval, opts.gamma, device)


def matmul_peak_tflops(dtype: torch.dtype = torch.bfloat16, n: int = 8192, reps: int = 30,
                       device: str = "cuda") -> float:
    """Median TFLOP/s of an ``n x n x n`` matrix product on random data (TF32 when ``dtype`` is float32 and
    TF32 is allowed), timed with CUDA events after a warm-up; four input pairs in rotation."""
    g = torch.Generator(device).manual_seed(0)
    pairs = [(torch.randn(n, n, device=device, dtype=dtype, generator=g),
              torch.randn(n, n, device=device, dtype=dtype, generator=g)) for _ in range(4)]
    out = torch.empty(n, n, device=device, dtype=dtype)
    for a, b in pairs:
        torch.matmul(a, b, out=out)
    times = []
    for i in range(reps):
        a, b = pairs[i % len(pairs)]
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        torch.matmul(a, b, out=out)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1000)
    times.sort()
    return 2 * n**3 / times[len(times) // 2] / 1e12


def main() -> None:
    from core.generator import PRESETS
    from training.discriminator import DiscriminatorConfig

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu128")
    ap.add_argument("--resolution", type=int, default=None)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--r1-interval", type=int, default=16)
    ap.add_argument("--d-channel-base", type=int, nargs="+", default=[32768])
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    g_config = PRESETS[args.preset]
    res = args.resolution or g_config.resolution
    for cb in args.d_channel_base:
        d_config = DiscriminatorConfig(resolution=res, channel_base=cb)
        d = discriminator_flops(d_config)
        f = step_flops(d_config, g_config, args.batch, args.views, args.r1_interval, device=args.device)
        print(f"{args.preset} at {res} px, D channel_base {cb}: D per image forward {d.forward / 1e9:.2f} GFLOP, "
              f"+input grad {d.input_grad / 1e9:.2f}, +weight grad {d.weight_grad / 1e9:.2f}, R1 {d.r1 / 1e9:.2f}")
        for name, v in f.rows():
            print(f"  {name:60s} {v / 1e12:8.3f} TFLOP/step")
        print(f"  {'total':60s} {f.total / 1e12:8.3f} TFLOP/step = {f.total / args.batch * 1000 / 1e12:.1f} "
              f"TFLOP/kimg")


if __name__ == "__main__":
    main()
