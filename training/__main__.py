"""``python -m training --data DATASET [options]``: train a CGS-GAN-style generator.

Every option, with its default, is listed by ``python -m training --help``. Multi-GPU:
``torchrun --nproc_per_node 4 -m training --data ... --batch 32 --batch-gpu 8``.
Examples:
    python -m training --data datasets/heads128 --preset cpu128 --batch 16 --batch-gpu 8 --kimg 2000
    python -m training --data datasets/heads128 --resume runs/00003-cpu128-heads128   # continue a killed run
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    import tyro

    from training.loop import TrainingStopped, train
    from training.options import TrainOptions

    opts = tyro.cli(TrainOptions, args=argv, description=__doc__)
    try:
        run_dir = train(opts)
    except TrainingStopped as exc:
        print(f"training stopped: {exc}", file=sys.stderr)
        return 3
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"run directory: {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
