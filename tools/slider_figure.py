"""What the sliders of a generator's directions file do: a picture, and the 3D target-matching cases.

    # rows: sliders; columns: for each seed, the slider at each value (docs/latent-editing.md)
    python tools/slider_figure.py assets/default_model.safetensors out/sliders_900.png
    # the same, plus the four target-matching cases of docs/latent-editing.md printed as a table
    python tools/slider_figure.py assets/default_model.safetensors out/sliders.png --match

Heads are ``base_from_seed(G, seed, psi)`` (``core.editing``) edited with one slider at a time, rendered on
the CPU (torch backend) on white from yaw ``--yaw`` degrees, pitch 0.1 rad, at ``--resolution`` px. The
directions file is the one beside the model (``find_directions``: refused if it belongs to another file).
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
from core.editing import (
    DirectionsFileError, LatentEdit, base_from_seed, find_directions, match_target, measure_ws,
)
from core.model_files import load_generator
from core.render import render
from training.run_dir import save_grid

DEFAULT_SLIDERS = ("has_glasses", "has_beard", "skin_tone", "hair_lightness", "head_width")
# (measurement, seed, target): RGB in [0, 1] for colours, a factor on the head's own width for head_width
MATCH_CASES = (("skin_color", 4, (0.45, 0.30, 0.22)), ("skin_color", 5, (0.85, 0.68, 0.58)),
               ("hair_color", 4, (0.10, 0.08, 0.07)), ("head_width", 6, 1.05))


def slider_grid(G: torch.nn.Module, dirs, sliders: list[str], seeds: list[int], values: list[float],
                psi: float, yaw_deg: float, resolution: int) -> np.ndarray:
    """``[len(sliders), len(seeds) * len(values), R, R, 3]`` float renders in [0, 1] (row = slider,
    seed-major columns)."""
    cam = orbit_cameras(torch.tensor([math.radians(yaw_deg)]), 0.1)
    rows = []
    with torch.no_grad():
        for name in sliders:
            ws = torch.stack([LatentEdit(base_from_seed(G, s, psi)).with_value(name, v).ws(dirs)
                              for s in seeds for v in values])
            scenes = G.synthesis(ws).gaussians
            img = render(scenes, cam, resolution, resolution, background=(1.0, 1.0, 1.0), mode="rgb",
                         backend="torch").color  # [N, 1, R, R, 3]
            rows.append(img[:, 0].float().numpy())
    return np.stack(rows)


def match_cases(G: torch.nn.Module, dirs, psi: float) -> list[str]:
    """The target-matching cases as markdown table rows (error before -> after, slider values, seconds)."""
    out = ["| measurement | seed | target | error before -> after | sliders | s |",
           "|---|---|---|---|---|---|"]
    for name, seed, target in MATCH_CASES:
        edit = LatentEdit(base_from_seed(G, seed, psi))
        if name == "head_width":  # a relative target: the head's own width times the factor
            m = dirs.measurement(name)
            target = tuple(float(x) * target for x in measure_ws(G, edit.ws(dirs)[None], m)[0])
        t0 = time.time()
        r = match_target(G, edit, dirs, name, target)
        names = dirs.measurement(name).direction_names
        values = " ".join(f"{n} {r.edit.value(n):+.2f}" for n in names)
        shown = ", ".join(f"{float(x):.3f}" for x in np.atleast_1d(target))
        out.append(f"| {name} | {seed} | {shown} | "
                   f"{r.start_error:.3f} -> {r.error:.3f} | {values} | {time.time() - t0:.1f} |")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path)
    ap.add_argument("out", type=Path, help="the picture (.png); an existing file is not overwritten")
    ap.add_argument("--sliders", nargs="+", default=list(DEFAULT_SLIDERS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 3])
    ap.add_argument("--values", nargs="+", type=float, default=[-3.0, 0.0, 3.0])
    ap.add_argument("--psi", type=float, default=0.7)
    ap.add_argument("--yaw", type=float, default=17.0, help="degrees (0 = front)")
    ap.add_argument("--resolution", type=int, default=192)
    ap.add_argument("--match", action="store_true", help="also run the target-matching cases")
    args = ap.parse_args(argv)
    if args.out.suffix.lower() != ".png":
        print(f"{args.out}: the picture is written as PNG; name it .png", file=sys.stderr)
        return 2
    if args.out.exists():
        print(f"{args.out} exists; not overwritten (remove it first)", file=sys.stderr)
        return 2
    G = load_generator(args.model, "cpu").generator.eval()
    try:
        dirs = find_directions(args.model)
    except DirectionsFileError as exc:  # another model's file, or a damaged one
        print(f"{args.model}: {exc}", file=sys.stderr)
        return 2
    if dirs is None:
        print(f"{args.model} has no directions file beside it (python -m training.directions)",
              file=sys.stderr)
        return 2
    missing = [s for s in args.sliders if s not in dirs.names]
    if missing:
        print(f"not in the directions file: {', '.join(missing)} (it has {', '.join(dirs.names)})",
              file=sys.stderr)
        return 2
    grid = slider_grid(G, dirs, args.sliders, args.seeds, args.values, args.psi, args.yaw, args.resolution)
    save_grid(args.out, grid)
    print(f"wrote {args.out}: rows {', '.join(args.sliders)}; seeds {args.seeds} at {args.values}")
    if args.match:
        print("\n".join(match_cases(G, dirs, args.psi)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
