"""GANSpace-style principal directions of W, and the statistics of generated w.

Härkönen et al., "GANSpace: Discovering Interpretable GAN Controls", NeurIPS 2020: sample many
``w = mapping(z)``, take the principal components of the samples; moving along component k by ``s`` standard
deviations changes the image along that mode of variation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.editing.directions import Direction, DirectionSet, WStatistics


def sample_ws(G: torch.nn.Module, num_samples: int, seed: int = 0, psi: float = 1.0, batch: int = 1024
              ) -> torch.Tensor:
    """``[num_samples, w_dim]`` float64 CPU: w of z ~ N(0, I) seeded by ``seed`` (the first ws slot; the
    mapping broadcasts one w to every slot). Only the mapping runs: fast even for large models."""
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    gen = torch.Generator().manual_seed(int(seed))
    device = next(G.parameters()).device
    out = []
    with torch.no_grad():
        for start in range(0, num_samples, batch):
            z = torch.randn(min(batch, num_samples - start), G.config.z_dim, generator=gen)
            out.append(G.map(z.to(device), psi)[:, 0].double().cpu())
    return torch.cat(out)


def w_statistics(ws: torch.Tensor) -> WStatistics:
    """Mean and covariance of ``ws [N, w_dim]``."""
    x = torch.as_tensor(ws, dtype=torch.float64)
    if x.dim() != 2 or x.shape[0] < 2:
        raise ValueError(f"ws must be [N >= 2, w_dim], got {list(x.shape)}")
    mean = x.mean(0)
    xc = x - mean
    cov = xc.T @ xc / (x.shape[0] - 1)
    return WStatistics(mean.numpy(), cov.numpy(), int(x.shape[0]))


@dataclass(frozen=True, eq=False)
class PcaFit:
    """Principal components of a set of w.

    Attributes:
        mean: ``[w_dim]``.
        components: ``[K, w_dim]`` orthonormal rows, by decreasing variance; sign chosen so that the entry of
            largest magnitude is positive (deterministic).
        std: ``[K]`` standard deviation of the samples along each component (W units).
        explained_variance_ratio: ``[K]`` share of the total variance.
    """

    mean: np.ndarray
    components: np.ndarray
    std: np.ndarray
    explained_variance_ratio: np.ndarray


def fit_pca(ws: torch.Tensor, num_components: int) -> PcaFit:
    """PCA of ``ws [N, w_dim]`` (SVD of the centred samples in float64)."""
    x = torch.as_tensor(ws, dtype=torch.float64)
    if x.dim() != 2 or x.shape[0] < 2:
        raise ValueError(f"ws must be [N >= 2, w_dim], got {list(x.shape)}")
    k = int(num_components)
    if not 1 <= k <= min(x.shape):
        raise ValueError(f"num_components must be in 1..{min(x.shape)}, got {num_components}")
    mean = x.mean(0)
    _, s, vh = torch.linalg.svd(x - mean, full_matrices=False)
    var = s**2 / (x.shape[0] - 1)
    comps = vh[:k]
    idx = comps.abs().argmax(dim=1)
    signs = torch.sign(comps[torch.arange(k), idx])
    comps = comps * signs[:, None]
    return PcaFit(mean.numpy(), comps.numpy(), var[:k].sqrt().numpy(), (var[:k] / var.sum()).numpy())


def pca_directions(fit: PcaFit, prefix: str = "PCA") -> tuple[Direction, ...]:
    """One ``"pca"`` direction per component, named ``PCA0``, ``PCA1``, ..., slider unit = its std."""
    return tuple(
        Direction(f"{prefix}{i}", "pca", fit.components[i], float(max(fit.std[i], 1e-12)),
                  note=f"{100 * fit.explained_variance_ratio[i]:.2f}% of the variance of w")
        for i in range(fit.components.shape[0])
    )


def pca_direction_set(G: torch.nn.Module, model_sha256: str, num_samples: int = 10_000,
                      num_components: int = 20, seed: int = 0) -> DirectionSet:
    """A new :class:`DirectionSet` for ``G``: statistics of ``num_samples`` w and their first
    ``num_components`` principal components (``num_components=0``: statistics only, no sliders)."""
    ws = sample_ws(G, num_samples, seed=seed)
    stats = w_statistics(ws)
    dirs = pca_directions(fit_pca(ws, num_components)) if num_components > 0 else ()
    return DirectionSet(model_sha256, G.config.num_ws, stats, dirs)
