"""The before/after figures of the training-speed work (README.md, docs/training.md "Training speed").

From the quality runs of ``bench/train_profile.py --stages quality`` (``tools/train_speed_session.sh final``):
each variant's ``quality_<variant>_grid.png`` (EMA generator at the end: 6 fixed seeds x 5 yaws from -46 to
+46 degrees, white background) and ``quality_<variant>_stats.jsonl`` (one line per tick of the run).

    python tools/training_speed_figures.py --runs /tmp/speed_results/quality --variants legacy bf16-cb16k \\
        --labels "before: float32 D, 32768" "after: bf16 D blocks, 16384" \\
        --grids docs/images/training_speed_before_after.png --curves docs/images/training_speed_losses.png

``--grids``: the grids side by side under their labels, scaled by ``--scale`` and stored with a 256-colour
palette (a few hundred KB). ``--curves``: G_adv, D_real, D_fake and s/kimg per tick against kimg, one colour
per variant (drawn with PIL; matplotlib is not a dependency). The grids may be dropped from the repository
afterwards; the stats files stay (docs/training/speed-2026-12-02/).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont


COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)]
PANELS = (("G_adv", "G_adv (generator loss)"), ("D_real", "D_real (loss on reals)"),
          ("D_fake", "D_fake (loss on fakes)"), ("sec_per_kimg", "s/kimg per tick"))
SPEED_CAP = 25.0  # s/kimg panel top; warm-up ticks above it are drawn at the top with their value


def font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size)


def nice_ticks(hi: float) -> list[float]:
    """0 and round multiples up to ``hi`` (at most 5 values)."""
    step = 10.0 ** math.floor(math.log10(max(hi, 1e-9)))  # 1, 2, 2.5, 5 x a power of ten, <= 5 ticks
    step = next(step * m for m in (0.1, 0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10) if hi / (step * m) <= 4.5)
    return [round(i * step, 9) for i in range(int(hi / step + 1e-9) + 1)]


def grids_side_by_side(grids: list[Path], labels: list[str], scale: float) -> Image.Image:
    ims = [Image.open(p).convert("RGB") for p in grids]
    ims = [im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS) for im in ims]
    gap, head, f = 16, 30, font(17)
    out = Image.new("RGB", (sum(im.width for im in ims) + gap * (len(ims) - 1), head + max(im.height for im in ims)),
                    "white")
    draw, x = ImageDraw.Draw(out), 0
    for im, label in zip(ims, labels):
        draw.text((x + im.width // 2, head // 2), label, fill="black", font=f, anchor="mm")
        out.paste(im, (x, head))
        x += im.width + gap
    return out


def loss_curves(stats: list[list[dict]], labels: list[str], size: tuple[int, int] = (300, 190)) -> Image.Image:
    """Four panels in a row (:data:`PANELS`), one polyline per run; x: kimg at the end of each tick."""
    pw, ph = size
    left, right, top, bottom, legend = 42, 10, 24, 30, 26
    out = Image.new("RGB", (pw * len(PANELS), ph + legend), "white")
    draw, small, f = ImageDraw.Draw(out), font(11), font(12)
    kmax = max(t["kimg"] for run in stats for t in run)
    for i, (key, title) in enumerate(PANELS):
        x0, x1, y0, y1 = i * pw + left, (i + 1) * pw - right, top, ph - bottom
        vals = [t[key] for run in stats for t in run]
        lo, hi = 0.0, (SPEED_CAP if key == "sec_per_kimg" else max(vals) * 1.05)
        sx = lambda k: x0 + (x1 - x0) * k / kmax  # noqa: E731
        sy = lambda v: y1 - (y1 - y0) * (min(v, hi) - lo) / (hi - lo)  # noqa: E731
        draw.rectangle((x0, y0, x1, y1), outline=(120, 120, 120))
        draw.text(((x0 + x1) // 2, 4), title, fill="black", font=f, anchor="mt")
        for v in nice_ticks(hi):
            draw.line((x0 - 3, sy(v), x0, sy(v)), fill=(120, 120, 120))
            draw.text((x0 - 5, sy(v)), f"{v:g}", fill="black", font=small, anchor="rm")
        for k in range(0, int(kmax) + 1, 2):
            draw.line((sx(k), y1, sx(k), y1 + 3), fill=(120, 120, 120))
            draw.text((sx(k), y1 + 4), str(k), fill="black", font=small, anchor="mt")
        draw.text((x1, y1 + 14), "kimg", fill=(90, 90, 90), font=small, anchor="rt")
        for r, (run, colour) in enumerate(zip(stats, COLOURS)):
            pts = [(sx(t["kimg"]), sy(t[key])) for t in run]
            draw.line(pts, fill=colour, width=2)
            for t, (px, py) in zip(run, pts):
                draw.ellipse((px - 2, py - 2, px + 2, py + 2), fill=colour)
                if t[key] > hi:  # off the scale: say how far
                    draw.text((px + 4, py + 2 + 12 * r), f"{t[key]:.0f}", fill=colour, font=small, anchor="lt")
    x = left
    for label, colour in zip(labels, COLOURS):
        draw.line((x, ph + legend // 2, x + 24, ph + legend // 2), fill=colour, width=3)
        draw.text((x + 30, ph + legend // 2), label, fill="black", font=f, anchor="lm")
        x += 40 + int(draw.textlength(label, font=f)) + 30
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, required=True, help="folder with quality_<variant>_{grid.png,stats.jsonl}")
    ap.add_argument("--variants", nargs="+", required=True)
    ap.add_argument("--labels", nargs="+", help="one per variant (default: the variant names)")
    ap.add_argument("--grids", type=Path, help="write the side-by-side grids here")
    ap.add_argument("--curves", type=Path, help="write the loss curves here")
    ap.add_argument("--scale", type=float, default=0.75, help="grid scale factor")
    ap.add_argument("--overwrite", action="store_true", help="replace --grids / --curves files that exist")
    args = ap.parse_args(argv)
    labels = args.labels or args.variants
    if len(labels) != len(args.variants):
        ap.error("give one label per variant")
    for target in (args.grids, args.curves):
        if target is not None and target.exists() and not args.overwrite:
            ap.error(f"{target} exists; pass --overwrite to replace it")
    if args.grids:
        im = grids_side_by_side([args.runs / f"quality_{v}_grid.png" for v in args.variants], labels, args.scale)
        im.quantize(256, method=Image.Quantize.MEDIANCUT).save(args.grids, optimize=True)
        print(f"{args.grids}: {im.width}x{im.height}, {args.grids.stat().st_size / 1024:.0f} KiB")
    if args.curves:
        stats = [[json.loads(line) for line in (args.runs / f"quality_{v}_stats.jsonl").read_text().splitlines()
                  if line.strip()] for v in args.variants]
        im = loss_curves(stats, labels)
        im.quantize(64).save(args.curves, optimize=True)
        print(f"{args.curves}: {im.width}x{im.height}, {args.curves.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
