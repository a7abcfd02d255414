"""Render a generator file on the CPU (torch backend) as a seeds x views grid: front, three-quarter, side.

    python tools/default_model_grid.py assets/default_model.safetensors docs/images/training_synthetic_heads_128.png

Rows are seeds 0..N-1 (``--rows``), columns yaw 0, 45 and 90 degrees at pitch 0.1 rad, white background,
``--psi`` truncation (0.7 by default), at the generator's resolution (``--resolution`` to change).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

from core.camera import orbit_cameras
from core.model_files import load_generator
from core.render import render
from training.run_dir import save_grid

YAWS_DEG = (0.0, 45.0, 90.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("generator", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--rows", type=int, default=6)
    ap.add_argument("--psi", type=float, default=0.7)
    ap.add_argument("--resolution", type=int, default=None)
    args = ap.parse_args(argv)
    t0 = time.time()
    loaded = load_generator(args.generator, "cpu")
    G = loaded.generator
    res = args.resolution or G.config.resolution
    z = torch.stack([torch.randn(G.config.z_dim, generator=torch.Generator().manual_seed(s)) for s in range(args.rows)])
    cams = orbit_cameras(torch.tensor([math.radians(y) for y in YAWS_DEG]), 0.1)
    with torch.no_grad():
        scenes = G(z, truncation_psi=args.psi).gaussians  # [rows]
        out = render(scenes, cams, res, res, background=(1.0, 1.0, 1.0), mode="rgb", backend="torch")
    images = out.color.float().numpy()  # [rows, 3 views, H, W, 3]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_grid(args.out, images)
    print(f"{args.out}: {args.rows} seeds x yaw {YAWS_DEG} deg at {res} px, psi {args.psi}; "
          f"{G.config.num_gaussians:,} Gaussians, loaded as {loaded.source_format}, "
          f"{time.time() - t0:.1f} s on the CPU ({out.backend} backend)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
