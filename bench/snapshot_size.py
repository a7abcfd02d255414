"""Size of a training snapshot (the state that must move between machines), per part, on the CPU.

    python -m bench.snapshot_size --preset cpu128 --resolution 128 [--d-channel-base 32768] [--part-mib 15]

Builds the networks and Adam states of the recipe exactly as training does (one optimizer step on zero
gradients creates every Adam state), writes one training snapshot as a single file and as parts of at most
``--part-mib`` MiB, and prints what each part of the state costs. Nothing is recorded in bench/results.json
(the figure is a property of the recipe, not a measurement of speed).
"""

from __future__ import annotations

import argparse
import tempfile
from collections import defaultdict
from pathlib import Path

import torch


def main(argv: list[str] | None = None) -> int:
    from core.generator import PRESETS
    from core.snapshots import encode_snapshot
    from training.loop import build_models
    from training.options import TrainOptions
    from training.snapshots import TrainingProgress, build_snapshot, rng_state, save_training_snapshot

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu128")
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--d-channel-base", type=int, default=32768)
    ap.add_argument("--d-channel-max", type=int, default=512)
    ap.add_argument("--part-mib", type=float, default=15.0)
    args = ap.parse_args(argv)
    opts = TrainOptions(data="-", preset=args.preset, resolution=args.resolution,
                        d_channel_base=args.d_channel_base, d_channel_max=args.d_channel_max,
                        snapshot_max_part_mib=args.part_mib)
    m = build_models(opts, PRESETS[args.preset], args.resolution, torch.device("cpu"))
    for opt in (m.opt_G, m.opt_D):
        for group in opt.param_groups:
            for p in group["params"]:
                p.grad = torch.zeros_like(p)
        opt.step()
    snap = build_snapshot(m, opts, TrainingProgress(0, 1, 0), [rng_state(torch.device("cpu"))], 0)
    tensors, _ = encode_snapshot(snap)
    by_part: dict[str, int] = defaultdict(int)
    for name, t in tensors.items():
        head = name.split("/")
        key = "/".join(head[:2]) if head[0] == "optimizers" else head[0]
        key += "/" + head[-1] if head[0] == "optimizers" else ""
        by_part[key] += t.numel() * t.element_size()
    params = {n: sum(p.numel() for p in mod.parameters()) for n, mod in (("G", m.G), ("D", m.D))}
    print(f"{args.preset} at {args.resolution} px, D channel_base {args.d_channel_base}: "
          f"G {params['G'] / 1e6:.2f} M, D {params['D'] / 1e6:.2f} M parameters")
    for key, n in sorted(by_part.items(), key=lambda kv: -kv[1]):
        print(f"  {key:32s} {n / 2**20:8.2f} MiB")
    with tempfile.TemporaryDirectory() as tmp:
        one = save_training_snapshot(Path(tmp) / "one.safetensors", snap, None)
        parts = save_training_snapshot(Path(tmp) / "parts.safetensors", snap, args.part_mib)
        files = sorted(Path(tmp).glob("parts*"))
        print(f"one file: {one.stat().st_size / 2**20:.2f} MiB; parts of <= {args.part_mib:g} MiB: {len(files) - 1} "
              f"parts + index ({sum(f.stat().st_size for f in files) / 2**20:.2f} MiB, largest "
              f"{max(f.stat().st_size for f in files) / 2**20:.2f} MiB); index {parts.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
