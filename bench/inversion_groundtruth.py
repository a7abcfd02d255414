"""Inversion against ground truth: the decomposition on held-out synthetic heads (docs/inversion.md).

For each held-out head of a synthetic dataset's test split (``python -m training.synthetic_heads ...
--test-fraction``: exact renders from the 10 evaluation views), invert the input view (``--input-view``,
frontal by default) with the inversion's own code and settings (``--preset``; offline losses: MSE + SSIM),
then compare with the truth:

rows     camera (true: the render's own camera, uniform weights | estimated: MTCNN, alignment, PnP and the
         weight map of the pipeline, refined by stage 1) x space (W | W+) x stage 1 | stage 1 + 2
columns  input-view PSNR; PSNR and SSIM of the 9 other evaluation views (mean over heads); camera error
         (deg, median, after refinement)
per view the PSNR of each of the 10 evaluation views (mean over heads; the latent rendered from the true
         evaluation cameras, so the input view's column is the world-frame fit, not the refined camera's):
         ``views_psnr`` in every row of the JSON and a second printed table (views as columns)

Beside them: the *bound* (the W+ latent fitted to all 10 views at once, core.latent_fit: the best the generator
can represent each head) and the *self-consistency* case (the generator's own renders of random latents,
psi 0.7, inverted with the true camera, compared with the true latent's renders).

All heads run at once in stage 1 (one latent each, core.latent_fit batches them); stage 2 tunes one copy per
head. Records ``inversion_gt_input_psnr``, ``inversion_gt_novel_psnr`` (estimated camera, the preset's space,
stage 1 + 2), ``inversion_camera_error_deg`` and the bound with ``--record`` (``--tag T``: the names get
``@T``, the rule of bench.default_model_quality).

    python -m bench.inversion_groundtruth --model assets/default_model.safetensors --dataset data/heldout128 --record
    python -m bench.inversion_groundtruth --preset-model tiny --dataset DIR --heads 1 --steps 2 --tune-steps 1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.camera import Cameras
from core.image_metrics import psnr, ssim
from core.latent_fit import FitTarget, LatentFitConfig, fit_latent, render_latent
from core.model_files import load_generator
from bench.inversion_groundtruth_report import (NUM_VIEWS, print_row, print_table, record_figures,  # noqa: F401
                                               summarise, view_labels, views_mean)
from inversion.config import DEFAULT_PRESET, PRESET_NAMES, preset_settings
from inversion.detection import FaceNotFoundError
from inversion.objective import LossNetworks, Objective
from inversion.photos import photo_from_array
from inversion.pivotal_tuning import tune_generator
from inversion.pose import view_angle_error_deg
from inversion.preprocess import InversionTarget, downsampled, locate_face, prepare_aligned
from inversion.steps import last_step
from training.metrics.eval_split import held_out_labels, load_eval_split
from training.metrics.groundtruth import GtFitSettings

DETECT_SIZE = 256  # px: the input view is upsampled to at least this for MTCNN


@dataclasses.dataclass(frozen=True, eq=False)
class Heads:
    """``images [H, V, 3, R, R]`` float in [0, 1] at the model's resolution, ``masks [H, V, 1, R, R]``,
    ``cameras [V]`` (the evaluation views), ``photos`` uint8 ``[H, D, D, 3]`` (the input view at the dataset's
    resolution), ``labels``."""

    labels: list[str]
    images: torch.Tensor
    masks: torch.Tensor
    cameras: Cameras
    photos: np.ndarray


def load_heads(root: Path, count: int, res: int, input_view: int) -> Heads:
    """The first ``count`` held-out heads of the dataset at ``root`` (folder or zip; read by
    training.metrics.eval_split, the split's owner): their evaluation views resized to ``res`` (LANCZOS),
    masks, the shared cameras and each head's native-size photo (view ``input_view``)."""
    split = load_eval_split(root, limit=count)
    if not split:
        raise SystemExit(f"{root}/test holds no held-out head; make one with --test-fraction")
    cams = split[0].cameras
    images, masks, photos = [], [], []
    for ident in split:
        if not torch.allclose(ident.cameras.to_label(), cams.to_label(), atol=1e-5):
            raise SystemExit(f"head {ident.identity:05d}: its evaluation cameras differ from the first "
                             "head's")
        if ident.masks is None:
            raise SystemExit(f"{root}: the held-out split has no masks (test/mask); write it again with "
                             "python -m training.synthetic_heads")
        photos.append(ident.images[input_view])
        images.append(np.stack([_resized(im, res) for im in ident.images]))
        masks.append(np.stack([_resized(m, res) for m in ident.masks]))
    img = torch.from_numpy(np.stack(images)).permute(0, 1, 4, 2, 3).float() / 255.0
    msk = torch.from_numpy(np.stack(masks)).float()[:, :, None] / 255.0
    return Heads([f"head {i.identity:05d}" for i in split], img, msk, cams, np.stack(photos))


def _resized(image: np.ndarray, res: int) -> np.ndarray:
    """``[H, W(, 3)]`` uint8 -> ``[res, res(, 3)]`` uint8 (PIL LANCZOS)."""
    return np.asarray(Image.fromarray(image).resize((res, res), Image.LANCZOS))


def view_metrics(G, ws: torch.Tensor, cams: Cameras, gt: torch.Tensor, views: list[int]) -> dict:
    """PSNR / SSIM per head of ``ws [H, n, w]`` rendered from ``cams [V]`` against ``gt [H, V, 3, R, R]``:
    ``psnr``, ``ssim`` ``[H]`` (mean over ``views``) and ``view_psnr`` ``[H][V]`` (every view)."""
    device = next(G.parameters()).device
    H, res = ws.shape[0], gt.shape[-1]
    sel = torch.tensor(views)
    with torch.no_grad():
        pred = torch.cat([render_latent(G, ws[h:h + 1].to(device), cams.reshape(1, -1).to(device), res).cpu()
                          for h in range(H)])
    every = psnr(pred, gt)                                                    # [H, V]
    return {"psnr": every[:, sel].mean(1).tolist(), "ssim": ssim(pred[:, sel], gt[:, sel]).mean(1).tolist(),
            "view_psnr": every.tolist()}


def row_metrics(m: dict) -> dict:
    """A row's columns from :func:`view_metrics`: ``novel_psnr``, ``novel_ssim`` ``[H]``, ``view_psnr``
    ``[H][V]`` and ``views_psnr`` ``[V]`` (mean over heads)."""
    return {"novel_psnr": m["psnr"], "novel_ssim": m["ssim"], "view_psnr": m["view_psnr"],
            "views_psnr": views_mean(m["view_psnr"])}


def estimate_inputs(heads: Heads, settings, input_view: int) -> tuple[list, list[str]]:
    """Per head the pipeline's preprocessing of the input view (None where MTCNN finds no face)."""
    aligned, problems = [], []
    for label, img in zip(heads.labels, heads.photos):
        up = img
        if img.shape[0] < DETECT_SIZE:
            side = DETECT_SIZE
            up = np.asarray(Image.fromarray(img).resize((side, side), Image.LANCZOS))
        photo = photo_from_array(up, label)
        try:
            face, _ = locate_face(photo, settings.preprocess, min_face_px=20)
            aligned.append(prepare_aligned(photo, face, settings.preprocess))
        except FaceNotFoundError as exc:
            aligned.append(None)
            problems.append(str(exc))
    return aligned, problems


def stage1(G, images, cams: Cameras, weights, latent_cfg, refine: bool):
    """Stage 1 for every head at once: ``images [H, 1, 3, R, R]``, ``cams [H, 1]`` -> (ws, refined cams).
    ``refine`` False: the cameras stay as given (no refinement, no camera search)."""
    if not refine:
        latent_cfg = dataclasses.replace(latent_cfg, refine_cameras=False, camera_candidates=1)
    r = latent_cfg.max_resolution  # as inversion.latent_search.invert_latent does
    images, weights = downsampled(images, r), downsampled(weights, r)
    fit = None
    for fit in latent_cfg.fit_steps(G, FitTarget(images, cams, weights)):
        pass
    if fit is None:
        raise SystemExit("stage 1 needs at least one step (--steps)")
    return fit.ws.cpu().clone(), Cameras(fit.cameras.cam2world.cpu(), fit.cameras.intrinsics.cpu())


def stage2(G, ws: torch.Tensor, images, cams: Cameras, weights, tuning_cfg, objective) -> list:
    """One tuned copy per head (stage 2 of the pipeline)."""
    tuned = []
    for h in range(ws.shape[0]):
        target = InversionTarget(images[h], weights[h], cams[h], (f"{h}",))
        tuned.append(last_step(tune_generator(G, ws[h:h + 1], target, tuning_cfg, objective)).generator.eval())
    return tuned


def tuned_metrics(tuned: list, ws, cams: Cameras, gt, views: list[int]) -> dict:
    rows = [view_metrics(Gt, ws[h:h + 1], cams, gt[h:h + 1], views) for h, Gt in enumerate(tuned)]
    return {k: [r[k][0] for r in rows] for k in ("psnr", "ssim", "view_psnr")}


def input_psnr(G_or_list, ws, cams: Cameras, images) -> list[float]:
    """PSNR of each head's render from its (refined) input camera ``cams [H, 1]`` against ``images [H, 1]``."""
    out = []
    for h in range(ws.shape[0]):
        G = G_or_list[h] if isinstance(G_or_list, list) else G_or_list
        device = next(G.parameters()).device
        with torch.no_grad():
            pred = render_latent(G, ws[h:h + 1].to(device), cams[h:h + 1].to(device), images.shape[-1]).cpu()
        out.append(float(psnr(pred, images[h:h + 1]).mean()))
    return out


def run_rows(G, heads: Heads, args, settings, objective) -> dict:
    """The decomposition rows; returns {row name: {...}} plus the per-head camera errors."""
    device = next(G.parameters()).device
    H, res = heads.images.shape[0], heads.images.shape[-1]
    novel = [v for v in range(NUM_VIEWS) if v != args.input_view]
    rows: dict[str, dict] = {}
    aligned, problems = estimate_inputs(heads, settings, args.input_view)
    ok = [h for h, a in enumerate(aligned) if a is not None]
    true_cams = heads.cameras[args.input_view:args.input_view + 1]
    inputs = {
        "true camera": (heads.images[:, args.input_view:args.input_view + 1],
                        Cameras(true_cams.cam2world.expand(H, 1, 4, 4), true_cams.intrinsics.expand(H, 1, 3, 3)),
                        torch.ones(H, 1, 1, res, res), list(range(H)), False),
    }
    if ok:
        est = [aligned[h] for h in ok]
        inputs["estimated camera"] = (
            torch.stack([torch.from_numpy(a.image).permute(2, 0, 1).float()[None] / 255.0 for a in est]),
            Cameras(torch.stack([a.camera.camera.cam2world[None] for a in est]),
                    torch.stack([a.camera.camera.intrinsics[None] for a in est])),
            torch.stack([torch.from_numpy(a.weight)[None, None] for a in est]), ok, True)
    for cam_name, (images, cams, weights, which, refine) in inputs.items():
        if cam_name.split()[0] not in args.cameras:
            continue
        gt = heads.images[which]
        for space in args.spaces:
            lat = dataclasses.replace(settings.latent, space=space)
            t0 = time.perf_counter()
            ws, refined = stage1(G, images.to(device), cams.to(device), weights.to(device), lat, refine)
            t1 = time.perf_counter()
            row = {"heads": len(which), "seconds": t1 - t0, "input_psnr": input_psnr(G, ws, refined, images),
                   **row_metrics(view_metrics(G, ws, heads.cameras, gt, novel))}
            row["camera_error_deg"] = [view_angle_error_deg(refined[h, 0], heads.cameras[args.input_view])
                                       for h in range(len(which))]
            rows[f"{cam_name}, {space.upper()}, stage 1"] = row
            print_row(f"{cam_name}, {space.upper()}, stage 1", row)
            if settings.tuning is None or args.tune_heads == 0:
                continue
            n = min(len(which), args.tune_heads)
            t0 = time.perf_counter()
            tuned = stage2(G, ws[:n], images[:n], refined[:n], weights[:n], settings.tuning, objective)
            t1 = time.perf_counter()
            rows[f"{cam_name}, {space.upper()}, stage 1+2"] = {
                "heads": n, "seconds": t1 - t0, "input_psnr": input_psnr(tuned, ws[:n], refined[:n], images[:n]),
                **row_metrics(tuned_metrics(tuned, ws[:n], heads.cameras, gt[:n], novel)),
                "camera_error_deg": row["camera_error_deg"][:n],
                "stage1_input_psnr": row["input_psnr"][:n], "stage1_novel_psnr": row["novel_psnr"][:n]}
            print_row(f"{cam_name}, {space.upper()}, stage 1+2", rows[f"{cam_name}, {space.upper()}, stage 1+2"])
            if args.figure_dir is not None and cam_name == "estimated camera" and space == settings.latent.space \
                    and not (args.figure_dir / "figure.npz").exists():
                save_figure_data(args.figure_dir, G, tuned[0], ws[0:1], refined[0:1], images[0], heads, which[0])
    if aligned:
        initial = [view_angle_error_deg(a.camera.camera, heads.cameras[args.input_view]) for a in aligned if a]
        rows["_camera_error_initial_deg"] = {"camera_error_deg": initial}
    rows["_problems"] = {"messages": problems}
    return rows


def bound(G, heads: Heads, steps: int) -> dict:
    """The W+ fit to all 10 views of every head (core.latent_fit at gt_fit's step size, GtFitSettings),
    PSNR/SSIM of all views and of the 9 others."""
    device = next(G.parameters()).device
    fit = fit_latent(G, FitTarget(heads.images.to(device), heads.cameras.to(device)),
                     LatentFitConfig(steps=steps, space="w+", lr=GtFitSettings.lr))
    every = view_metrics(G, fit.ws.cpu(), heads.cameras, heads.images, list(range(NUM_VIEWS)))
    return {"steps": steps, "psnr": every["psnr"], "ssim": every["ssim"], "view_psnr": every["view_psnr"],
            "views_psnr": views_mean(every["view_psnr"])}


def self_consistency(G, args, settings, objective) -> dict:
    """Invert renders of random latents (psi 0.7) from the input view with the true camera."""
    device = next(G.parameters()).device
    res = G.config.resolution
    cams = load_cameras(args)
    gen = torch.Generator().manual_seed(100)
    with torch.no_grad():
        n = min(args.heads, args.sc_heads)
        w_true = G.map(torch.randn(n, G.config.z_dim, generator=gen).to(device), truncation_psi=0.7)
        gt = torch.cat([render_latent(G, w_true[h:h + 1], cams.reshape(1, -1).to(device), res).cpu()
                        for h in range(n)])
    H, iv = min(args.heads, args.sc_heads), args.input_view
    novel = [v for v in range(NUM_VIEWS) if v != iv]
    images = gt[:, iv:iv + 1]
    c1 = Cameras(cams[iv:iv + 1].cam2world.expand(H, 1, 4, 4), cams[iv:iv + 1].intrinsics.expand(H, 1, 3, 3))
    weights = torch.ones(H, 1, 1, res, res)
    out = {}
    for space in args.spaces:
        lat = dataclasses.replace(settings.latent, space=space)
        ws, refined = stage1(G, images.to(device), c1.to(device), weights.to(device), lat, False)
        out[f"{space.upper()}, stage 1"] = {"input_psnr": input_psnr(G, ws, refined, images),
                                            **row_metrics(view_metrics(G, ws, cams, gt, novel))}
        if settings.tuning is not None and args.tune_heads > 0:
            n = min(H, args.tune_heads)
            tuned = stage2(G, ws[:n], images[:n], refined[:n], weights[:n], settings.tuning, objective)
            out[f"{space.upper()}, stage 1+2"] = {
                "stage1_novel_psnr": out[f"{space.upper()}, stage 1"]["novel_psnr"][:n],
                "input_psnr": input_psnr(tuned, ws[:n], refined[:n], images[:n]),
                **row_metrics(tuned_metrics(tuned, ws[:n], cams, gt[:n], novel))}
    return out


def load_cameras(args) -> Cameras:
    """The held-out split's evaluation cameras ``[V]`` (the first head's; every head shares them)."""
    return load_eval_split(args.dataset, limit=1)[0].cameras


FIGURE_VIEWS = (2, 4, 7)  # indices into the dataset's evaluation views (their labels go into figure.npz)


def save_figure_data(folder: Path, G, tuned, ws, cams: Cameras, images, heads: Heads, head: int) -> Path:
    """``figure.npz`` for tools/inversion_figure.py: one head's input, stage-1 / stage-2 renders from the input
    camera, and three novel views after stage 1, after stage 1+2 and the truth (uint8 ``[..., R, R, 3]``)."""
    folder.mkdir(parents=True, exist_ok=True)
    res = images.shape[-1]
    u8 = lambda x: (x.clamp(0, 1).permute(0, 2, 3, 1) * 255 + 0.5).to(torch.uint8).numpy()  # noqa: E731
    novel = heads.cameras[torch.tensor(FIGURE_VIEWS)].reshape(1, -1)
    with torch.no_grad():
        out = {}
        for name, model in (("stage1", G), ("stage2", tuned)):
            device = next(model.parameters()).device
            out[name] = u8(render_latent(model, ws.to(device), cams.to(device), res)[0].cpu())[0]
            out[f"novel_{name}"] = u8(render_latent(model, ws.to(device), novel.to(device), res)[0].cpu())
    path = folder / "figure.npz"
    np.savez(path, input=u8(images)[0], truth=u8(heads.images[head, list(FIGURE_VIEWS)]),
             views=np.array(FIGURE_VIEWS), view_labels=np.array(view_labels(novel.reshape(-1))),
             label=np.array(heads.labels[head]), **out)
    return path


def apply_overrides(settings, items: list[str]):
    """``["latent.lr=0.01", "tuning.geometry_weight=0", "preprocess.background_weight=1"]`` applied to the
    settings (values parsed as the field's type; ``losses`` fields as ``tuning.losses.ssim=1``). The fields of
    one settings object change together, so they are validated together."""
    tree: dict = {}
    for item in items:
        key, _, raw = item.partition("=")
        *parents, name = key.split(".")
        node, obj = tree, settings
        for part in parents:
            node, obj = node.setdefault(part, {}), getattr(obj, part)
        old = getattr(obj, name)
        node[name] = type(old)(raw) if not isinstance(old, bool) else raw.lower() in ("1", "true", "yes")

    def apply(obj, changes: dict):
        return dataclasses.replace(obj, **{k: apply(getattr(obj, k), v) if isinstance(v, dict) else v
                                           for k, v in changes.items()})

    return apply(settings, tree)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="generator file (core.model_files.load_generator)")
    src.add_argument("--preset-model", help="random-weight generator of this preset (plumbing check only)")
    ap.add_argument("--dataset", type=Path, required=True, help="a synthetic dataset folder with a test/ split")
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--input-view", type=int, default=0, help="index into the evaluation views (0: frontal)")
    ap.add_argument("--preset", default=DEFAULT_PRESET, choices=PRESET_NAMES, help="inversion preset")
    ap.add_argument("--steps", type=int, default=None, help="override the preset's stage-1 steps")
    ap.add_argument("--tune-steps", type=int, default=None, help="override the preset's stage-2 steps")
    ap.add_argument("--tune-heads", type=int, default=None, help="heads tuned per row (default: all)")
    ap.add_argument("--spaces", nargs="+", default=["w", "w+"], choices=["w", "w+"])
    ap.add_argument("--cameras", nargs="*", default=["true", "estimated"], choices=["true", "estimated"],
                    help="which camera rows to run (none: only the bound and the self-consistency case)")
    ap.add_argument("--set", nargs="*", default=[], metavar="STAGE.FIELD=VALUE",
                    help="override a setting, e.g. latent.lr=0.01 tuning.geometry_weight=0 (experiments)")
    ap.add_argument("--variant", action="append", default=[], metavar="'A=1 B=2'",
                    help="also run the rows with these overrides on top (repeatable; experiments)")
    ap.add_argument("--bound-steps", type=int, default=GtFitSettings.steps,
                    help="the bound's fit (default: gt_fit's, training.metrics.groundtruth; 0: no bound)")
    ap.add_argument("--no-self-consistency", action="store_true")
    ap.add_argument("--sc-heads", type=int, default=8, help="random latents in the self-consistency case")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--json", type=Path, default=None, help="write all numbers here")
    ap.add_argument("--figure-dir", type=Path, default=None, help="write figure.npz (one head) here")
    ap.add_argument("--record", action="store_true", help="record the figures in bench/results.json")
    ap.add_argument("--tag", default="", help="with --record: names get @TAG (e.g. v2-run2-668), as in "
                    "bench.default_model_quality, so several models stay side by side")
    args = ap.parse_args(argv)
    try:  # before the model loads: a dataset without a held-out split says how to make one
        held_out_labels(args.dataset)
    except ValueError as exc:
        ap.error(str(exc))
    device = torch.device(args.device)
    if args.model:
        G = load_generator(args.model, device).generator.float().eval()
    else:
        from bench.inversion import lively_generator

        G = lively_generator(args.preset_model, device)
    settings = preset_settings(args.preset, resolution=G.config.resolution, offline=True)
    if args.steps is not None:
        settings = dataclasses.replace(settings, latent=dataclasses.replace(settings.latent, steps=args.steps))
    if args.tune_steps is not None and settings.tuning is not None:
        settings = dataclasses.replace(settings, tuning=dataclasses.replace(settings.tuning, steps=args.tune_steps))
    settings = apply_overrides(settings, args.set)
    args.tune_heads = args.heads if args.tune_heads is None else args.tune_heads
    objective = Objective(settings.tuning.losses, settings.preprocess.framing, LossNetworks()).to(device)
    heads = load_heads(args.dataset, args.heads, G.config.resolution, args.input_view)
    t0 = time.perf_counter()
    result = {"model": args.model or f"random {args.preset_model}", "dataset": str(args.dataset),
              "view_labels": view_labels(heads.cameras),
              "settings": {"latent": dataclasses.asdict(settings.latent),
                           "tuning": dataclasses.asdict(settings.tuning)},
              "overrides": args.set, "rows": run_rows(G, heads, args, settings, objective),
              "bound": bound(G, heads, args.bound_steps) if args.bound_steps > 0 else None}
    if not args.no_self_consistency:
        result["self_consistency"] = self_consistency(G, args, settings, objective)
    result["seconds"] = time.perf_counter() - t0
    print_table(result)
    result["variants"] = {}
    for variant in args.variant:
        vs = apply_overrides(settings, variant.split())
        obj_v = Objective(vs.tuning.losses, vs.preprocess.framing, LossNetworks()).to(device)
        t1 = time.perf_counter()
        sub = {"overrides": args.set + variant.split(), "rows": run_rows(G, heads, args, vs, obj_v),
               "bound": None, "seconds": None, "view_labels": result["view_labels"]}
        sub["seconds"] = time.perf_counter() - t1
        print_table(sub)
        result["variants"][variant] = sub
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    if args.record:
        record_figures(result, args, device)
    return result


if __name__ == "__main__":
    main()
