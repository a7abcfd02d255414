"""Ground-truth test of the inversion on the synthetic heads.

For each held-out head: render one evaluation view (``--input-view``, default the frontal one) at
``--detect-resolution``; hide its camera; run the full method on that render (MTCNN, alignment, PnP camera,
stage 1, stage 2); then render the result from every *other* evaluation view (training/synthetic_heads
EVAL_VIEWS) and compare with the ground-truth renders of the head at the model's resolution. Reports:

- camera error (deg): angle between the estimated and the true camera directions seen from the head centre,
  after preprocessing and after stage 1's camera refinement;
- PSNR (dB, colours in [0, 1]) and LPIPS (AlexNet; the random stand-in with ``--random-loss-weights``, then
  only PSNR is meaningful) over the held-out views, for stage 1 alone and for stage 1 + 2.

Heads are made on the fly: identity ``10000 + k`` of seed 0 (beyond any dataset this project generates), or
the held-out identities of a dataset folder written by ``python -m training.synthetic_heads`` (``--dataset``,
reading ``test/gt`` is not needed: the renders in ``test/images`` and the labels in ``test/dataset.json`` are).

    python -m bench.inversion_groundtruth --model G.pkl [--heads 3] [--steps 300] [--tune-steps 200]
    python -m bench.inversion_groundtruth --preset tiny --random-loss-weights --steps 20 --tune-steps 10
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.camera import Cameras
from core.model_files import load_generator
from inversion.detection import FaceNotFoundError, detect_faces, pick_face
from inversion.framing import SYNTHETIC_HEADS
from inversion.latent_search import LatentConfig, invert_latent
from inversion.objective import LossNetworks, LossWeights, Objective, lpips_size
from inversion.photos import photo_from_array
from inversion.pivotal_tuning import TuningConfig, tune_generator
from inversion.pose import view_angle_error_deg
from inversion.preprocess import InversionTarget, PreprocessConfig, make_target, prepare_aligned
from inversion.steps import last_step, render_views
from training.synthetic_heads.cameras import EVAL_VIEWS, eval_cameras
from training.synthetic_heads.dataset import identity_seed
from training.synthetic_heads.head import make_head_model
from training.synthetic_heads.views import render_views as render_head


def heads_on_the_fly(count: int, res: int, detect_res: int, input_view: int):
    """Yield ``(label, input uint8 [D, D, 3], gt uint8 [V, R, R, 3], gt cameras [V])``."""
    cams = eval_cameras()
    for k in range(count):
        head = make_head_model(identity_seed(0, 10_000 + k))
        gt, _ = render_head(head, cams, res)
        inp, _ = render_head(head, cams[input_view:input_view + 1], detect_res)
        yield f"identity {10_000 + k}", inp[0], gt, cams


def heads_from_dataset(root: Path, count: int, res: int, input_view: int):
    labels = dict((n, l) for n, l in json.loads((root / "test" / "dataset.json").read_text())["labels"])
    ids = sorted({n.split("_")[0] for n in labels})[:count]
    for ident in ids:
        names = [f"{ident}_{v:02d}.png" for v in range(len(EVAL_VIEWS))]
        imgs = [np.asarray(Image.open(root / "test" / "images" / n).convert("RGB")) for n in names]
        cams = Cameras.from_label(torch.tensor([labels[n] for n in names], dtype=torch.float32))
        gt = np.stack([np.asarray(Image.fromarray(i).resize((res, res), Image.LANCZOS)) for i in imgs])
        yield f"dataset {ident}", imgs[input_view], gt, cams


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / ((a - b) ** 2).mean().clamp(min=1e-12)))


@torch.no_grad()
def compare(G, ws, cams: Cameras, gt: np.ndarray, keep: list[int], lpips_net, device) -> dict:
    """PSNR / LPIPS of the renders of ``ws`` against ``gt`` over the views ``keep``."""
    res = gt.shape[1]
    pred = render_views(G, ws.to(device), cams[torch.tensor(keep)].to(device), res).cpu()
    true = torch.from_numpy(gt[keep]).permute(0, 3, 1, 2).float() / 255.0
    out = {"psnr": float(np.mean([psnr(p, t) for p, t in zip(pred, true)]))}
    if lpips_net is not None:
        p, t = lpips_size(pred.to(device)) * 2 - 1, lpips_size(true.to(device)) * 2 - 1
        out["lpips"] = float(lpips_net(p, t).mean())
    return out


def camera_only(heads: int, views: list[int], detect_res: int, json_path: Path | None) -> None:
    """Camera-estimate error (deg) per evaluation view over ``heads`` on-the-fly heads; no generator needed."""
    cams = eval_cameras()
    pre = PreprocessConfig(framing=SYNTHETIC_HEADS, resolution=256)
    errors: dict[int, list[float]] = {v: [] for v in views}
    missed: dict[int, int] = {v: 0 for v in views}
    for k in range(heads):
        head = make_head_model(identity_seed(0, 10_000 + k))
        imgs, _ = render_head(head, cams[torch.tensor(views)], detect_res)
        for v, img in zip(views, imgs):
            photo = photo_from_array(img, f"identity {10_000 + k} view {v}")
            try:
                aligned = prepare_aligned(photo, pick_face(photo, detect_faces(photo), 20).face, pre)
            except FaceNotFoundError:
                missed[v] += 1
                continue
            errors[v].append(view_angle_error_deg(aligned.camera.camera, cams[v]))
    table = {f"{EVAL_VIEWS[v]}": {"detected": len(errors[v]), "missed": missed[v],
                                  "median_deg": float(np.median(errors[v])) if errors[v] else None,
                                  "mean_deg": float(np.mean(errors[v])) if errors[v] else None} for v in views}
    every = [e for v in views for e in errors[v]]
    summary = {"heads": heads, "views": table, "median_deg": float(np.median(every)) if every else None,
               "mean_deg": float(np.mean(every)) if every else None}
    print(json.dumps(summary, indent=1))
    if json_path:
        json_path.write_text(json.dumps(summary, indent=1) + "\n")


def self_consistency(G, steps: int, tune_steps: int, count: int, input_view: int, nets: LossNetworks,
                     device: torch.device) -> dict:
    """Targets the generator can represent exactly: render a random latent ``w*`` from EVAL_VIEWS[input_view],
    invert it *with the true camera* (no detector: random generators draw no faces), compare the other views
    with renders of ``w*``. Checks the optimisation, not the camera estimate. MSE + LPIPS, no ID term."""
    res = G.config.resolution
    cams = eval_cameras()
    keep = [v for v in range(len(EVAL_VIEWS)) if v != input_view]
    w1 = LossWeights(id=0.0, mse=1.0, lpips=1.0)
    obj = Objective(w1, SYNTHETIC_HEADS, nets).to(device)
    rows = []
    for k in range(count):
        gen = torch.Generator().manual_seed(100 + k)
        with torch.no_grad():
            w_true = G.map(torch.randn(1, G.config.z_dim, generator=gen).to(device), truncation_psi=0.7)
            gt = render_views(G, w_true, cams.to(device), res).cpu()
        gt_u8 = (gt.permute(0, 2, 3, 1).clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
        cam = cams[input_view:input_view + 1]
        target = InversionTarget(gt[input_view:input_view + 1], torch.ones_like(gt[:1, :1]), cam, ("w*",))
        s1 = last_step(invert_latent(G, target, LatentConfig(steps=steps, batch_size=1, preview_every=0,
                                                             refine_cameras=False, losses=w1), obj))
        row = {"latent": k, "stage1": compare(G, s1.ws, cams, gt_u8, keep, obj.lpips, device),
               "start (w_avg)": compare(G, G.mapping.w_avg[None, None].expand(1, G.config.num_ws, -1), cams,
                                        gt_u8, keep, obj.lpips, device)}
        if tune_steps > 0:
            tune = TuningConfig(steps=tune_steps, batch_size=1, preview_every=0, losses=w1)
            s2 = last_step(tune_generator(G, s1.ws, target, tune, obj))
            row["stage1+2"] = compare(s2.generator, s1.ws, cams, gt_u8, keep, obj.lpips, device)
            row["stage1+2 input view psnr"] = compare(s2.generator, s1.ws, cams, gt_u8, [input_view], None, device)
        row["stage1 input view psnr"] = compare(G, s1.ws, cams, gt_u8, [input_view], None, device)
        print(json.dumps(row))
        rows.append(row)
    summary = {key: {m: float(np.mean([r[key][m] for r in rows])) for m in rows[0][key]}
               for key in rows[0] if key != "latent"}
    return {"mode": "self-consistency (true camera)", "steps": steps, "tune_steps": tune_steps, "rows": rows,
            "summary": summary}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="generator file trained on the synthetic heads")
    src.add_argument("--preset", help="random-weight generator of this preset (plumbing check only)")
    ap.add_argument("--dataset", type=Path, default=None, help="a synthetic dataset folder (its test split)")
    ap.add_argument("--heads", type=int, default=3)
    ap.add_argument("--input-view", type=int, default=0, help="index into EVAL_VIEWS")
    ap.add_argument("--detect-resolution", type=int, default=256)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--tune-steps", type=int, default=200)
    ap.add_argument("--random-loss-weights", action="store_true")
    ap.add_argument("--mse-only", action="store_true",
                    help="MSE loss only in both stages (no pretrained networks needed; PSNR only)")
    ap.add_argument("--weights-dir", default=None)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--self-consistency", action="store_true",
                    help="invert the generator's own renders (true camera given) instead of synthetic heads")
    ap.add_argument("--camera-only", type=int, nargs="*", default=None, metavar="VIEW",
                    help="only the camera estimate, for these EVAL_VIEWS indices (all when none are given)")
    args = ap.parse_args()
    if args.camera_only is not None:
        views = args.camera_only or list(range(len(EVAL_VIEWS)))
        camera_only(args.heads, views, args.detect_resolution, args.json)
        return
    device = torch.device(args.device)
    if args.model:
        G = load_generator(args.model, device).generator
    else:
        from bench.inversion import lively_generator

        G = lively_generator(args.preset, device)
    res = G.config.resolution
    nets = LossNetworks(args.weights_dir, args.random_loss_weights)
    if args.self_consistency:
        result = self_consistency(G, args.steps, args.tune_steps, args.heads, args.input_view, nets, device)
        print("summary:", json.dumps(result["summary"]))
        if args.json:
            args.json.write_text(json.dumps(result, indent=1) + "\n")
        return
    w1, w2 = LossWeights(id=0.1, mse=0.1, lpips=1.0), LossWeights(id=0.1, mse=1.0, lpips=1.0)
    if args.mse_only:
        w1 = w2 = LossWeights(id=0.0, mse=1.0, lpips=0.0)
    obj1 = Objective(w1, SYNTHETIC_HEADS, nets).to(device)
    obj2 = Objective(w2, SYNTHETIC_HEADS, nets).to(device)
    lpips_net = obj1.lpips
    pre = PreprocessConfig(framing=SYNTHETIC_HEADS, resolution=res)
    source = (heads_from_dataset(args.dataset, args.heads, res, args.input_view) if args.dataset
              else heads_on_the_fly(args.heads, res, args.detect_resolution, args.input_view))
    keep = [v for v in range(len(EVAL_VIEWS)) if v != args.input_view]
    rows = []
    for label, inp, gt, cams in source:
        photo = photo_from_array(inp, label)
        try:
            aligned = prepare_aligned(photo, pick_face(photo, detect_faces(photo), 20).face, pre)
        except FaceNotFoundError as exc:
            rows.append({"head": label, "error": str(exc)})
            print(f"{label}: {exc}")
            continue
        target = make_target([aligned])
        true_cam = cams[args.input_view]
        row = {"head": label, "camera_error_deg": view_angle_error_deg(aligned.camera.camera, true_cam),
               "estimated_yaw_pitch_deg": [aligned.camera.yaw_deg, aligned.camera.pitch_deg],
               "true_yaw_pitch_deg": list(EVAL_VIEWS[args.input_view])}
        s1 = last_step(invert_latent(G, target, LatentConfig(steps=args.steps, batch_size=1, preview_every=0,
                                                             losses=obj1.weights), obj1))
        row["camera_error_refined_deg"] = view_angle_error_deg(s1.cameras[0], true_cam)
        row["stage1"] = compare(G, s1.ws, cams, gt, keep, lpips_net, device)
        if args.tune_steps > 0:
            refined = target.with_cameras(s1.cameras)
            tune = TuningConfig(steps=args.tune_steps, batch_size=1, preview_every=0, losses=obj2.weights)
            s2 = last_step(tune_generator(G, s1.ws, refined, tune, obj2))
            row["stage1+2"] = compare(s2.generator, s1.ws, cams, gt, keep, lpips_net, device)
        rows.append(row)
        print(json.dumps(row))
    ok = [r for r in rows if "error" not in r]
    summary = {"model": args.model or f"random {args.preset}", "lpips": obj1.sources.get("lpips"),
               "losses": {"stage1": vars(w1), "stage2": vars(w2)},
               "heads": len(rows), "detected": len(ok), "input_view_deg": EVAL_VIEWS[args.input_view],
               "steps": args.steps, "tune_steps": args.tune_steps}
    if ok:
        summary["camera_error_deg_mean"] = float(np.mean([r["camera_error_deg"] for r in ok]))
        summary["camera_error_refined_deg_mean"] = float(np.mean([r["camera_error_refined_deg"] for r in ok]))
        for stage in ("stage1", "stage1+2"):
            if stage in ok[0]:
                summary[stage] = {k: float(np.mean([r[stage][k] for r in ok])) for k in ok[0][stage]}
    print("summary:", json.dumps(summary))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
