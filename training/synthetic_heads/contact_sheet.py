"""A contact sheet of synthetic heads: one row per head, one column per view angle (exact renders on white).

    python -m training.synthetic_heads.contact_sheet --out docs/images/synthetic_heads.png

The heads are identities 0..rows-1 of a dataset made with ``--seed`` (the same heads the dataset command
makes), seen from the front, three-quarter left, left profile, the back and three-quarter right from below.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from training.synthetic_heads.cameras import pose_cameras
from training.synthetic_heads.dataset import identity_seed
from training.synthetic_heads.head import make_head_model
from training.synthetic_heads.views import render_views

SHEET_VIEWS = ((0.0, 0.0), (-40.0, 5.0), (-90.0, 0.0), (180.0, 10.0), (35.0, -12.0))  # (yaw, pitch) degrees


def contact_sheet(seeds: list[int], resolution: int, views=SHEET_VIEWS) -> np.ndarray:
    """``[rows * res, cols * res, 3]`` uint8 grid: row r = head ``seeds[r]``, column c = ``views[c]``."""
    yaw, pitch = (np.array(v) for v in zip(*views))
    cams = pose_cameras(yaw, pitch)
    rows = []
    for s in seeds:
        rgb, _ = render_views(make_head_model(s), cams, resolution, cull=False)
        rows.append(np.concatenate(list(rgb), axis=1))
    return np.concatenate(rows, axis=0)


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m training.synthetic_heads.contact_sheet", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0, help="dataset master seed; row i is identity i")
    ap.add_argument("--resolution", type=int, default=160)
    args = ap.parse_args()
    sheet = contact_sheet([identity_seed(args.seed, i) for i in range(args.rows)], args.resolution)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(args.out, optimize=True)
    print(f"{args.out}: {sheet.shape[1]}x{sheet.shape[0]} px, {args.out.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
