"""The viewer's CPU splat rasterizer beside the reference renderer on the default model: a picture and the
PSNR.

Draws seed 0 (psi 0.7) at 512 x 512 from several yaws with ``viewer.viewport.cpu_splats`` (what the studio
shows without CUDA) and with ``core.render`` (torch backend, the reference), and writes one row per yaw: CPU
rasterizer | reference | absolute difference x 16.

    .venv/bin/python tools/cpu_splats_figure.py docs/images/cpu_splats_vs_reference.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

YAWS = (0.0, 60.0, 180.0)


def main() -> int:
    import imageio.v3 as iio
    import torch

    from bench.scenes import default_model_head
    from core.render import render
    from ui_state.render import CameraParams
    from viewer.viewport import cpu_splats, splats
    from viewer.viewport.requests import camera_from_params

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--model", default=None, help="default: the embedded default model")
    ap.add_argument("--size", type=int, default=512)
    args = ap.parse_args()
    scene = default_model_head(args.model)
    arrays, r, n = splats.splat_arrays(scene), cpu_splats.CpuSplatRasterizer(), args.size
    rows = []
    try:
        for yaw in YAWS:
            cam = CameraParams(yaw_deg=yaw)
            view, K = splats.view_matrix(cam), splats.intrinsics(cam, n, n)
            ours = r.draw(arrays, view, K, n, n, (1.0, 1.0, 1.0))
            with torch.no_grad():
                ref = render(scene, camera_from_params(cam, n, n), n, n, background=(1.0, 1.0, 1.0),
                             mode="rgb", backend="torch").color
            ref = splats.to_uint8(ref.numpy())
            diff = np.abs(ours.astype(np.int16) - ref.astype(np.int16))
            mse = float(np.mean(diff.astype(np.float64) ** 2))
            psnr = float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
            print(f"yaw {yaw:5.1f}: PSNR {psnr:.2f} dB, max diff {diff.max()}, pixels differing "
                  f"{(diff.max(-1) > 0).mean():.2e}")
            rows.append(np.concatenate([ours, ref, np.clip(diff * 16, 0, 255).astype(np.uint8)], axis=1))
    finally:
        r.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(args.out, np.concatenate(rows, axis=0))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
