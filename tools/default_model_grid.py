"""Render generator files on the CPU (torch backend) as uncurated seeds x views grids, models side by side.

    # v1 (the default until 2026-12-02): git show 6d17583:assets/default_model.safetensors > v1.safetensors
    # the v1 grid of docs/training.md (front, three-quarter, side; psi 0.7)
    python tools/default_model_grid.py v1.safetensors docs/images/training_synthetic_heads_128.png
    # round the head, psi 0.7 and 1.0 (two files, -psi0.7 / -psi1.0 before the extension)
    python tools/default_model_grid.py v1.safetensors docs/images/default_model_v1_round.png \\
        --yaws 0 45 90 135 180 --psi 0.7 1.0
    # v1 beside v2 at one resolution: each row is one seed, v1's views, a blank cell, v2's views
    python tools/default_model_grid.py v1.safetensors v2.safetensors docs/images/v1_v2.png --yaws 0 45 90 135 180 \\
        --psi 0.7 1.0 --resolution 256

Rows are seeds 0..N-1 (``--rows``), the same z for every model (models of one z_dim; otherwise each model
draws its own z from the same seed), columns are yaw angles in degrees (0 = front, 180 = back) at pitch
``--pitch`` rad, white background, at ``--resolution`` (default: the largest model resolution). Nothing is
picked: the seeds are 0..N-1.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from core.camera import orbit_cameras
from core.model_files import load_generator
from core.render import render
from training.run_dir import save_grid

DEFAULT_YAWS_DEG = (0.0, 45.0, 90.0)


def model_grid(G: torch.nn.Module, rows: int, yaws_deg: list[float], psi: float, resolution: int,
               pitch: float = 0.1) -> np.ndarray:
    """``[rows, len(yaws), R, R, 3]`` float renders of seeds 0..rows-1 (z from ``torch.Generator`` seed s)."""
    z = torch.stack([torch.randn(G.config.z_dim, generator=torch.Generator().manual_seed(s)) for s in range(rows)])
    cams = orbit_cameras(torch.tensor([math.radians(y) for y in yaws_deg]), pitch)
    with torch.no_grad():
        scenes = G(z, truncation_psi=psi).gaussians  # [rows]
        out = render(scenes, cams, resolution, resolution, background=(1.0, 1.0, 1.0), mode="rgb", backend="torch")
    return out.color.float().numpy()


def side_by_side(grids: list[np.ndarray]) -> np.ndarray:
    """Model grids ``[rows, cols_i, R, R, 3]`` joined along the columns with one white cell between models."""
    rows, _, h, w, _ = grids[0].shape
    blank = np.ones((rows, 1, h, w, 3), np.float32)
    parts = [grids[0]]
    for g in grids[1:]:
        parts += [blank, g]
    return np.concatenate(parts, axis=1)


def output_path(out: Path, psi: float, many: bool) -> Path:
    """``out``, or with several psi values ``stem-psi0.7.ext`` (``psi1.0``, not ``psi1``)."""
    tag = f"{psi:g}" if "." in f"{psi:g}" else f"{psi:.1f}"
    return out.with_name(f"{out.stem}-psi{tag}{out.suffix}") if many else out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("generators", type=Path, nargs="+", help="one or more generator files (core.model_files)")
    ap.add_argument("out", type=Path, help="output .png (with several --psi: one file per psi, -psiP added)")
    ap.add_argument("--rows", type=int, default=6)
    ap.add_argument("--psi", type=float, nargs="+", default=[0.7])
    ap.add_argument("--yaws", type=float, nargs="+", default=list(DEFAULT_YAWS_DEG), help="degrees; 180 = back")
    ap.add_argument("--pitch", type=float, default=0.1, help="radians, positive looks down")
    ap.add_argument("--resolution", type=int, default=None)
    args = ap.parse_args(argv)
    if args.rows < 1 or (args.resolution is not None and not 16 <= args.resolution <= 2048):
        ap.error("--rows must be >= 1 and --resolution in 16..2048")
    t0 = time.time()
    models = [load_generator(path, "cpu") for path in args.generators]
    res = args.resolution or max(m.generator.config.resolution for m in models)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for psi in args.psi:
        grids = [model_grid(m.generator, args.rows, args.yaws, psi, res, args.pitch) for m in models]
        path = output_path(args.out, psi, len(args.psi) > 1)
        save_grid(path, side_by_side(grids))
        print(f"{path}: {args.rows} seeds x yaw {args.yaws} deg at {res} px, psi {psi:g}; "
              + "; ".join(f"{p} ({m.generator.config.num_gaussians:,} Gaussians, {m.source_format})"
                          for p, m in zip(args.generators, models)))
    print(f"{time.time() - t0:.1f} s on the CPU (torch backend)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
