"""InterFaceGAN boundary fits, orthogonalisation and sliders taught from yes/no marks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.editing import (
    Direction, DirectionSet, Marks, fit_binary_boundary, fit_regression_direction, orthogonalize, teach_direction,
    w_statistics,
)

DIM = 16


def _samples(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, DIM, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 + 0.5


def _unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=DIM)
    return v / np.linalg.norm(v)


def _set(ws: torch.Tensor) -> DirectionSet:
    return DirectionSet("a" * 64, 2, w_statistics(ws))


def test_binary_boundary_recovers_a_known_normal():
    ws, n = _samples(3000), _unit(1)
    labels = (ws.numpy() - 0.5) @ n > 0.3
    b = fit_binary_boundary(ws, labels)
    assert float(b.normal @ n) > 0.97
    assert b.train_score > 0.95


def test_regression_direction_recovers_a_known_gradient():
    ws, n = _samples(2000), _unit(2)
    scores = ws.numpy() @ n * 0.2 + np.random.default_rng(0).normal(scale=0.05, size=2000)
    b = fit_regression_direction(ws, scores)
    assert float(b.normal @ n) > 0.98 and b.train_score > 0.9
    with pytest.raises(ValueError, match="all equal"):
        fit_regression_direction(ws, np.ones(2000))


def test_orthogonalize_decouples_correlated_directions():
    a, b = _unit(3), _unit(4)
    b_corr = 0.8 * a + 0.6 * b  # strongly correlated with a
    dirs = (Direction("x", "attribute", a, 1.0), Direction("y", "attribute", b_corr, 1.0),
            Direction("z", "attribute", _unit(5), 1.0))
    ortho = orthogonalize(dirs, _set(_samples(500)))
    # Moving along one new direction leaves every *other* original boundary's signed distance unchanged.
    U, N = np.stack([d.vector for d in ortho]), np.stack([d.vector for d in dirs])
    np.testing.assert_allclose(U @ N.T * (1 - np.eye(3)), np.zeros((3, 3)), atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(U, axis=1), 1.0)
    for old, new in zip(dirs, ortho):
        assert float(old.vector @ new.vector) > 0.3  # still points the same way
    with pytest.raises(ValueError, match="span of the others"):
        orthogonalize((Direction("p", "attribute", a, 1.0), Direction("q", "attribute", a, 1.0)))


def test_user_taught_slider_from_yes_no_marks():
    ws, n = _samples(40, seed=7), _unit(6)
    dirs = _set(_samples(2000, seed=8))
    marks = Marks("bushy_brows")
    with pytest.raises(ValueError, match="at least one 'yes' and one 'no'"):
        teach_direction(marks.add(ws[0], True), dirs)
    for w in ws[:24]:  # 24 marks, the user answers by the hidden attribute
        marks = marks.add(torch.stack([w, w]), bool((w.numpy() - 0.5) @ n > 0))  # [num_ws, w_dim] accepted
    assert sum(marks.counts) == 24 and marks.undo().counts[0] + marks.undo().counts[1] == 23
    d = teach_direction(marks, dirs)
    assert d.name == "bushy_brows" and d.kind == "user"
    assert float(d.vector @ n) > 0.6  # 24 marks in 16 dims; a random unit vector gives ~0.2
    assert d.scale == pytest.approx(dirs.stats.std_along(d.vector))
    # The slider is usable at once: moving it moves w toward "yes".
    dirs2 = dirs.with_directions([d])
    assert dirs2.names == ("bushy_brows",)


def test_teaching_in_the_principal_subspace_needs_fewer_marks():
    """With variation concentrated in a few axes (as in a GAN's W), 12 marks in 64 dims find the direction
    when the fit is restricted to the top principal axes."""
    g = np.random.default_rng(0)
    dim, k = 64, 6
    q, _ = np.linalg.qr(g.normal(size=(dim, dim)))
    stds = np.r_[np.full(k, 3.0), np.full(dim - k, 0.3)]
    ws = (g.normal(size=(4000, dim)) * stds) @ q.T
    dirs = DirectionSet("d" * 64, 1, w_statistics(torch.from_numpy(ws)))
    n = q[:, 0]  # the attribute lives on the main axis
    marks = Marks("big")
    for w in ws[:12]:
        marks = marks.add(w, bool(w @ n > 0))
    sub = teach_direction(marks, dirs, subspace=8)
    assert abs(float(sub.vector @ n)) > 0.8 and float(sub.vector @ n) > 0
    assert "top 8 principal axes" in sub.note
