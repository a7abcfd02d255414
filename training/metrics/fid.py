"""FID and FID3D: feature statistics, the Frechet distance, real/generated statistics with a cache.

Protocol (CGS-GAN / StyleGAN3, see the fact sheet, section 5):

- features: the 2048-d Inception pool features of uint8 images at full resolution (:mod:`.features`);
- statistics: mean and covariance in float64; the covariance is the population one (divided by n), as
  StyleGAN3's ``FeatureStats.get_mean_cov`` computes it;
- real images: every dataset entry (``max_images=None``), no x-flip, white background (the dataset's job);
- generated images: z ~ N(0, I), camera labels drawn at random from the dataset, white background, no
  truncation, pixels ``round(255 * rgb)`` (the same as StyleGAN3's ``x * 127.5 + 128`` for x in [-1, 1]);
  see :mod:`.sampling`.
- **FID3D** differs from FID only in the generator's *mapping* label (fixed frontal) versus the *render*
  label (fresh random). CGS-GAN's mapping ignores its label, and so does ours, so FID3D is statistically the
  same number as FID for this model (the CGS-GAN README repeats its FID row under FID3D). :func:`fid3d` is
  here so the metric exists under its own name with the intended sampling.

The Frechet distance uses a symmetric eigen-decomposition: ``tr sqrt(S1 S2) = sum sqrt(eig(A S2 A))`` with
``A = S1^(1/2)``. ``A S2 A`` is symmetric positive semi-definite with the eigenvalues of ``S1 S2``, so the
result is real without the imaginary-part clean-up ``scipy.linalg.sqrtm`` needs, and tiny negative
eigenvalues from rounding are clamped to 0. It matches ``sqrtm`` wherever ``sqrtm`` is accurate.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import scipy.linalg
import torch

from training.metrics.features import FeatureExtractor, check_images

CACHE_VERSION = 1
GenerateFn = Callable[[int], torch.Tensor]  # n -> uint8 images [n, 3, H, W]


# ---------------------------------------------------------------------------------------------- statistics


@dataclass
class FeatureStats:
    """Running mean and covariance of feature vectors, float64, updated batch by batch.

    Batches are merged with the pairwise (Chan et al.) update of mean and centred second moment, which is
    exact and does not lose precision the way ``sum(x x^T) / n - mu mu^T`` can.

    Attributes:
        dim: feature size D.
        count: vectors seen.
        mean: ``[D]``.
        m2: ``[D, D]`` sum of outer products of deviations from the mean.
    """

    dim: int
    count: int = 0
    mean: np.ndarray = field(default=None)  # type: ignore[assignment]
    m2: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.mean is None:
            self.mean = np.zeros(self.dim, np.float64)
        if self.m2 is None:
            self.m2 = np.zeros((self.dim, self.dim), np.float64)

    def update(self, features: torch.Tensor | np.ndarray) -> FeatureStats:
        """Add ``features [B, D]``; returns self."""
        if isinstance(features, torch.Tensor):
            x = features.detach().cpu().double().numpy()
        else:
            x = np.asarray(features, np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"features must be [B, {self.dim}], got {list(x.shape)}")
        if not np.isfinite(x).all():
            raise ValueError("features contain NaN or Inf")
        n = x.shape[0]
        if n == 0:
            return self
        mean_b = x.mean(0)
        d = x - mean_b
        self._merge(n, mean_b, d.T @ d)
        return self

    def merge(self, other: FeatureStats) -> FeatureStats:
        """Add the vectors summarised by ``other`` (e.g. from another process); returns self."""
        if other.dim != self.dim:
            raise ValueError(f"cannot merge stats of dim {other.dim} into dim {self.dim}")
        if other.count:
            self._merge(other.count, other.mean, other.m2)
        return self

    def _merge(self, n_b: int, mean_b: np.ndarray, m2_b: np.ndarray) -> None:
        n_a, n = self.count, self.count + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + np.outer(delta, delta) * (n_a * n_b / n)
        self.count = n

    @property
    def cov(self) -> np.ndarray:
        """``[D, D]`` population covariance (divided by ``count``, as StyleGAN3)."""
        if self.count == 0:
            raise ValueError("no features were added")
        return self.m2 / self.count

    @classmethod
    def of(cls, features: torch.Tensor | np.ndarray) -> FeatureStats:
        """Statistics of one array ``[N, D]``."""
        return cls(int(features.shape[1])).update(features)

    def save(self, path: str | os.PathLike, meta: dict | None = None) -> None:
        """Write an ``.npz`` (mean, cov, count, m2, meta JSON), atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        with open(tmp, "wb") as f:
            np.savez(f, mu=self.mean, sigma=self.cov, m2=self.m2, count=np.int64(self.count),
                     meta=np.array(json.dumps(meta or {}, sort_keys=True)))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> FeatureStats:
        from core.regular_file import require_regular_file  # a FIFO or device is refused (issue 19)

        require_regular_file(path, "a feature statistics .npz file")
        with np.load(path, allow_pickle=False) as z:
            m2, count = z["m2"], int(z["count"])
            return cls(m2.shape[0], count, z["mu"].astype(np.float64), m2.astype(np.float64))


# ---------------------------------------------------------------------------------------------- distance


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Squared Frechet distance between N(mu1, sigma1) and N(mu2, sigma2):
    ``|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr sqrt(S1 S2)`` (see the module docstring for the method)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"shapes do not fit: mu1 {mu1.shape}, sigma1 {s1.shape}, mu2 {mu2.shape}, sigma2 {s2.shape}")
    s1 = 0.5 * (s1 + s1.T)
    s2 = 0.5 * (s2 + s2.T)
    w, v = scipy.linalg.eigh(s1)
    root1 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    inner = root1 @ s2 @ root1
    ev = scipy.linalg.eigvalsh(0.5 * (inner + inner.T))
    tr_sqrt = np.sqrt(np.clip(ev, 0.0, None)).sum()
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_sqrt)
    return max(value, 0.0)


def fid_from_stats(real: FeatureStats, fake: FeatureStats) -> float:
    """FID between two sets of statistics (same extractor)."""
    if real.dim != fake.dim:
        raise ValueError(f"feature sizes differ: real {real.dim}, generated {fake.dim}")
    return frechet_distance(real.mean, real.cov, fake.mean, fake.cov)


# ---------------------------------------------------------------------------------------------- real / generated


def real_stats(dataset: Any, extractor: FeatureExtractor, max_images: int | None = None, batch: int = 64,
               cache_dir: str | os.PathLike | None = None, cache_tag: Any = None, subset_seed: int = 0,
               workers: int = 0, progress: bool = False) -> FeatureStats:
    """Feature statistics of a dataset's images, cached as ``.npz`` in ``cache_dir`` when given.

    Args:
        dataset: ``len(dataset)`` and ``dataset[i]`` -> an image or a tuple whose first item is the image;
            images uint8 ``[3, H, W]`` (torch or numpy; ``[H, W, 3]`` is accepted too).
        extractor: the feature network.
        max_images: None = every entry (the protocol for ``*_full`` metrics); else a fixed random subset of
            that many entries (seeded by ``subset_seed``; StyleGAN3 takes the first ones, which for a dataset
            stored identity by identity would cover few identities).
        batch: images per extractor call.
        cache_dir: folder of cached statistics; the key is the MD5 of the dataset's identity (``cache_tag``,
            else its ``path`` with size and modification time and its ``options``), ``max_images``,
            ``subset_seed`` and ``extractor.name``.
        cache_tag: anything JSON-serialisable that identifies the dataset and its options.
        workers: DataLoader worker processes that decode images (0: in this process).
    """
    n_total = len(dataset)
    if n_total == 0:
        raise ValueError("the dataset is empty")
    indices = np.arange(n_total)
    if max_images is not None and max_images < n_total:
        indices = np.sort(np.random.default_rng(subset_seed).permutation(n_total)[:max_images])
    cache_file = None
    if cache_dir is not None:
        tag = cache_tag if cache_tag is not None else dataset_cache_tag(dataset)
        key = {"version": CACHE_VERSION, "dataset": tag, "max_images": max_images, "subset_seed": subset_seed,
               "num_images": int(len(indices)), "extractor": extractor.name}
        digest = hashlib.md5(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
        cache_file = Path(cache_dir).expanduser() / f"real-stats-{digest}.npz"
        if cache_file.is_file():
            return FeatureStats.load(cache_file)
    loader = torch.utils.data.DataLoader(_Subset(dataset, indices), batch_size=batch, num_workers=workers,
                                         collate_fn=_stack_images)
    if progress:
        from tqdm import tqdm
        loader = tqdm(loader, desc="real features", unit="batch")
    stats: FeatureStats | None = None
    for images in loader:
        stats = _add(stats, extractor, images)
    assert stats is not None
    if cache_file is not None:
        stats.save(cache_file, meta=key)
    return stats


def fake_stats(generate_fn: GenerateFn, extractor: FeatureExtractor, num: int, batch: int = 16,
               progress: bool = False) -> FeatureStats:
    """Feature statistics of ``num`` generated images; ``generate_fn(n)`` returns uint8 ``[n, 3, H, W]``."""
    if num <= 0:
        raise ValueError(f"num must be positive, got {num}")
    stats: FeatureStats | None = None
    done = 0
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=num, desc="generated features", unit="img")
    while done < num:
        n = min(batch, num - done)
        images = check_images(generate_fn(n), "generate_fn(n)")
        if images.shape[0] != n:
            raise ValueError(f"generate_fn({n}) returned {images.shape[0]} images")
        stats = _add(stats, extractor, images)
        done += n
        if bar is not None:
            bar.update(n)
    if bar is not None:
        bar.close()
    assert stats is not None
    return stats


def fid(dataset: Any, generate_fn: GenerateFn, extractor: FeatureExtractor, num_gen: int = 50000,
        max_real: int | None = None, batch: int = 16, cache_dir: str | os.PathLike | None = None,
        cache_tag: Any = None, workers: int = 0, progress: bool = False) -> float:
    """FID of ``generate_fn``'s images against ``dataset`` (``fid50k_full``: ``num_gen=50000, max_real=None``).

    ``generate_fn(n)`` must sample as the protocol says (see :func:`training.metrics.sampling.generator_sampler`).
    """
    real = real_stats(dataset, extractor, max_real, max(batch, 16), cache_dir, cache_tag, workers=workers,
                      progress=progress)
    return fid_from_stats(real, fake_stats(generate_fn, extractor, num_gen, batch, progress))


def fid3d(dataset: Any, render_views: GenerateFn, extractor: FeatureExtractor, num_gen: int = 50000,
          max_real: int | None = None, batch: int = 16, cache_dir: str | os.PathLike | None = None,
          cache_tag: Any = None, workers: int = 0, progress: bool = False) -> float:
    """FID3D: as :func:`fid`, with ``render_views(n)`` generating every head from the fixed frontal mapping
    label and rendering it from a fresh random dataset label (``generator_sampler(..., protocol="fid3d")``).

    For CGS-GAN and our generator the mapping ignores its label, so this equals FID statistically.
    """
    return fid(dataset, render_views, extractor, num_gen, max_real, batch, cache_dir, cache_tag, workers, progress)


# ---------------------------------------------------------------------------------------------- helpers


def dataset_cache_tag(dataset: Any) -> dict:
    """A JSON-able identity of a dataset for the statistics cache: its ``path`` (``dataset.path``, ``.root`` or
    ``.options.path``, with size and modification time of the path and of ``dataset.json`` inside a folder) and
    its ``options`` (a dataclass or dict, e.g. ``training.dataset.DatasetOptions``).
    Raises ``ValueError`` if the dataset has neither; pass ``cache_tag`` then."""
    options = getattr(dataset, "options", None)
    path = getattr(dataset, "path", None) or getattr(dataset, "root", None) or getattr(options, "path", None)
    if path is None and options is None:
        raise ValueError(f"cannot key the statistics cache for a {type(dataset).__name__} (no .path or .options); "
                         "pass cache_tag=")
    if dataclasses.is_dataclass(options) and not isinstance(options, type):
        options = dataclasses.asdict(options)
    tag: dict[str, Any] = {"type": type(dataset).__name__, "options": options, "len": len(dataset)}
    if path is not None:
        p = Path(path)
        tag["path"] = str(p.resolve())
        for q in (p, p / "dataset.json"):
            if q.exists():
                st = q.stat()
                tag[f"stat:{q.name}"] = [st.st_size, st.st_mtime_ns]
    return tag


class _Subset(torch.utils.data.Dataset):
    def __init__(self, dataset: Any, indices: np.ndarray):
        self.dataset, self.indices = dataset, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> torch.Tensor:
        return _image_chw(self.dataset[int(self.indices[i])])


def _stack_images(images: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack(images)


def _image_chw(item: Any) -> torch.Tensor:
    image = item[0] if isinstance(item, (tuple, list)) else item
    image = torch.as_tensor(np.asarray(image)) if not isinstance(image, torch.Tensor) else image
    if image.dim() == 3 and image.shape[0] not in (1, 3) and image.shape[-1] in (1, 3):
        image = image.permute(2, 0, 1)
    if image.dim() != 3 or image.dtype != torch.uint8:
        raise ValueError(f"dataset images must be uint8 [3, H, W], got {image.dtype} {list(image.shape)}")
    return image.expand(3, -1, -1) if image.shape[0] == 1 else image


def _add(stats: FeatureStats | None, extractor: FeatureExtractor, images: torch.Tensor) -> FeatureStats:
    features = extractor(images)
    if features.dim() != 2 or features.shape[0] != images.shape[0]:
        raise ValueError(f"extractor {extractor.name!r} returned {list(features.shape)} for {images.shape[0]} images")
    if stats is None:
        stats = FeatureStats(int(features.shape[1]))
    return stats.update(features)
