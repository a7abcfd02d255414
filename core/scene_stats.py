"""Summary statistics and histograms of a Gaussian scene, as numpy for plotting (no torch in the outputs).

Series (each a :class:`SeriesStats`, computed over every Gaussian of every scene in a batch):
    ``scale_log10``  log10 of the activated size ``exp(log_scales)`` reduced over the 3 axes by max or
                     mean (scene units; -2 means 0.01)
    ``opacity``      activated opacity ``sigmoid(opacity_logits)`` in (0, 1)
    ``r, g, b``      base colour from the SH DC term, ``max(0, 0.5 + C0 * dc)`` (as the renderer shows it)
    ``x, y, z``      centres in world space (+y up, the face toward +z)

Non-finite values (NaN/Inf) are counted per series and left out of every statistic and histogram, so a
broken scene reports instead of crashing. A series without finite values has NaN statistics and an
all-zero histogram over [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from core.gaussians import GaussianSet

ScaleReduce = Literal["max", "mean"]


@dataclass(frozen=True, eq=False)
class Histogram:
    """Attributes:
        counts: ``[bins]`` float32 number of finite values per bin.
        edges: ``[bins + 1]`` float32 bin edges, increasing (``numpy.histogram`` rules: the last bin is closed).
    """

    counts: np.ndarray
    edges: np.ndarray


@dataclass(frozen=True, eq=False)
class SeriesStats:
    """Statistics of one per-Gaussian quantity over its finite values.

    Attributes:
        name: series key (see the module docstring), e.g. ``"opacity"``.
        min, max, mean, std: Python floats (population std, ``ddof=0``); NaN when no value is finite.
        finite: number of finite values.
        nonfinite: number of NaN/Inf values (left out of everything else).
        histogram: over ``[min, max]`` (widened by 0.5 either side when min == max).
    """

    name: str
    min: float
    max: float
    mean: float
    std: float
    finite: int
    nonfinite: int
    histogram: Histogram


@dataclass(frozen=True, eq=False)
class SceneStats:
    """What :func:`scene_stats` returns.

    Attributes:
        num_gaussians: Gaussians per scene (N).
        num_scenes: scenes in the input (1 for batch shape ``[]``).
        sh_degree: 0..3.
        scale_reduce: how ``scale_log10`` reduced the three axes, ``"max"`` or ``"mean"``.
        scale_log10, opacity: one series each.
        color: ``(r, g, b)`` series.
        position: ``(x, y, z)`` series.
        nonfinite_gaussians: Gaussians with any NaN/Inf in any stored field.
    """

    num_gaussians: int
    num_scenes: int
    sh_degree: int
    scale_reduce: ScaleReduce
    scale_log10: SeriesStats
    opacity: SeriesStats
    color: tuple[SeriesStats, SeriesStats, SeriesStats]
    position: tuple[SeriesStats, SeriesStats, SeriesStats]
    nonfinite_gaussians: int

    def series(self) -> dict[str, SeriesStats]:
        """Every series by name, in display order: scale_log10, opacity, r, g, b, x, y, z."""
        return {s.name: s for s in (self.scale_log10, self.opacity, *self.color, *self.position)}


def series_stats(name: str, values: np.ndarray, bins: int = 64) -> SeriesStats:
    """Statistics and histogram of the finite entries of ``values`` (any shape, flattened; float64 math)."""
    if not isinstance(bins, int) or isinstance(bins, bool) or bins < 1:
        raise ValueError(f"bins must be a positive int, got {bins!r}")
    v = np.asarray(values, dtype=np.float64).ravel()
    ok = np.isfinite(v)
    finite = v[ok]
    if finite.size == 0:
        nan = float("nan")
        hist = Histogram(np.zeros(bins, np.float32), np.linspace(0.0, 1.0, bins + 1, dtype=np.float32))
        return SeriesStats(name, nan, nan, nan, nan, 0, int(v.size), hist)
    lo, hi = float(finite.min()), float(finite.max())
    range_ = (lo - 0.5, hi + 0.5) if lo == hi else (lo, hi)
    counts, edges = np.histogram(finite, bins=bins, range=range_)
    hist = Histogram(counts.astype(np.float32), edges.astype(np.float32))
    return SeriesStats(name, lo, hi, float(finite.mean()), float(finite.std()), int(finite.size),
                       int(v.size - finite.size), hist)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def scene_stats(gs: GaussianSet, bins: int = 64, scale_reduce: ScaleReduce = "max") -> SceneStats:
    """Summarise ``gs`` (one scene or a batch, all Gaussians pooled) for an Inspect panel.

    Args:
        gs: any :class:`GaussianSet`, on any device (copied to the CPU; syncs with the GPU).
        bins: histogram bins per series (>= 1).
        scale_reduce: ``"max"`` (largest axis: the splat's footprint) or ``"mean"`` over the three axes.
    """
    if not isinstance(gs, GaussianSet):
        raise TypeError(f"scene_stats needs a core.gaussians.GaussianSet, got {type(gs).__name__}")
    if scale_reduce not in ("max", "mean"):
        raise ValueError(f"scale_reduce must be 'max' or 'mean', got {scale_reduce!r}")
    with torch.no_grad():
        scales = _np(gs.scales())  # [..., N, 3]; NaN stays NaN through max/mean
        size = scales.max(axis=-1) if scale_reduce == "max" else scales.mean(axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale_log10 = np.log10(size)  # size 0 (log_scale -inf) -> -inf, counted as non-finite
        opacity, rgb, means = _np(gs.opacities()), _np(gs.base_rgb()), _np(gs.means)
        bad = torch.zeros(gs.opacity_logits.shape, dtype=torch.bool, device=gs.device)
        for t in (gs.means, gs.quats, gs.log_scales, gs.sh.flatten(-2)):
            bad |= ~torch.isfinite(t).all(dim=-1)
        bad |= ~torch.isfinite(gs.opacity_logits)
    color = tuple(series_stats(c, rgb[..., i], bins) for i, c in enumerate("rgb"))
    position = tuple(series_stats(c, means[..., i], bins) for i, c in enumerate("xyz"))
    return SceneStats(
        num_gaussians=gs.num_gaussians,
        num_scenes=int(np.prod(gs.batch_shape, dtype=np.int64)),
        sh_degree=gs.sh_degree,
        scale_reduce=scale_reduce,
        scale_log10=series_stats("scale_log10", scale_log10, bins),
        opacity=series_stats("opacity", opacity, bins),
        color=color,  # type: ignore[arg-type]
        position=position,  # type: ignore[arg-type]
        nonfinite_gaussians=int(bad.sum()),
    )
