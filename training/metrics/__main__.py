"""``python -m training.metrics --network G.safetensors --data DATASET --metrics fid50k_full consistency``.

Ground-truth quality on a synthetic dataset's held-out split (docs/default-model-v2.md)::

    python -m training.metrics --network assets/default_model.safetensors --data data/heads256 \\
        --metrics gt_fit,consistency,floaters

Prints one JSON line per metric (and appends it to ``--out`` when given), in StyleGAN3's shape::

    {"results": {"fid50k_full": 4.9}, "metric": "fid50k_full", "total_time": 812.3, "network": "...",
     "data": "...", "features": "inception-2015-12-05@...", "timestamp": 1767225600.0}

Metrics:
    fid<N>k_full, fid<N>k        FID of N thousand generated images against every real image (``_full``) or
                                 against N thousand of them (e.g. fid2k_full, fid50k_full, fid10k);
                                 without the k, N images (fid500_full: quick looks, smoke tests).
    fid3d_<N>k_full, fid3d_<N>k  FID3D (frontal mapping label, random render label; equals FID for our
                                 generator, see training/metrics/fid.py).
    consistency                  reprojection consistency between views 20 deg apart (no network needed):
                                 results psnr, l1, coverage, depth_agreement, depth_spread. View A: yaw
                                 ~ N(0, 20 deg) (``--consistency-views frontal``, the default), uniform over
                                 the circle (``full``) or the dataset's labels (``data``).
    gt_fit                       multi-view W+ fit of held-out synthetic heads against their 10 evaluation
                                 views (training/metrics/groundtruth.py): psnr, ssim, per view, outside_gt.
                                 Needs --data with a test/ split, and core.latent_fit.
    floaters                     share of rendered opacity outside the head's dilated silhouette, random
                                 heads from the 10 evaluation views (training/metrics/floaters.py).

Names may be given space- or comma-separated (``--metrics gt_fit,consistency,floaters``).

FID needs the Inception file (``--inception PATH`` or the caches listed in training/metrics/features.py).
``--features stand-in`` swaps in a tiny random network for smoke tests; its results are named
``...@stand-in`` and are not FID.
"""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from training.metrics.groundtruth import GtFitSettings

DESCRIPTION = (
    "Compute metrics of a generator file and print one JSON line per metric. Metrics: fid<N>k[_full] and "
    "fid3d_<N>k[_full] (Inception FID; N thousand generated images, against all real images with _full), "
    "consistency (reprojection consistency and depth spread between views 20 deg apart; no network), "
    "gt_fit (multi-view W+ fit of held-out synthetic heads, PSNR/SSIM of their 10 evaluation views), "
    "floaters (share of opacity outside the head's dilated silhouette). "
    "FID needs the Inception TorchScript file (--inception, or the caches in training/metrics/features.py)."
)
OTHER_METRICS = ("consistency", "gt_fit", "floaters")
FID_PATTERN = re.compile(r"^fid(3d_)?(\d+)(k?)(_full)?$")


@dataclass(frozen=True)
class MetricsConfig:
    """Compute metrics of a generator file.

    Attributes:
        network: generator file (ours, an official CGS-GAN pickle or a GGHead checkpoint-<kimg>.pkl).
        metrics: metric names (see the module docstring).
        data: dataset folder or zip (EG3D/CGS-GAN layout); needed for FID, optional for consistency (its
            camera labels are then used for the first view).
        inception: the Inception TorchScript file; default: the standard caches.
        features: "inception" (real FID) or "stand-in" (tiny random network, for smoke tests only).
        device: "auto" (CUDA when available), "cpu", "cuda", ...
        batch: generated images per batch.
        seed: seeds the latents and label draws.
        cache_dir: where real-image statistics are cached; None disables the cache.
        consistency_scenes: heads for the consistency metric.
        consistency_offset_deg: yaw between its two views.
        consistency_views: view A of the consistency metric: "frontal" (yaw ~ N(0, 20 deg), pitch ~ N(0,
            5 deg)), "full" (yaw uniform over the circle, same pitch) or "data" (the --data labels).
        gt_heads, gt_steps, gt_lr, gt_space, gt_batch: the ground-truth fit: held-out heads, optimisation
            steps, Adam step size (w units; the defaults are the recorded protocol,
            training/metrics/groundtruth.py),
            latent space ("w+" or "w"), heads fitted together (independently; lower it on the CPU).
        floaters_heads, floaters_psi: random heads for the floaters metric and their truncation.
        resolution: render resolution (default: the held-out split's for gt_fit and floaters, the
            dataset's for FID, else the generator's). gt_fit re-renders the ground truth at this size.
        out: append the JSON lines to this file as well.
        index_list: the dataset's index list (e.g. CGS-GAN's rebalancing JSON), as in training.
        workers: processes decoding real images (CGS-GAN's metrics use 3).
    """

    network: Path
    metrics: tuple[str, ...] = ("fid50k_full",)
    data: Path | None = None
    inception: Path | None = None
    features: Literal["inception", "stand-in"] = "inception"
    device: str = "auto"
    batch: int = 8
    seed: int = 0
    cache_dir: Path | None = Path("~/.cache/splathead/metrics")
    consistency_scenes: int = 64
    consistency_offset_deg: float = 20.0
    consistency_views: Literal["frontal", "full", "data"] = "frontal"
    gt_heads: int = 16
    gt_steps: int = GtFitSettings.steps
    gt_lr: float = GtFitSettings.lr
    gt_space: Literal["w+", "w"] = "w+"
    gt_batch: int = 16
    floaters_heads: int = 64
    floaters_psi: float = 1.0
    resolution: int | None = None
    out: Path | None = None
    index_list: str | None = None
    workers: int = 3


def metric_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """The metric names of ``--metrics`` (space- and/or comma-separated), checked."""
    out = tuple(n.strip() for name in names for n in name.split(",") if n.strip())
    for name in out:
        if name not in OTHER_METRICS and not FID_PATTERN.match(name):
            raise ValueError(f"unknown metric {name!r}: use fid<N>k[_full], fid3d_<N>k[_full] (or <N> images "
                             "without the k), consistency, gt_fit or floaters")
    return out


def run_metrics(cfg: MetricsConfig) -> list[dict]:
    """Compute ``cfg.metrics``; one result record per metric (see the module docstring)."""
    from core.model_files import load_generator

    names = metric_names(cfg.metrics)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device)
    needs_fid = any(FID_PATTERN.match(m) for m in names)
    if needs_fid and cfg.data is None:
        raise ValueError("FID needs --data (the real images)")
    if cfg.data is None and "gt_fit" in names:
        raise ValueError("gt_fit needs --data (a synthetic-heads dataset with a held-out split, --test-fraction > 0)")
    if cfg.data is None and "consistency" in names and cfg.consistency_views == "data":
        raise ValueError("consistency with --consistency-views data needs --data")
    extractor = _extractor(cfg, device) if needs_fid else None  # fail early, before loading anything big
    split = _split(cfg, names)  # likewise: a dataset without a held-out split fails before the model loads
    G = load_generator(cfg.network, device=device).generator
    needs_dataset = needs_fid or ("consistency" in names and cfg.consistency_views == "data")
    dataset = _dataset(cfg) if needs_dataset else None
    records = []
    for name in names:
        start = time.time()
        if name == "consistency":
            results = _consistency(cfg, G, dataset, device)
        elif name == "gt_fit":
            results = _gt_fit(cfg, G, split, device)
        elif name == "floaters":
            results = _floaters(cfg, G, split, device)
        else:
            results = {_key(name, cfg): _fid(cfg, name, G, dataset, extractor, device)}
        records.append({"results": results, "metric": name, "total_time": round(time.time() - start, 3),
                        "network": str(cfg.network), "data": None if cfg.data is None else str(cfg.data),
                        "features": extractor.name if extractor is not None and name not in OTHER_METRICS else None,
                        "timestamp": time.time()})
    return records


def _key(name: str, cfg: MetricsConfig) -> str:
    return name + ("@stand-in" if cfg.features == "stand-in" else "")


def _extractor(cfg: MetricsConfig, device: torch.device):
    from training.metrics.features import load_inception, stand_in_features

    if cfg.features == "stand-in":
        return stand_in_features().to(device)
    return load_inception(cfg.inception, device=device)


def _dataset(cfg: MetricsConfig):
    from training.dataset import DatasetOptions, ImageLabelDataset

    # The real-statistics protocol: every entry, no x-flip, masked images on white.
    return ImageLabelDataset(DatasetOptions(str(cfg.data), xflip=False, random_background=False,
                                            index_list=cfg.index_list))


def _fid(cfg: MetricsConfig, name: str, G, dataset, extractor, device: torch.device) -> float:
    from training.metrics.fid import fid
    from training.metrics.sampling import generator_sampler

    m = FID_PATTERN.match(name)
    assert m is not None
    num = int(m.group(2)) * (1000 if m.group(3) else 1)
    if num <= 0:
        raise ValueError(f"{name}: the number of generated images must be positive")
    max_real = None if m.group(4) else num
    res = cfg.resolution or dataset.resolution
    sample = generator_sampler(G, dataset.labels(), res, protocol="fid3d" if m.group(1) else "fid", seed=cfg.seed,
                               device=device)
    cache = None if cfg.cache_dir is None else Path(cfg.cache_dir).expanduser()
    return fid(dataset, sample, extractor, num_gen=num, max_real=max_real, batch=cfg.batch, cache_dir=cache,
               workers=cfg.workers, progress=sys.stderr.isatty())


def _consistency(cfg: MetricsConfig, G, dataset, device: torch.device) -> dict:
    from training.metrics.consistency import generator_consistency
    from training.metrics.sampling import full_circle_labels

    res = cfg.resolution or (dataset.resolution if dataset is not None else None)
    labels = None
    if cfg.consistency_views == "data":
        labels = dataset.labels()
    elif cfg.consistency_views == "full":
        labels = full_circle_labels(4096, seed=cfg.seed)
    result = generator_consistency(G, cfg.consistency_scenes, res, cfg.consistency_offset_deg, labels=labels,
                                   seed=cfg.seed, batch=cfg.batch, device=device)
    return {f"consistency_{k}": v for k, v in result.as_dict().items()}


def _split(cfg: MetricsConfig, names: tuple[str, ...]):
    """The held-out split (gt_fit: the heads it fits; floaters: only the cameras), or None."""
    from training.metrics.eval_split import load_eval_split

    if cfg.data is None or not ({"gt_fit", "floaters"} & set(names)):
        return None
    return load_eval_split(cfg.data, limit=cfg.gt_heads if "gt_fit" in names else 1)


def _gt_fit(cfg: MetricsConfig, G, split, device: torch.device) -> dict:
    from training.metrics.groundtruth import gt_fit

    settings = GtFitSettings(heads=cfg.gt_heads, steps=cfg.gt_steps, lr=cfg.gt_lr, space=cfg.gt_space,
                             resolution=cfg.resolution, seed=cfg.seed, batch=cfg.gt_batch)
    result = gt_fit(G, split, settings, device=device, progress=sys.stderr.isatty())
    return {f"gt_fit_{k}": v for k, v in result.as_dict().items()}


def _floaters(cfg: MetricsConfig, G, split, device: torch.device) -> dict:
    from training.metrics.floaters import generator_floaters
    from training.synthetic_heads.cameras import eval_cameras

    cameras = split[0].cameras if split else eval_cameras()
    res = cfg.resolution or (split[0].images.shape[1] if split else None)
    result = generator_floaters(G, cameras, cfg.floaters_heads, res, cfg.floaters_psi, cfg.seed, cfg.batch, device)
    return {f"floaters_{k}": v for k, v in result.as_dict().items()}


def main(argv: list[str] | None = None) -> int:
    import tyro

    from training.metrics.features import MissingWeightsError

    cfg = tyro.cli(MetricsConfig, args=argv, prog="python -m training.metrics", description=DESCRIPTION)
    try:
        records = run_metrics(cfg)
    except MissingWeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except (ValueError, FileNotFoundError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for record in records:
        line = json.dumps(record, allow_nan=True)
        print(line, flush=True)
        if cfg.out is not None:
            with open(cfg.out, "a") as f:
                f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
