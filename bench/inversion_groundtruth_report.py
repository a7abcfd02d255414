"""Reporting of bench/inversion_groundtruth.py: the printed tables (the decomposition, and the per-view PSNR with
views as columns) and the figures it records (``inversion_gt_input_psnr``, ``inversion_gt_novel_psnr``,
``inversion_camera_error_deg``, ``inversion_gt_bound_psnr``). Rows are the dicts of its JSON (``--json``)."""

from __future__ import annotations

import numpy as np
import torch

from core.camera import Cameras, orbit_angles
from training.synthetic_heads.cameras import EVAL_VIEWS

NUM_VIEWS = len(EVAL_VIEWS)  # views per held-out head (the dataset's test split renders all of them)


def views_mean(view_psnr: list[list[float]]) -> list[float]:
    """``[V]`` mean over heads of ``view_psnr [H][V]``."""
    return np.asarray(view_psnr, dtype=np.float64).mean(0).tolist() if view_psnr else []


def view_labels(cams: Cameras) -> list[str]:
    """Short column names of the evaluation views from their cameras' orbit angles: ``0/0``, the yaw in degrees
    where the pitch is 0, ``up`` / ``down`` for a frontal view above / below, else ``yaw/pitch``."""
    yaw, pitch, _ = orbit_angles(cams)
    out = []
    for y, p in zip(torch.rad2deg(yaw).round().tolist(), torch.rad2deg(pitch).round().tolist()):
        y, p = int(y) % 360, int(p)
        y = y - 360 if y > 180 else y  # (-180, 180]: the back view is 180
        out.append("0/0" if y == p == 0 else f"{y}" if p == 0 else ("up" if p > 0 else "down") if y == 0
                   else f"{y}/{p}")
    return out


def summarise(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def print_row(name: str, r: dict) -> None:
    """One table line; stage 1+2 rows add the change of the novel views against stage 1 on the same heads."""
    cam = np.median(r["camera_error_deg"]) if r.get("camera_error_deg") else float("nan")
    delta = ""
    if "stage1_novel_psnr" in r:
        delta = f" {summarise(r['novel_psnr']) - summarise(r['stage1_novel_psnr']):+7.2f}"
    print(f"{name:44s} {r['heads']:5d} {summarise(r['input_psnr']):9.2f} {summarise(r['novel_psnr']):9.2f} "
          f"{summarise(r['novel_ssim']):10.3f} {cam:8.2f}{delta}  ({r.get('seconds', 0):.1f} s)", flush=True)


def print_views(result: dict, labels: list[str]) -> None:
    """Per-view PSNR (mean over heads) of every row, the self-consistency rows and the bound, views as
    columns."""
    lines = [(n, r["views_psnr"]) for n, r in result["rows"].items() if not n.startswith("_") and "views_psnr" in r]
    lines += [(f"self-consistency {n}", r["views_psnr"]) for n, r in result.get("self_consistency", {}).items()
              if "views_psnr" in r]
    if result.get("bound"):
        lines.append(("bound (W+ fit to all 10 views)", result["bound"]["views_psnr"]))
    if not lines:
        return
    print(f"\nper-view PSNR (dB, mean over heads, the true evaluation cameras)\n{'row':44s}"
          + "".join(f"{lab:>6s}" for lab in labels))
    for name, values in lines:
        print(f"{name:44s}" + "".join(f"{v:6.2f}" for v in values))


def print_table(result: dict) -> None:
    rows, b = result["rows"], result["bound"]
    print(f"settings overrides: {result.get('overrides') or 'none'}")
    print(f"\n{'row':44s} {'heads':>5s} {'input dB':>9s} {'novel dB':>9s} {'novel SSIM':>10s} {'cam deg':>8s}"
          f" {'d novel':>7s}")
    for name, r in rows.items():
        if not name.startswith("_"):
            print_row(name, r)
    if "_camera_error_initial_deg" in rows:
        print(f"camera error before refinement: {np.median(rows['_camera_error_initial_deg']['camera_error_deg']):.2f}"
              " deg median")
    if b:
        print(f"bound (W+ fit to all 10 views): {summarise(b['psnr']):.2f} dB, SSIM {summarise(b['ssim']):.3f}")
    for name, r in result.get("self_consistency", {}).items():
        delta = (f" ({summarise(r['novel_psnr']) - summarise(r['stage1_novel_psnr']):+.2f} on the same latents)"
                 if "stage1_novel_psnr" in r else "")
        print(f"self-consistency {name:22s} input {summarise(r['input_psnr']):6.2f} dB, other views "
              f"{summarise(r['novel_psnr']):6.2f} dB{delta}, SSIM {summarise(r['novel_ssim']):.3f}")
    print_views(result, result["view_labels"])


def record_figures(result: dict, args, device) -> None:
    from bench.results import device_name, record

    space = result["settings"]["latent"]["space"].upper()
    key = f"estimated camera, {space}, stage 1+2"
    row = result["rows"].get(key)
    stage1 = result["rows"].get(f"estimated camera, {space}, stage 1")
    n1 = stage1["heads"] if stage1 else 0
    missed = f" (MTCNN found no face in {args.heads - n1})" if n1 < args.heads else ""
    dev = device_name(device)
    tag = f"@{args.tag}" if args.tag else ""  # bench.default_model_quality's rule: models side by side
    note = (f"{args.model} on {args.device}, preset {args.preset} ({result['settings']['latent']['steps']} + "
            f"{result['settings']['tuning']['steps']} steps, offline losses MSE+SSIM), space {space}, held-out heads "
            f"of {args.dataset.name}: stage 1 on {n1} of {args.heads}{missed}, stage 2 on "
            f"{len(row['input_psnr']) if row else 0}; input view {args.input_view}")
    if row:
        record("inversion_gt_input_psnr" + tag, summarise(row["input_psnr"]), "dB", dev, note=note)
        bound_note = f"; bound {summarise(result['bound']['psnr']):.2f} dB (W+ fit to all 10 views)" \
            if result["bound"] else ""
        record("inversion_gt_novel_psnr" + tag, summarise(row["novel_psnr"]), "dB", dev,
               note=note + bound_note)
    if stage1:  # the cameras do not change in stage 2: the median over every head of stage 1
        record("inversion_camera_error_deg" + tag, float(np.median(stage1["camera_error_deg"])), "deg", dev,
               note=note + f" (median over the {n1} heads of stage 1, after its refinement)")
    if result["bound"]:
        record("inversion_gt_bound_psnr" + tag, summarise(result["bound"]["psnr"]), "dB", dev,
               note=f"W+ fit of {len(result['bound']['psnr'])} held-out heads of {args.dataset.name} to all 10 "
               f"evaluation views, {result['bound']['steps']} steps, {args.model} on {args.device}")
