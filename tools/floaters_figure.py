"""What the floaters metric counts, as a picture: random heads from the 10 evaluation views.

    python tools/floaters_figure.py assets/default_model.pkl docs/images/default_model_v1_floaters.png

For each head (seeds 0..N-1, psi 1.0) two rows: the render on white, then the opacity map with the head's
dilated silhouette in green and the opacity outside it (what training/metrics/floaters.py counts) in
magenta, brightened 4x. The title line printed gives each head's floater share.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.model_files import load_generator
from core.render import render
from training.metrics.floaters import floaters_of_alpha, head_silhouette
from training.synthetic_heads.cameras import eval_cameras


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("generator", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--resolution", type=int, default=None)
    args = ap.parse_args(argv)
    G = load_generator(args.generator, "cpu").generator
    res = args.resolution or G.config.resolution
    z = torch.stack([torch.randn(G.config.z_dim, generator=torch.Generator().manual_seed(s))
                     for s in range(args.heads)])
    with torch.no_grad():
        scenes = G(z, truncation_psi=1.0).gaussians
        out = render(scenes, eval_cameras(), res, res, background=(1.0, 1.0, 1.0), mode="rgb", backend="torch")
    rows = []
    for h in range(args.heads):
        alpha = out.alpha[h, ..., 0].double().numpy()  # [V, R, R]
        sil = np.stack([head_silhouette(a) for a in alpha])
        outside = np.clip(4 * alpha * ~sil, 0, 1)
        vis = np.stack([outside, 0.45 * sil, outside], -1) + (0.3 * alpha * sil)[..., None]
        rows += [np.concatenate(list(out.color[h].clamp(0, 1).numpy()), 1), np.concatenate(list(vis), 1)]
        print(f"seed {h}: floaters {100 * floaters_of_alpha(alpha).share:.2f} %")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.clip(np.concatenate(rows, 0), 0, 1) * 255 + 0.5).astype(np.uint8)).save(args.out)
    print(f"{args.out}: {args.heads} heads x 10 evaluation views at {res} px")
    return 0


if __name__ == "__main__":
    sys.exit(main())
