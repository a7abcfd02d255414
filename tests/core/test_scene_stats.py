"""core.scene_stats: numbers against numpy computed independently, empty scenes, NaN handling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.gaussians import SH_C0, GaussianSet
from core.scene_stats import scene_stats, series_stats


def known_scene(n: int = 100) -> tuple[GaussianSet, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    raw = {
        "means": rng.uniform(-0.5, 0.5, (n, 3)),
        "quats": rng.normal(size=(n, 4)),
        "log_scales": rng.uniform(-6, -2, (n, 3)),
        "opacity_logits": rng.normal(size=n),
        "sh": rng.normal(size=(n, 4, 3)),
    }
    gs = GaussianSet(*(torch.from_numpy(raw[k]).float() for k in ("means", "quats", "log_scales", "opacity_logits", "sh")))
    return gs, {k: v.astype(np.float32).astype(np.float64) for k, v in raw.items()}


def test_stats_match_numpy():
    gs, raw = known_scene()
    s = scene_stats(gs, bins=16)
    assert (s.num_gaussians, s.num_scenes, s.sh_degree, s.nonfinite_gaussians) == (100, 1, 1, 0)
    expected = {
        "scale_log10": np.log10(np.exp(raw["log_scales"]).max(axis=1)),
        "opacity": 1.0 / (1.0 + np.exp(-raw["opacity_logits"])),
        **{c: np.maximum(0.0, 0.5 + SH_C0 * raw["sh"][:, 0, i]) for i, c in enumerate("rgb")},
        **{c: raw["means"][:, i] for i, c in enumerate("xyz")},
    }
    series = s.series()
    assert list(series) == ["scale_log10", "opacity", "r", "g", "b", "x", "y", "z"]
    for name, v in expected.items():
        got = series[name]
        np.testing.assert_allclose([got.min, got.max, got.mean, got.std], [v.min(), v.max(), v.mean(), v.std()],
                                   rtol=1e-5, atol=1e-6, err_msg=name)
        counts, edges = np.histogram(v, bins=16, range=(got.min, got.max))
        assert got.histogram.counts.dtype == np.float32 and got.histogram.edges.dtype == np.float32
        assert got.histogram.counts.sum() == 100 and (got.finite, got.nonfinite) == (100, 0)
        np.testing.assert_allclose(got.histogram.edges, edges, rtol=1e-5, atol=1e-6)
        assert np.abs(got.histogram.counts - counts).sum() <= 2, name  # float32 vs float64 values at bin edges
    mean = scene_stats(gs, scale_reduce="mean").scale_log10
    np.testing.assert_allclose(mean.mean, np.log10(np.exp(raw["log_scales"]).mean(axis=1)).mean(), rtol=1e-5)


def test_empty_scene_and_constant_series():
    s = scene_stats(GaussianSet.empty(sh_degree=2), bins=8)
    assert s.num_gaussians == 0 and s.sh_degree == 2 and s.nonfinite_gaussians == 0
    for st in s.series().values():
        assert st.finite == 0 and np.isnan(st.mean) and st.histogram.counts.shape == (8,)
        assert st.histogram.edges.shape == (9,) and st.histogram.counts.sum() == 0
    const = series_stats("c", np.full(5, 2.0), bins=4)
    assert (const.min, const.max, const.std) == (2.0, 2.0, 0.0) and const.histogram.counts.sum() == 5
    with pytest.raises(ValueError, match="bins"):
        series_stats("c", np.zeros(3), bins=0)


def test_nonfinite_values_are_counted_not_fatal():
    gs, _ = known_scene(10)
    means = gs.means.clone()
    means[2, 0] = float("nan")
    means[5, 1] = float("inf")
    logits = gs.opacity_logits.clone()
    logits[2] = float("nan")
    bad = GaussianSet(means, gs.quats, gs.log_scales, logits, gs.sh)
    s = scene_stats(bad, bins=4)
    assert s.nonfinite_gaussians == 2
    assert (s.position[0].nonfinite, s.position[1].nonfinite, s.position[2].nonfinite) == (1, 1, 0)
    assert s.opacity.finite == 9 and np.isfinite(s.opacity.mean) and s.position[0].histogram.counts.sum() == 9
    np.testing.assert_allclose(s.position[0].mean, np.delete(gs.means[:, 0].double().numpy(), 2).mean(), rtol=1e-6)


def test_batches_pool_every_scene():
    a, _ = known_scene(10)
    s = scene_stats(GaussianSet.stack([a, a]), bins=4)
    assert s.num_scenes == 2 and s.num_gaussians == 10 and s.opacity.finite == 20
    assert s.opacity.mean == pytest.approx(scene_stats(a).opacity.mean)
