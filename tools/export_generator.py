"""Export the EMA generator of a training snapshot as a weights-only generator file, optionally float16.

    python tools/export_generator.py runs/00000-cpu128-heads128-default out/default_model.safetensors --dtype float16

``SOURCE`` is a training snapshot (``.safetensors``, a sharded snapshot's ``.safetensors.index.json``, or a
format-1 ``.pkl``) or a run directory (its latest snapshot). The file is one ``.safetensors`` with its JSON
manifest, written with core.model_files.save_generator; float16 halves it (stored as F16 tensors;
load_generator copies them into the float32 network). The check reloads the file and compares the original and the
reloaded generator's renders (colour in [0, 1], 4 seeds, 3 views): ``--dtype auto`` (the default) keeps
float16 when the mean absolute difference is at most ``--tolerance``, else writes float32.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch

from core.camera import orbit_cameras
from core.model_files import load_generator, save_generator
from core.runs import latest_snapshot


def render_check(G_a, G_b, resolution: int) -> tuple[float, float]:
    """(max, mean) |colour difference| between two generators' renders (fixed seeds; front, 3/4, side)."""
    dev = next(G_a.parameters()).device
    z = torch.randn(4, G_a.config.z_dim, generator=torch.Generator().manual_seed(7)).to(dev)
    cams = orbit_cameras(torch.tensor([0.0, 0.6, 1.2]), 0.1).to(dev)
    with torch.no_grad():
        a = G_a(z, cameras=cams, resolution=resolution).render.color.float()
        b = G_b(z, cameras=cams, resolution=resolution).render.color.float()
    d = (a - b).abs()
    return float(d.max()), float(d.mean())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path, help="training snapshot or run directory")
    ap.add_argument("out", type=Path, help="generator file to write (.safetensors)")
    ap.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    ap.add_argument("--dtype", choices=["auto", "float32", "float16"], default="auto")
    ap.add_argument("--tolerance", type=float, default=2e-3, help="largest mean render difference for float16")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    snap = latest_snapshot(args.source) if args.source.is_dir() else args.source
    if snap is None:
        print(f"error: {args.source}: no snapshot", file=sys.stderr)
        return 2
    if args.out.exists() and not args.overwrite:
        print(f"error: {args.out} exists (pass --overwrite to replace it)", file=sys.stderr)
        return 2
    loaded = load_generator(snap, args.device)
    G = loaded.generator  # G_ema
    kimg = (loaded.metadata or {}).get("kimg")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for dtype in (["float16", "float32"] if args.dtype == "auto" else [args.dtype]):
        out_G = copy.deepcopy(G).to(getattr(torch, dtype))
        save_generator(out_G, args.out, metadata={"kimg": kimg, "source": snap.name, "weights_dtype": dtype})
        back = load_generator(args.out, args.device).generator
        worst, mean = render_check(G, back, G.config.resolution)
        print(f"{args.out}: {args.out.stat().st_size / 2**20:.2f} MiB, {dtype} weights of {snap} ({kimg} kimg); "
              f"render difference after reload: max {worst:.2e}, mean {mean:.2e}")
        if mean <= args.tolerance:
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
