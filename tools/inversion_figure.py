"""Compose the inversion figures of docs/inversion.md.

From `python -m inversion` output folders: per photo, the aligned crop, the stage-1 and stage-2 renders from
the input view, and two orbit frames (side views) of the tuned head::

    python tools/inversion_figure.py docs/images/inversion_real_photos.png OUT_DIR [OUT_DIR ...]

From the ground-truth bench's figure.npz (bench/inversion_groundtruth.py --figure-dir): a held-out head's input,
stage 1 and stage 2 from the input camera, and three other views (truth, stage 1, stage 1+2)::

    python tools/inversion_figure.py --groundtruth docs/images/inversion_groundtruth.png figure.npz [--overwrite]
"""

from __future__ import annotations

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


def labelled(tile: np.ndarray, text: str, size: int) -> np.ndarray:
    from PIL import ImageDraw

    im = Image.fromarray(tile).resize((size, size), Image.BICUBIC)
    canvas = Image.new("RGB", (size, size + 14), "white")
    canvas.paste(im, (0, 14))
    ImageDraw.Draw(canvas).text((3, 1), text, fill=(0, 0, 0))
    return np.asarray(canvas)


def groundtruth(npz: Path, size: int = 128) -> np.ndarray:
    """3 rows: [input, stage 1, stage 2 | view a, b, c] for truth / stage 1 / stage 1+2."""
    d = np.load(npz)
    # the bench writes the views' labels (from the dataset's own cameras); older files have only indices
    views = [f"yaw {v}" if v.lstrip("-").isdigit() else v for v in d["view_labels"].tolist()] \
        if "view_labels" in d.files else [f"view {int(v)}" for v in d["views"]]
    blank = np.full((size + 14, size, 3), 255, np.uint8)
    left = [labelled(d["input"], "input", size), labelled(d["stage1"], "stage 1", size),
            labelled(d["stage2"], "stage 1+2", size)]
    rows = []
    for r, (key, name) in enumerate((("truth", "truth"), ("novel_stage1", "stage 1"), ("novel_stage2", "stage 1+2"))):
        right = [labelled(d[key][i], f"{name}, {views[i]}", size) for i in range(len(views))]
        tiles = (left if r == 0 else [blank] * 3) + [np.full((size + 14, 8, 3), 255, np.uint8)] + right
        rows.append(np.concatenate(tiles, 1))
    return np.concatenate(rows, 0)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--groundtruth", action="store_true", help="compose from the bench's figure.npz")
    ap.add_argument("target", type=Path, help="the .png to write (refused if it exists, unless --overwrite)")
    ap.add_argument("sources", type=Path, nargs="+", help="inversion output folders, or one figure.npz")
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args(argv)
    if args.target.exists() and not args.overwrite:
        ap.error(f"{args.target} exists; pass --overwrite to replace it")
    if args.groundtruth:
        if len(args.sources) != 1:
            ap.error("--groundtruth takes one figure.npz")
        grid = groundtruth(args.sources[0])
    else:
        grid = np.concatenate([row(o) for o in args.sources], 0)
    args.target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(args.target, optimize=True)
    print(f"wrote {args.target} ({grid.shape[1]}x{grid.shape[0]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
