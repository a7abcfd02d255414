"""Compose the README's inversion figure from `python -m inversion` output folders: per photo, the aligned crop,
the stage-1 and stage-2 renders from the input view, and two orbit frames (side views) of the tuned head.

    python tools/inversion_figure.py docs/images/inversion_real_photos.png OUT_DIR [OUT_DIR ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import imageio
import numpy as np
from PIL import Image


def row(out: Path, size: int = 128) -> np.ndarray:
    crop = next(p for p in sorted((out / "aligned").glob("*.png")) if not p.stem.endswith("_weight"))
    stage1 = next((out / "renders").glob("*_stage1.png"))
    stage2 = next((out / "renders").glob("*_stage2.png"))
    with imageio.get_reader(out / "orbit.mp4") as video:
        frames = [f for f in video]
    n = len(frames)
    tiles = [np.asarray(Image.open(p).convert("RGB")) for p in (crop, stage1, stage2)]
    tiles += [frames[n // 8], frames[n // 4]]  # 45 and 90 degrees around
    return np.concatenate([np.asarray(Image.fromarray(t).resize((size, size), Image.BICUBIC)) for t in tiles], 1)


def main() -> int:
    target, outs = Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]
    grid = np.concatenate([row(o) for o in outs], 0)
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(target)
    print(f"wrote {target} ({grid.shape[1]}x{grid.shape[0]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
