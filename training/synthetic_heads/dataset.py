"""Write a synthetic multi-view head dataset in the EG3D / CGS-GAN layout (format in README.md).

Layout (folder; with ``--zip`` the same tree inside an uncompressed zip)::

    config.json              the generating configuration, format version, completion flag
    dataset.json             {"labels": [["00000.png", [25 floats]], ...]}   (CGS-GAN reads it here)
    images/NNNNN.png         RGB renders composited on white
    images/dataset.json      the same labels (EG3D reads them from inside the image folder)
    mask/NNNNN.png           8-bit foreground masks, round(255 * alpha)
    attributes.jsonl         one line per training image: file, identity, seed, view, kind, yaw/pitch, attributes
    identities.jsonl         one line per identity: identity, seed, split, Gaussian count, attributes
    test/gt/IIIII.ply        ground-truth Gaussians of each held-out identity (standard 3DGS .ply)
    test/images/IIIII_VV.png exact renders from the fixed evaluation views (cameras.EVAL_VIEWS)
    test/mask/IIIII_VV.png, test/dataset.json, test/attributes.jsonl   as above, for the evaluation renders

Identity ``i`` (0-based; the last ``num_test`` identities are held out) has head seed ``identity_seed(seed, i)``
and its poses come from the random stream ``(seed, i, 1)``, so every identity is reproducible on its own.
Training image ``i * images_per_identity + v`` is view ``v`` of identity ``i``.

``held_out_only`` makes just the ``test/`` part (and identities.jsonl of those identities, config.json): the
same bytes as in the full dataset, for evaluating models without the training images.

Devices: training images are rendered on CUDA with gsplat (``--device cuda``, or ``auto`` when usable) or
with the torch reference on the CPU; identities.jsonl records which (``renderer``). The held-out ground truth
is always rendered with the torch reference on the CPU, so the test split is the same bytes everywhere.

Resuming: every file is written atomically (temporary name, then rename) and an identity counts as done when
its marker ``.progress/IIIIII.json`` exists, written after its files. A restart with the same content options
skips finished identities, redoes the rest and gives byte-identical output. Zip output is staged in the folder
``<out>.partial`` (resumable the same way) and packed when every identity is done.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import shutil
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from core.ply import write_ply
from training.synthetic_heads.cameras import (
    EVAL_VIEWS, eval_cameras, pose_cameras, sample_side_poses, sample_training_poses,
)
from training.synthetic_heads.config import DatasetConfig
from training.synthetic_heads.head import make_head_model
from training.synthetic_heads.views import resolve_device, render_views

PROGRESS = ".progress"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class DatasetSummary:
    """What :func:`write_dataset` did. ``seconds`` covers this call only; ``rendered`` the images it made."""

    path: Path
    num_identities: int
    num_images: int
    num_test: int
    rendered: int
    seconds: float
    complete: bool


def identity_seed(seed: int, identity: int) -> int:
    """The head seed of identity ``identity`` in a dataset made with master ``seed`` (a 31-bit int)."""
    return int(np.random.SeedSequence([seed, identity]).generate_state(1)[0] >> 1)


def image_name(index: int) -> str:
    return f"{index:05d}.png"


def write_dataset(cfg: DatasetConfig, progress: bool = True,
                  max_new_identities: int | None = None) -> DatasetSummary:
    """Make (or finish) the dataset described by ``cfg``; see the module docstring for the layout.

    ``max_new_identities`` stops after that many newly rendered identities without packing (for tests that
    simulate an interrupted run). Raises ``ValueError`` if ``cfg.out`` holds something else.
    """
    t0 = time.perf_counter()
    device = resolve_device(cfg.device)[0].type  # "auto" resolved once, so every worker renders alike
    root = _staging_root(cfg)
    if cfg.zip and cfg.out.exists():
        _check_existing_zip(cfg)
        return _done(cfg, t0)
    if _prepare_root(cfg, root):  # already complete (a zip may still need packing)
        if cfg.zip:
            _pack_zip(root, cfg.out)
            shutil.rmtree(root)
        return _done(cfg, t0)
    pending = _pending(cfg, root)
    todo = pending if max_new_identities is None else pending[:max_new_identities]
    bar = tqdm(total=len(cfg.identities), initial=len(cfg.identities) - len(pending), unit="id", disable=not progress,
               desc=f"synthetic heads -> {cfg.out}")
    rendered = 0
    for record in _run(cfg, root, todo, device):
        _atomic_write(root / PROGRESS / f"{record['identity']:06d}.json", json.dumps(record).encode())
        rendered += len(record["images"])
        bar.update(1)
        bar.set_postfix(img_per_s=f"{rendered / max(time.perf_counter() - t0, 1e-9):.1f}")
    bar.close()
    complete = not _pending(cfg, root)
    if complete:
        _finalize(cfg, root)
        if cfg.zip:
            _pack_zip(root, cfg.out)
            shutil.rmtree(root)
    return DatasetSummary(cfg.out, cfg.num_identities, cfg.num_images, cfg.num_test, rendered,
                          time.perf_counter() - t0, complete)


def _done(cfg: DatasetConfig, t0: float) -> DatasetSummary:
    return DatasetSummary(cfg.out, cfg.num_identities, cfg.num_images, cfg.num_test, 0, time.perf_counter() - t0, True)


def _pending(cfg: DatasetConfig, root: Path) -> list[int]:
    return [i for i in cfg.identities if not (root / PROGRESS / f"{i:06d}.json").exists()]


def _staging_root(cfg: DatasetConfig) -> Path:
    return cfg.out.with_name(cfg.out.name + ".partial") if cfg.zip else cfg.out


def _prepare_root(cfg: DatasetConfig, root: Path) -> bool:
    """Create ``root`` or check it belongs to this configuration; True if it is already complete."""
    config_path = root / "config.json"
    if root.exists() and not root.is_dir():
        raise ValueError(f"{root} exists and is not a folder")
    if root.exists() and any(root.iterdir()):
        if not config_path.exists():
            raise ValueError(f"{root} is not empty and holds no synthetic-heads config.json; "
                             "refusing to write into it")
        saved = json.loads(config_path.read_text())
        if saved.get("content") != cfg.content_dict():
            raise ValueError(
                f"{root} was made with different options ({saved.get('content')}); use the same options to resume, "
                "or another output path"
            )
        return bool(saved.get("complete"))
    train = () if cfg.held_out_only else ("images", "mask")
    for sub in train + (PROGRESS,) + (("test/gt", "test/images", "test/mask") if cfg.num_test else ()):
        (root / sub).mkdir(parents=True, exist_ok=True)
    _write_config(cfg, root, complete=False)
    return False


def _write_config(cfg: DatasetConfig, root: Path, complete: bool) -> None:
    info = {"content": cfg.content_dict(), "complete": complete, "num_images": cfg.num_images,
            "num_train_identities": cfg.num_train, "num_test_identities": cfg.num_test,
            "images_per_identity": cfg.images_per_identity, "eval_views_deg": [list(v) for v in EVAL_VIEWS]}
    _atomic_write(root / "config.json", (json.dumps(info, indent=1) + "\n").encode())


def _run(cfg: DatasetConfig, root: Path, todo: list[int], device: str) -> Iterator[dict]:
    jobs = [(cfg, str(root), i, device) for i in todo]
    if cfg.workers <= 1 or len(todo) <= 1:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # one thread everywhere: identical bytes whatever --workers is
        try:
            for job in jobs:
                yield render_identity(job)
        finally:
            torch.set_num_threads(threads)
        return
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(min(cfg.workers, len(todo)), initializer=_init_worker) as pool:
        yield from pool.imap_unordered(render_identity, jobs)


def _init_worker() -> None:
    torch.set_num_threads(1)


def render_identity(job: tuple[DatasetConfig, str, int, str]) -> dict:
    """Render and write every file of one identity on ``device`` ("cpu" or "cuda"); return its record (written
    as its progress marker)."""
    cfg, root_s, i, device = job
    root = Path(root_s)
    seed = identity_seed(cfg.seed, i)
    head = make_head_model(seed)
    test = i >= cfg.num_train
    record = {"identity": i, "seed": seed, "split": "test" if test else "train",
              "num_gaussians": head.gaussians.num_gaussians, "attributes": head.attributes.to_dict(), "images": []}
    if test:
        write_ply(root / "test" / "gt" / f"{i:05d}.ply", head.gaussians)
        cams = eval_cameras()
        yaw, pitch = (np.array(v) for v in zip(*EVAL_VIEWS))
        names = [f"{i:05d}_{v:02d}.png" for v in range(len(EVAL_VIEWS))]
        kinds = ["eval"] * len(names)
        folder, cull, device = root / "test", False, "cpu"  # ground truth: always the torch reference
    else:
        rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, i, 1]))
        yaw_r, pitch_r, full = sample_training_poses(rng, cfg.views_per_identity, cfg.full_yaw_fraction)
        yaw_s, pitch_s = sample_side_poses(rng, cfg.extra_side_views)
        yaw, pitch = np.concatenate([yaw_r, yaw_s]), np.concatenate([pitch_r, pitch_s])
        cams = pose_cameras(yaw, pitch)
        names = [image_name(i * cfg.images_per_identity + v) for v in range(cfg.images_per_identity)]
        kinds = ["full" if f else "ffhq" for f in full] + ["side"] * cfg.extra_side_views
        folder, cull = root, not cfg.exact
    record["renderer"] = "gsplat" if device == "cuda" else "torch"
    rgb, alpha = render_views(head, cams, cfg.resolution, cull=cull, device=device)
    labels = cams.to_label()
    for v, name in enumerate(names):
        _atomic_write(folder / "images" / name, _png(rgb[v]))
        _atomic_write(folder / "mask" / name, _png(alpha[v]))
        record["images"].append({"file": name, "view": v, "kind": kinds[v], "yaw_deg": float(yaw[v]),
                                 "pitch_deg": float(pitch[v]), "label": [float(x) for x in labels[v]]})
    return record


def _finalize(cfg: DatasetConfig, root: Path) -> None:
    """Gather the per-identity markers into dataset.json, attributes.jsonl and identities.jsonl."""
    records = [json.loads((root / PROGRESS / f"{i:06d}.json").read_text()) for i in cfg.identities]
    splits = {"train": (root, []), "test": (root / "test", [])}
    identities = []
    for r in records:
        identities.append({k: r[k] for k in ("identity", "seed", "split", "num_gaussians", "renderer", "attributes")})
        for im in r["images"]:
            splits[r["split"]][1].append((im, r))
    for split, (folder, items) in splits.items():
        if (split == "test" and not cfg.num_test) or (split == "train" and cfg.held_out_only):
            continue
        items.sort(key=lambda t: t[0]["file"])
        labels = (json.dumps({"labels": [[im["file"], im["label"]] for im, _ in items]}) + "\n").encode()
        _atomic_write(folder / "dataset.json", labels)
        if split == "train":
            _atomic_write(folder / "images" / "dataset.json", labels)
        lines = [json.dumps({"file": im["file"], "identity": r["identity"], "seed": r["seed"], "view": im["view"],
                             "kind": im["kind"], "yaw_deg": im["yaw_deg"], "pitch_deg": im["pitch_deg"],
                             "attributes": r["attributes"]}) for im, r in items]
        _atomic_write(folder / "attributes.jsonl", ("\n".join(lines) + "\n").encode())
    _atomic_write(root / "identities.jsonl", ("\n".join(json.dumps(x) for x in identities) + "\n").encode())
    _write_config(cfg, root, complete=True)
    shutil.rmtree(root / PROGRESS)


def _pack_zip(root: Path, out: Path) -> None:
    """Pack ``root`` into ``out`` (stored, sorted names, fixed timestamps: same tree -> same bytes)."""
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    files = sorted(p for p in root.rglob("*") if p.is_file())
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for p in files:
            info = zipfile.ZipInfo(p.relative_to(root).as_posix(), date_time=ZIP_DATE)
            info.external_attr = 0o644 << 16
            zf.writestr(info, p.read_bytes())
    os.replace(tmp, out)


def _check_existing_zip(cfg: DatasetConfig) -> None:
    try:
        with zipfile.ZipFile(cfg.out) as zf:
            saved = json.loads(zf.read("config.json"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as e:
        raise ValueError(f"{cfg.out} exists and is not a synthetic-heads dataset zip ({e})") from None
    if saved.get("content") != cfg.content_dict():
        raise ValueError(f"{cfg.out} was made with different options ({saved.get('content')}); pick another path")


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", compress_level=4)
    return buf.getvalue()


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
