"""GANSpace PCA recovers the axes of a known linear mapping; slider edits are exactly reversible."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from core.editing import (
    Direction, DirectionSet, LatentEdit, apply_sliders, fit_pca, interpolate, pca_direction_set, pca_directions,
    sample_ws, w_statistics,
)


class LinearToy(nn.Module):
    """``w = mean + (z * sigmas) @ axes`` with known orthonormal ``axes [K, D]``; duck-types ``G.map``."""

    def __init__(self, axes: torch.Tensor, sigmas: torch.Tensor, mean: torch.Tensor, num_ws: int = 2) -> None:
        super().__init__()
        self.axes, self.sigmas, self.mean = axes, sigmas, nn.Parameter(mean)
        self.config = type("Cfg", (), {"z_dim": axes.shape[0], "num_ws": num_ws})()

    def map(self, z: torch.Tensor, psi: float = 1.0, cutoff: int | None = None) -> torch.Tensor:
        w = self.mean + (z * self.sigmas) @ self.axes
        return w[:, None].repeat(1, self.config.num_ws, 1)


def _toy(seed: int = 0, dim: int = 12) -> LinearToy:
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g))
    return LinearToy(q.T[:4].contiguous(), torch.tensor([4.0, 2.5, 1.5, 0.7]), torch.randn(dim, generator=g))


def test_pca_recovers_the_axes_of_a_linear_toy_model():
    toy = _toy()
    fit = fit_pca(sample_ws(toy, 20_000, seed=1), 4)
    cos = np.abs(fit.components @ toy.axes.numpy().T)  # [4, 4]
    assert np.allclose(np.diag(cos), 1.0, atol=5e-3), cos
    np.testing.assert_allclose(fit.std, toy.sigmas.numpy(), rtol=0.03)
    np.testing.assert_allclose(fit.mean, toy.mean.detach().numpy(), atol=0.1)
    assert fit.explained_variance_ratio[:4].sum() == pytest.approx(1.0, abs=1e-6)  # rank-4 data
    # Sign convention: the largest entry of each component is positive.
    assert all(c[np.abs(c).argmax()] > 0 for c in fit.components)


def test_pca_sliders_move_by_standard_deviations():
    toy = _toy()
    dirs = pca_direction_set(toy, "0" * 64, num_samples=5000, num_components=3)
    assert dirs.names == ("PCA0", "PCA1", "PCA2")
    base = torch.zeros(2, 12)
    moved = apply_sliders(base, dirs, {"PCA0": 1.0})
    # One slider unit = one std along the component, added to every slot.
    assert float(moved[0].norm()) == pytest.approx(4.0, rel=0.05)
    assert torch.equal(moved[0], moved[1])
    # The statistics give the same unit for a new direction along the same axis.
    assert dirs.stats.std_along(dirs.get("PCA1").vector) == pytest.approx(dirs.get("PCA1").scale, rel=1e-6)


def _dirs(dim: int = 8, num_ws: int = 3) -> DirectionSet:
    g = torch.Generator().manual_seed(3)
    ws = torch.randn(200, dim, generator=g, dtype=torch.float64) * torch.linspace(0.5, 3, dim, dtype=torch.float64)
    stats = w_statistics(ws)
    dirs = pca_directions(fit_pca(ws, 3))
    extra = Direction("late_only", "user", np.eye(dim)[0], 0.7, slots=(1, 3))
    return DirectionSet("f" * 64, num_ws, stats, dirs + (extra,))


def test_edits_are_reversible_exactly():
    dirs = _dirs()
    base = torch.randn(3, 8, generator=torch.Generator().manual_seed(0))
    edit = LatentEdit(base)
    moved = edit.with_value("PCA0", 2.3).with_value("PCA2", -1.1).with_value("late_only", 0.4)
    assert not torch.equal(moved.ws(dirs), base)
    back = moved.with_value("PCA0", 0.0).reset("PCA2").with_value("late_only", 0)
    assert torch.equal(back.ws(dirs), base)  # bit for bit: offsets are never accumulated into the base
    assert torch.equal(moved.reset_all().ws(dirs), base)
    assert back.values == ()
    # Many moves of one slider: the result depends only on the final values.
    e = edit
    for v in np.linspace(-3, 3, 41):
        e = e.with_value("PCA1", float(v))
    assert torch.equal(e.ws(dirs), edit.with_value("PCA1", 3.0).ws(dirs))
    assert torch.equal(e.with_value("PCA1", 0).ws(dirs), base)


def test_slots_and_order_independence():
    dirs = _dirs()
    base = torch.zeros(3, 8)
    ws = apply_sliders(base, dirs, {"late_only": 1.0})
    assert torch.equal(ws[0], base[0]) and not torch.equal(ws[1], base[1])
    a = apply_sliders(base, dirs, {"PCA0": 1.0, "PCA1": -2.0})
    b = apply_sliders(base, dirs, {"PCA1": -2.0, "PCA0": 1.0})
    torch.testing.assert_close(a, b)
    with pytest.raises(KeyError, match="no direction named"):
        apply_sliders(base, dirs, {"nope": 1.0})
    with pytest.raises(ValueError, match="base must be"):
        apply_sliders(torch.zeros(2, 8), dirs, {})


def test_interpolate_endpoints_and_midpoint():
    dirs = _dirs()
    g = torch.Generator().manual_seed(1)
    a = LatentEdit(torch.randn(3, 8, generator=g)).with_value("PCA0", 1.0)
    b = LatentEdit(torch.randn(3, 8, generator=g)).with_value("PCA1", -2.0)
    assert interpolate(a, b, 0.0) is a and interpolate(a, b, 1.0) is b
    mid = interpolate(a, b, 0.5)
    torch.testing.assert_close(mid.ws(dirs), 0.5 * (a.ws(dirs) + b.ws(dirs)))
    assert mid.slider_values == {"PCA0": 0.5, "PCA1": -1.0}
