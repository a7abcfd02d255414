"""CUDA (gsplat) against CPU (torch reference) synthetic-heads images: the rendering tolerance of the dataset.

    python -m bench.synthetic_heads_parity [--identities 40] [--views 6] [--resolution 256] [--workers 16]
        [--json out.json]

Writes the same dataset twice (training images only, full-yaw fraction 0.5, seed 0), once per device, and
compares every PNG (images and masks) in 8-bit levels: the largest difference, the share of pixel values
that differ at all and by more than 1 level, the mean difference. Records
``synthetic_cuda_vs_cpu_max_levels_<res>`` and ``synthetic_cuda_vs_cpu_differing_<res>`` (percent of values).
Needs CUDA and gsplat.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from bench.results import device_name, record
from training.synthetic_heads.config import DatasetConfig
from training.synthetic_heads.dataset import write_dataset


def compare(a: Path, b: Path) -> dict:
    """Differences of the PNGs under ``images/`` and ``mask/`` of two datasets (same names)."""
    diffs = {"images": [], "mask": []}
    for kind in diffs:
        for pa in sorted((a / kind).glob("*.png")):
            x = np.asarray(Image.open(pa)).astype(np.int16)
            y = np.asarray(Image.open(b / kind / pa.name)).astype(np.int16)
            diffs[kind].append(np.abs(x - y).ravel())
    out = {}
    for kind, parts in diffs.items():
        d = np.concatenate(parts)
        out[kind] = {"files": len(parts), "max_levels": int(d.max()), "mean_levels": float(d.mean()),
                     "differing_percent": float(100 * (d > 0).mean()),
                     "over_1_level_percent": float(100 * (d > 1).mean()),
                     "files_identical": int(sum(int(p.max()) == 0 for p in parts))}
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--identities", type=int, default=40)
    ap.add_argument("--views", type=int, default=6)
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        roots = {}
        for device in ("cuda", "cpu"):
            roots[device] = Path(tmp) / device
            write_dataset(DatasetConfig(out=roots[device], num_identities=args.identities,
                                        views_per_identity=args.views, resolution=args.resolution,
                                        full_yaw_fraction=0.5, workers=args.workers, device=device), progress=False)
        result = compare(roots["cuda"], roots["cpu"])
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    dev = f"{device_name('cuda')} (gsplat) vs torch reference on the CPU"
    what = (f"{args.identities} identities x {args.views} views at {args.resolution} px, full-yaw fraction 0.5; "
            f"images: mean {result['images']['mean_levels']:.4f} levels, "
            f"{result['images']['over_1_level_percent']:.4f} % over 1 level; masks: max "
            f"{result['mask']['max_levels']}, {result['mask']['differing_percent']:.4f} % differ")
    record(f"synthetic_cuda_vs_cpu_max_levels_{args.resolution}", result["images"]["max_levels"], "8-bit levels", dev,
           note=what)
    record(f"synthetic_cuda_vs_cpu_differing_{args.resolution}", result["images"]["differing_percent"], "%", dev,
           note=what)


if __name__ == "__main__":
    main()
