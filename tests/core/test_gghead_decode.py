"""core.gghead decoding and backbone against the independent float64 reference (tests/core/gghead_reference.py)
and against hand-computed values for the conventions that are easy to get wrong: the quaternion component
order, the opacity offset, the SH layout, grid_sample's corner convention and axis order."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

import gghead_reference as ref
from core.gaussians import SH_C0
from core.gghead.config import PRESETS, GGHeadConfig
from core.gghead.decode import activate, axis_angle_to_quaternion, sample_uv_features
from core.gghead.format_writer import upstream_values
from core.gghead.generator import GGHeadGenerator
from core.gghead.template import synthetic_template, uv_grid_from_mask

TINY = PRESETS["tiny"]


def _settings(c: GGHeadConfig) -> dict:
    return {k: getattr(c, k) for k in ref.RELEASED}


def _decode_ours(c: GGHeadConfig, uv_map: torch.Tensor, grid: torch.Tensor, template: torch.Tensor,
                 conv: torch.nn.Module | None):
    return activate(sample_uv_features(uv_map, grid, c, conv), template, c)


def _random_case(c: GGHeadConfig, seed: int = 0, scale: float = 1.5):
    g = torch.Generator().manual_seed(seed)
    uv_map = torch.randn(1, c.map_channels, 8, 8, generator=g, dtype=torch.float64) * scale
    grid = (torch.rand(1, 40, 1, 2, generator=g, dtype=torch.float64) * 2.2 - 1.1)  # some outside [-1, 1]
    template = torch.randn(1, 40, 3, generator=g, dtype=torch.float64) * 0.2
    conv = torch.nn.Conv2d(3, 3, 1).double()
    with torch.no_grad():
        conv.weight.normal_(generator=g)
        conv.bias.normal_(generator=g)
    return uv_map, grid, template, conv


CONFIGS = {
    "released": TINY,
    "older-defaults": dataclasses.replace(TINY, use_zero_conv_position=False, position_range=1.0, max_scale=1.0,
                                          center_scale_activation=False, use_rotation_activation=False,
                                          color_overshoot=0.0, opacity_overshoot=0.0, sh_degree=0,
                                          position_attenuation=0.01),
    "quaternions+clamp": dataclasses.replace(
        TINY, use_rodriguez_rotation=False, clamp_opacity=True, use_position_activation=False,
        use_color_activation=False, uv_attributes=("opacity", "color", "rotation", "scale", "position")),
}


@pytest.mark.parametrize("variant", list(CONFIGS))
def test_decoding_matches_the_float64_reference(variant):
    c = CONFIGS[variant]
    uv_map, grid, template, conv = _random_case(c)
    got = _decode_ours(c, uv_map, grid, template, conv if c.use_zero_conv_position else None)
    w = conv.weight.detach().numpy()[:, :, 0, 0], conv.bias.detach().numpy()
    want = ref.decode(uv_map[0].numpy(), grid[0, :, 0].numpy(), template[0].numpy(), _settings(c),
                      w if c.use_zero_conv_position else None)
    for name in ("positions", "log_scales", "rotations", "opacities", "sh"):
        np.testing.assert_allclose(getattr(got, name)[0].detach().numpy(), want[name], rtol=1e-10, atol=1e-12,
                                   err_msg=name)


def _features(c: GGHeadConfig, **values) -> torch.Tensor:
    """One Gaussian's feature vector [1, 1, C] with the given per-attribute channel values (others 0)."""
    sizes = c.attribute_channels
    parts = [torch.as_tensor(values.get(n, [0.0] * sizes[n]), dtype=torch.float64) for n in c.uv_attributes]
    return torch.cat(parts)[None, None]


def test_quaternion_is_stored_in_upstreams_reordered_slots():
    # axis-angle 90 degrees about +x: 2 pi tanh(x) = pi/2.
    x = math.atanh(0.25)
    a = activate(_features(TINY, rotation=[x, 0.0, 0.0]), torch.zeros(1, 1, 3, dtype=torch.float64), TINY)
    h = math.sqrt(0.5)
    # (w, x, y, z) = (cos 45, sin 45, 0, 0) becomes (z, w, x, y) = (0, cos 45, sin 45, 0) ...
    np.testing.assert_allclose(a.rotations[0, 0].numpy(), [0.0, h, h, 0.0], atol=1e-12)
    # ... which the rasterizer (and our GaussianSet) reads as (w, x, y, z): 180 degrees about (1, 1, 0)/sqrt 2.
    gs = a.to_gaussian_set()
    assert torch.equal(gs.quats, a.rotations)
    q = axis_angle_to_quaternion(torch.tensor([[math.pi / 2, 0.0, 0.0]], dtype=torch.float64))
    np.testing.assert_allclose(q[0].numpy(), [h, h, 0.0, 0.0], atol=1e-12)


def test_small_rotation_uses_the_series_and_stays_unit_length():
    q = axis_angle_to_quaternion(torch.tensor([[1e-8, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 3.0, 4.0]]))
    np.testing.assert_allclose(q.norm(dim=-1).numpy(), 1.0, atol=1e-6)
    np.testing.assert_allclose(q[1].numpy(), [1.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(q[2].numpy(), [math.cos(2.5), 0.0, 0.6 * math.sin(2.5), 0.8 * math.sin(2.5)],
                               atol=1e-6)


def test_opacity_has_the_overshoot_offset_not_a_plain_sigmoid():
    xs = [0.0, 3.0, -2.0, -9.0, 12.0]
    a = activate(torch.cat([_features(TINY, opacity=[x]) for x in xs], dim=1),
                 torch.zeros(1, len(xs), 3, dtype=torch.float64), TINY)
    sig = 1 / (1 + np.exp(-np.array(xs)))
    np.testing.assert_allclose(a.opacities[0].numpy(), sig * 1.002 - 0.001, rtol=1e-12)
    gs = a.to_gaussian_set()
    eps = torch.finfo(torch.float64).eps
    # stored as the logit of that opacity (so sigmoid() in any 3DGS viewer gives it back) ...
    np.testing.assert_allclose(gs.opacities()[0, :3].numpy(), sig[:3] * 1.002 - 0.001, rtol=1e-12)
    assert abs(float(gs.opacity_logits[0, 1]) - 3.0) > 1e-3  # ... which is not the raw feature
    # below zero (sigmoid(-9) * 1.002 < 0.001): invisible; above one: saturated
    assert a.opacities[0, 3] < 0 and float(gs.opacities()[0, 3]) == pytest.approx(eps, rel=1e-6)
    assert a.opacities[0, 4] > 1 and float(gs.opacities()[0, 4]) == pytest.approx(1 - eps)


def test_sh_degree_1_layout_is_coefficient_major():
    base = activate(_features(TINY), torch.zeros(1, 1, 3, dtype=torch.float64), TINY).sh[0, 0]
    assert base.shape == (4, 3)
    np.testing.assert_allclose(base.numpy(), -0.001 * 0.5 / SH_C0)  # mip_tanh(0) = -overshoot
    for k in range(4):
        for ch in range(3):
            col = [0.0] * 12
            col[3 * k + ch] = 1.0
            sh = activate(_features(TINY, color=col), torch.zeros(1, 1, 3, dtype=torch.float64), TINY).sh[0, 0]
            changed = (sh != base).nonzero().tolist()
            assert changed == [[k, ch]]
            assert float(sh[k, ch]) == pytest.approx((math.tanh(1.0) * 1.002 - 0.001) * 0.5 / SH_C0)


def test_position_and_scale_formulas_of_the_released_models():
    t = torch.tensor([[[0.1, -0.2, 0.3]]], dtype=torch.float64)
    a = activate(_features(TINY, position=[0.5, -1.0, 2.0], scale=[0.0, 2.0, 7.0]), t, TINY)
    np.testing.assert_allclose(a.positions[0, 0].numpy(), t[0, 0].numpy() + 0.25 * np.tanh([0.5, -1.0, 2.0]))
    np.testing.assert_allclose(a.log_scales[0, 0].numpy(), -3 - np.log1p(np.exp(2 - np.array([0.0, 2.0, 7.0]))))


def test_grid_sample_convention_align_corners_false_zero_padding_x_is_columns():
    c = dataclasses.replace(TINY, use_zero_conv_position=False)
    P = 4
    ramp = torch.arange(P, dtype=torch.float64)  # value = column index
    uv_map = torch.zeros(1, c.map_channels, P, P, dtype=torch.float64)
    uv_map[0, 0] = ramp[None, :].expand(P, P)  # first position channel: varies along columns only
    uv_map[0, 1] = 1.0
    # x = -1 is the left edge of column 0 (half a texel outside): half of column 0 plus zero padding.
    # x = -0.75 is the centre of column 0; x = 0.25 the centre of column 2.
    grid = torch.tensor([[[[-1.0, 0.3]], [[-0.75, -0.75]], [[0.25, 0.6]], [[0.0, -0.75]]]], dtype=torch.float64)
    f = sample_uv_features(uv_map, grid, c)
    np.testing.assert_allclose(f[0, :, 0].numpy(), [0.0, 0.0, 2.0, 1.5])
    np.testing.assert_allclose(f[0, :, 1].numpy(), [0.5, 1.0, 1.0, 1.0])


def test_uv_grid_rule_keeps_lattice_points_inside_the_chart():
    mask = torch.zeros(8, 8)
    mask[:, :4] = 1  # left half
    grid = uv_grid_from_mask(mask, 5)  # lattice -1, -0.5, 0, 0.5, 1
    xs = sorted(set(grid[0, :, 0, 0].tolist()))
    # x = -1 samples half a texel of zero padding (0.5 < 0.99); x = 0 is the chart border (0.5)
    assert xs == [-0.5]
    # y = +-1 sample half a texel of padding as well; row-major order (v, then u)
    assert grid[0, :, 0].tolist() == [[-0.5, -0.5], [-0.5, 0.0], [-0.5, 0.5]]


def test_backbone_and_mapping_match_the_reference():
    c = TINY
    template = synthetic_template(c.plane_resolution, c.uv_grid_size)
    T = upstream_values(c, template, seed=3)
    G = GGHeadGenerator(c, template).double()
    from core.gghead.records import upstream_to_ours

    G.load_state_dict({upstream_to_ours(k): v.double() for k, v in T.items()}, strict=True)
    z = torch.randn(3, c.z_dim, dtype=torch.float64)
    label = G.front_camera().to_label().double()[None].expand(3, -1)
    ws = G.map(z, truncation_psi=0.6, truncation_cutoff=4)
    want_ws = ref.mapping(T, z, label, c.num_ws, c.mapping_layers, psi=0.6, cutoff=4)
    torch.testing.assert_close(ws.double(), want_ws, rtol=1e-5, atol=1e-5)  # the mapping runs in float32
    img = G.uv_map(want_ws)
    torch.testing.assert_close(img, ref.synthesis(T, want_ws, c.plane_resolution), rtol=1e-9, atol=1e-9)
    attrs, _ = G.decode(want_ws)
    for b, want in enumerate(ref.forward(T, want_ws, _settings(c), c.plane_resolution)):
        for name in ("positions", "log_scales", "rotations", "opacities", "sh"):
            np.testing.assert_allclose(getattr(attrs, name)[b].detach().numpy(), want[name], rtol=1e-8,
                                       atol=1e-9, err_msg=name)
