"""Short real training runs per variant on synthetic heads, compared by image statistics: sliced Wasserstein
distance to the reals over a Laplacian pyramid (as in ProGAN) and the reprojection consistency
(training/metrics). The ``quality`` stage of bench/train_profile.py.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import torch

from bench.train_variants import DEVICE, RECIPES, VARIANTS, options_for
from core.runs import STATS_FILE, read_stats


def laplacian_pyramid(img: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """``img [N, 3, H, W]`` -> Laplacian levels (finest first) and the final low-pass, 5-tap binomial."""
    import torch.nn.functional as F

    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=img.device) / 16
    k2 = (k[:, None] * k[None]).expand(3, 1, 5, 5)
    out = []
    for _ in range(levels - 1):
        low = F.conv2d(F.pad(img, (2, 2, 2, 2), mode="reflect"), k2, groups=3)[:, :, ::2, ::2]
        up = F.interpolate(low, scale_factor=2, mode="bilinear", align_corners=False)
        out.append(img - up)
        img = low
    out.append(img)
    return out


def sliced_wasserstein(a: list[torch.Tensor], b: list[torch.Tensor], patches: int = 128, dirs: int = 512,
                       seed: int = 0) -> list[float]:
    """SWD x 1e3 per pyramid level between two image sets (lists of ``[N, 3, H, W]`` levels): ``patches``
    random 7x7 patches per image, each set normalised per channel, ``dirs`` random unit directions
    (Karras et al. 2018, section 5, with fewer images)."""
    g = torch.Generator(a[0].device).manual_seed(seed)
    result = []
    for la, lb in zip(a, b):
        descs = []
        for level in (la, lb):
            n, c, h, w = level.shape
            ys = torch.randint(0, h - 6, (n, patches), generator=g, device=level.device)
            xs = torch.randint(0, w - 6, (n, patches), generator=g, device=level.device)
            off = torch.arange(7, device=level.device)
            yy = (ys[..., None, None] + off[:, None])  # [n, p, 7, 1]
            xx = (xs[..., None, None] + off[None, :])  # [n, p, 1, 7]
            idx_n = torch.arange(n, device=level.device)[:, None, None, None]
            d = level.permute(0, 2, 3, 1)[idx_n, yy, xx]  # [n, p, 7, 7, 3]
            d = d.reshape(-1, 7 * 7, 3)
            d = (d - d.mean(dim=(0, 1))) / d.std(dim=(0, 1)).clamp_min(1e-8)
            descs.append(d.reshape(d.shape[0], -1))
        proj = torch.randn(descs[0].shape[1], dirs, generator=g, device=la.device)
        proj = proj / proj.norm(dim=0, keepdim=True)
        pa, pb = (torch.sort(dd @ proj, dim=0).values for dd in descs)
        result.append(float((pa - pb).abs().mean()) * 1e3)
    return result


def quality_run(recipe: str, name: str, data: Path, work: Path, out: Path, kimg: float, n_metric: int) -> dict | None:
    from core.camera import Cameras
    from core.model_files import load_generator
    from training.dataset import DatasetOptions, ImageLabelDataset
    from training.loop import image_grid, train
    from training.metrics.consistency import generator_consistency
    from core.runs import latest_snapshot
    from training.run_dir import save_grid

    opts = options_for(recipe, VARIANTS[name], data, work / f"q-{name}", kimg=kimg, tick_kimg=0.5, snap_kimg=1e6,
                       image_snap_kimg=1e6, blur_fade_kimg=kimg / 4)
    if opts is None:
        return None
    t0 = time.time()
    run = train(opts, progress=False)
    seconds = time.time() - t0
    shutil.copy(run / STATS_FILE, out / f"quality_{name}_stats.jsonl")
    G = load_generator(latest_snapshot(run), device=DEVICE).generator
    res = RECIPES[recipe].resolution or G.config.resolution
    save_grid(out / f"quality_{name}_grid.png", image_grid(G, res, torch.device(DEVICE), rows=6))
    ds = ImageLabelDataset(DatasetOptions(path=str(data), xflip=False, random_background=False))
    gen = torch.Generator().manual_seed(7)
    idx = torch.randperm(len(ds), generator=gen)[:n_metric]
    reals = torch.stack([ds[int(i)][0] for i in idx]).to(DEVICE).float() / 127.5 - 1
    labels = torch.stack([ds[int(i)][1] for i in torch.randperm(len(ds), generator=gen)[:n_metric]]).to(DEVICE)
    fakes = []
    with torch.no_grad():
        for i in range(0, n_metric, 64):
            z = torch.randn(len(labels[i:i + 64]), G.config.z_dim, generator=gen).to(DEVICE)
            cams = Cameras.from_label(labels[i:i + 64, None], validate=False)  # [B, 1] cameras
            img = G(z, cameras=cams, resolution=res).render.color[:, 0]
            fakes.append(img.permute(0, 3, 1, 2) * 2 - 1)
    fakes = torch.cat(fakes).clamp(-1, 1)
    levels = int(np.log2(res)) - 3  # down to 16 px
    swd = sliced_wasserstein(laplacian_pyramid(reals, levels), laplacian_pyramid(fakes, levels))
    cons = generator_consistency(G, num_scenes=64, resolution=res)
    ticks = read_stats(run)
    shutil.rmtree(run, ignore_errors=True)
    return {"variant": name, "kimg": kimg, "seconds": seconds, "swd_x1e3_by_level": swd, "swd_mean": float(np.mean(swd)),
            "consistency_psnr": cons.psnr, "final": {k: ticks[-1].get(k) for k in ("G_adv", "D_real", "D_fake",
                                                                                     "score_real", "score_fake")}}


def ensure_heads(path: Path, identities: int, views: int, workers: int, resolution: int) -> Path:
    from training.synthetic_heads.config import DatasetConfig
    from training.synthetic_heads.dataset import write_dataset

    t0 = time.time()
    summary = write_dataset(DatasetConfig(out=path, num_identities=identities, views_per_identity=views,
                                          resolution=resolution, seed=0, workers=workers))
    print(f"synthetic heads: {summary.num_images} images in {time.time() - t0:.0f} s")
    return path
