"""core.gaussians.GaussianSet and core.sh: validation, activations, batching, SH basis."""

from __future__ import annotations

import math

import pytest
import torch

from core.gaussians import SH_C0, GaussianSet, rgb_to_sh_dc, sh_coeff_count, sh_dc_to_rgb
from core.sh import sh_basis, sh_to_rgb


def make(n: int = 5, k: int = 1, batch: tuple[int, ...] = (), dtype=torch.float32) -> GaussianSet:
    g = torch.Generator().manual_seed(n * 31 + k)
    r = lambda *s: torch.randn(*batch, *s, generator=g, dtype=dtype)  # noqa: E731
    return GaussianSet(r(n, 3), r(n, 4), r(n, 3), r(n), r(n, k, 3))


def test_shapes_and_properties():
    gs = make(7, 9)
    assert gs.num_gaussians == 7 == len(gs) and gs.sh_degree == 2 and gs.batch_shape == ()
    batch = make(7, 16, batch=(3,))
    assert batch.batch_shape == (3,) and batch.sh_degree == 3 and batch[1].batch_shape == ()
    assert len(batch.unbind()) == 3 and batch.unbind()[2].equal(batch[2])
    torch.testing.assert_close(gs.rotations().norm(dim=-1), torch.ones(7))
    assert (gs.opacities() > 0).all() and (gs.opacities() < 1).all() and (gs.scales() > 0).all()


def test_validation_messages_name_the_problem():
    gs = make()
    with pytest.raises(ValueError, match=r"means must have shape \[\.\.\., \* x 3\], got \[5, 2\]"):
        GaussianSet(gs.means[:, :2], gs.quats, gs.log_scales, gs.opacity_logits, gs.sh)
    with pytest.raises(ValueError, match=r"quats has shape \[4, 4\] but means \[5, 3\] implies \[5, 4\]"):
        GaussianSet(gs.means, gs.quats[:4], gs.log_scales, gs.opacity_logits, gs.sh)
    with pytest.raises(ValueError, match="SH coefficient count must be 1, 4, 9 or 16"):
        GaussianSet(gs.means, gs.quats, gs.log_scales, gs.opacity_logits, torch.zeros(5, 5, 3))
    with pytest.raises(TypeError, match="log_scales has dtype torch.float64"):
        GaussianSet(gs.means, gs.quats, gs.log_scales.double(), gs.opacity_logits, gs.sh)
    with pytest.raises(TypeError, match="floating-point"):
        GaussianSet(gs.means, gs.quats, gs.log_scales, torch.zeros(5, dtype=torch.long), gs.sh)
    with pytest.raises(TypeError, match="torch.Tensor"):
        GaussianSet(gs.means.numpy(), gs.quats, gs.log_scales, gs.opacity_logits, gs.sh)
    bad = gs.opacity_logits.clone()
    bad[3] = float("inf")
    with pytest.raises(ValueError, match=r"opacity_logits has 1 non-finite value\(s\) \(NaN/Inf\); first at index \(3,\)"):
        GaussianSet(gs.means, gs.quats, gs.log_scales, bad, gs.sh).validate()
    assert gs.validate() is gs


def test_from_activated_inverts_the_activations():
    rgb = torch.tensor([[0.1, 0.5, 0.9]], dtype=torch.float64)
    gs = GaussianSet.from_activated(torch.zeros(1, 3, dtype=torch.float64), rgb, torch.tensor([0.3], dtype=torch.float64),
                                    torch.tensor([[0.01, 0.02, 0.03]], dtype=torch.float64), sh_degree=2)
    torch.testing.assert_close(gs.base_rgb(), rgb)
    torch.testing.assert_close(gs.opacities(), torch.tensor([0.3], dtype=torch.float64))
    torch.testing.assert_close(gs.scales(), torch.tensor([[0.01, 0.02, 0.03]], dtype=torch.float64))
    assert gs.quats.tolist() == [[1.0, 0.0, 0.0, 0.0]] and gs.sh.shape == (1, 9, 3) and (gs.sh[:, 1:] == 0).all()
    torch.testing.assert_close(sh_dc_to_rgb(rgb_to_sh_dc(rgb)), rgb)


def test_cat_stack_select_and_sh_degree():
    a, b = make(3, 1), make(4, 9)
    c = GaussianSet.cat([a, b])
    assert c.num_gaussians == 7 and c.sh_degree == 2
    assert torch.equal(c.sh[:3, 0], a.sh[:, 0]) and (c.sh[:3, 1:] == 0).all()
    assert c.select(torch.arange(3, 7)).equal(b)
    mask = torch.tensor([True, False, True, False, False, False, True])
    assert c.select(mask).num_gaussians == 3
    with pytest.raises(ValueError, match="equal Gaussian counts"):
        GaussianSet.stack([a, b])
    s = GaussianSet.stack([b, b])
    assert s.batch_shape == (2,) and s.select(torch.tensor([0, 2])).means.shape == (2, 2, 3)
    assert b.with_sh_degree(0).sh.shape == (4, 1, 3) and b.with_sh_degree(3).with_sh_degree(2).equal(b)
    with pytest.raises(IndexError, match="no batch dimension"):
        a[0]


def test_equal_compares_bits():
    a = make()
    b = a.clone()
    assert a.equal(b)
    b.means[0, 0] = -0.0 if a.means[0, 0] == 0 else a.means[0, 0] + 1e-7
    assert not a.equal(b)
    assert not a.equal(a.to(torch.float64))
    nan = GaussianSet(a.means.clone().fill_(float("nan")), a.quats, a.log_scales, a.opacity_logits, a.sh)
    assert nan.equal(nan.clone())


def test_sh_basis_is_orthonormal_on_the_sphere():
    # Monte Carlo over uniform directions: E[Y_i Y_j] * 4 pi = delta_ij
    d = torch.nn.functional.normalize(torch.randn(400_000, 3, generator=torch.Generator().manual_seed(0),
                                                  dtype=torch.float64), dim=-1)
    Y = sh_basis(d, 3)
    gram = Y.T @ Y / d.shape[0] * 4 * math.pi
    torch.testing.assert_close(gram, torch.eye(16, dtype=torch.float64), atol=0.02, rtol=0)
    assert Y[:, 0].unique().tolist() == [SH_C0] and sh_coeff_count(3) == 16


def test_sh_colour_depends_on_direction_only_above_degree_0():
    sh = torch.zeros(1, 4, 3)
    sh[0, 0] = rgb_to_sh_dc(torch.tensor([0.5, 0.5, 0.5]))
    sh[0, 2] = torch.tensor([1.0, 0.0, 0.0])  # the z-linear band (C1 * z)
    toward_plus_z = sh_to_rgb(sh, torch.tensor([[0.0, 0.0, 2.0]]))  # unnormalised directions are fine
    toward_minus_z = sh_to_rgb(sh, torch.tensor([[0.0, 0.0, -1.0]]))
    assert toward_plus_z[0, 0] == pytest.approx(0.5 + 0.4886025, abs=1e-6)
    assert toward_minus_z[0, 0] == pytest.approx(0.5 - 0.4886025, abs=1e-6)
    assert sh_to_rgb(sh[:, :1], None)[0].tolist() == pytest.approx([0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="view directions"):
        sh_to_rgb(sh, None)
    assert (sh_to_rgb(torch.full((1, 1, 3), -10.0), None) == 0).all()  # clamped at 0, like 3DGS
