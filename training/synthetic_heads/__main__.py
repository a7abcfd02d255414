"""``python -m training.synthetic_heads --out DIR --num-identities N ...``: make a synthetic heads dataset.

Examples::

    python -m training.synthetic_heads --out data/heads128 --num-identities 4000 --views-per-identity 5
    python -m training.synthetic_heads --out data/heads.zip --zip --num-identities 100 --test-fraction 0.1 \\
        --extra-side-views 2 --resolution 256
    # 360-degree heads at 256 px on a GPU machine (gsplat), half the views from the whole circle
    python -m training.synthetic_heads --out data/heads256 --num-identities 8000 --views-per-identity 6 \\
        --full-yaw-fraction 0.5 --resolution 256 --device cuda --workers 16

Re-running the same command resumes an interrupted run (see training/synthetic_heads/dataset.py).
"""

from __future__ import annotations

import sys

import tyro

from training.synthetic_heads.config import DatasetConfig
from training.synthetic_heads.dataset import write_dataset


DESCRIPTION = (
    "Make an EG3D/CGS-GAN-format multi-view dataset of synthetic Gaussian heads with ground truth "
    "(README.md, 'Synthetic heads dataset'). Re-running the same command resumes an interrupted run."
)


def main(argv: list[str] | None = None) -> int:
    # tyro reports bad values itself (wrong types, and the checks in DatasetConfig) and exits with status 2.
    cfg = tyro.cli(DatasetConfig, args=argv, prog="python -m training.synthetic_heads", description=DESCRIPTION)
    try:
        summary = write_dataset(cfg)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if summary.complete:
        rate = summary.rendered / summary.seconds if summary.seconds > 0 else 0.0
        train = summary.num_identities - summary.num_test
        what = (f"the held-out split of {summary.num_test} identities" if cfg.held_out_only else
                f"{summary.num_images} training images of {train} identities, {summary.num_test} held out")
        print(f"{summary.path}: {what}; rendered {summary.rendered} images in {summary.seconds:.1f} s "
              f"({rate:.1f} images/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
