"""core.generator: presets and counts, truncation, ws layouts, placement rules, rendering, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from core.camera import orbit_cameras
from core.generator import PRESETS, Generator, GeneratorConfig, count_parameters, official_preset
from core.point_hierarchy import Points, PositionalEncoding, place_children, place_first_anchors, rotate, soft_clip


@pytest.fixture(scope="module")
def tiny() -> Generator:
    torch.manual_seed(0)
    G = Generator(PRESETS["tiny"]).eval()
    with torch.no_grad():  # a non-trivial state: w_avg away from zero, layer scales switched on
        G.mapping.w_avg.normal_()
        for block in G.transformer.blocks:
            block.scale1.weight.normal_()
            block.scale2.weight.normal_()
    return G


@pytest.mark.parametrize("res, gaussians, anchors, params_m", [
    (256, 109_056, 43_520, 54.77), (512, 240_128, 109_056, 61.61),
    (1024, 502_272, 240_128, 70.55), (2048, 1_026_560, 502_272, 79.48),
])
def test_official_presets_match_the_fact_sheet(res, gaussians, anchors, params_m):
    cfg = official_preset(res)
    assert cfg.num_gaussians == gaussians and cfg.num_anchors == anchors
    assert cfg.num_levels == {256: 5, 512: 6, 1024: 7, 2048: 8}[res] and cfg.num_blocks == cfg.num_levels + 5
    with torch.device("meta"):
        G = Generator(cfg)
    # ours omits the official dead tensors (unused label-embedding weight, last-level anchor heads)
    assert count_parameters(G) / 1e6 == pytest.approx(params_m, rel=1e-3)
    assert cfg.split_ratio == pytest.approx({256: 1.834, 512: 1.866, 1024: 1.888, 2048: 1.903}[res], abs=1e-3)
    assert cfg.scale_threshold == pytest.approx(-3.812, abs=1e-3)


def test_forward_shapes_and_ranges(tiny):
    cfg = tiny.config
    with torch.no_grad():
        out = tiny(torch.randn(3, cfg.z_dim))
    g = out.gaussians
    assert g.batch_shape == (3,) and g.num_gaussians == cfg.num_gaussians == 1344 and g.sh_degree == 0
    g.validate()
    assert g.means.abs().max() <= 0.5
    assert out.anchors.shape == (3, cfg.num_points, 3) and out.ws.shape == (3, cfg.num_ws, cfg.w_dim)
    for t in (g.log_scales, g.quats, g.opacity_logits, g.sh):
        assert t.abs().max() < 20.0  # soft clip


def test_same_z_same_scene_and_different_z_differ(tiny):
    z = torch.randn(2, tiny.config.z_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = tiny(z), tiny(z)
    assert a.gaussians.equal(b.gaussians)
    assert not torch.allclose(a.gaussians.means[0], a.gaussians.means[1])


def test_truncation_psi_zero_gives_the_average_head_for_every_z(tiny):
    z = torch.randn(4, tiny.config.z_dim)
    with torch.no_grad():
        out = tiny(z, truncation_psi=0.0)
        ref = tiny.synthesis(tiny.mapping.w_avg[None, None].expand(1, tiny.config.num_ws, -1))
    for i in range(4):
        # (batched and single matmuls may round differently on other BLAS builds, hence 1e-5)
        torch.testing.assert_close(out.gaussians.means[i], ref.gaussians.means[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(out.ws[i], tiny.mapping.w_avg.expand(tiny.config.num_ws, -1), atol=0, rtol=0)
    with torch.no_grad():
        half = tiny.map(z, truncation_psi=0.5)
        full = tiny.map(z)
    torch.testing.assert_close(half, tiny.mapping.w_avg + 0.5 * (full - tiny.mapping.w_avg))
    with torch.no_grad():
        cut = tiny.map(z, truncation_psi=0.0, truncation_cutoff=2)
    assert torch.equal(cut[:, :2], tiny.mapping.w_avg.expand(4, 2, -1)) and torch.equal(cut[:, 2:], full[:, 2:])


def test_w_avg_tracks_the_mean_when_asked():
    G = Generator(PRESETS["tiny"])
    z = torch.randn(64, G.config.z_dim)
    before = G.mapping.w_avg.clone()
    G.map(z)
    assert torch.equal(G.mapping.w_avg, before)
    w = G.map(z, update_w_avg=True)
    beta = G.config.w_avg_beta
    torch.testing.assert_close(G.mapping.w_avg, (1 - beta) * w[:, 0].mean(0) + beta * before)


def test_single_and_per_block_layouts_share_weights_and_outputs(tiny):
    single = Generator(GeneratorConfig(**{**tiny.config.to_dict(), "ws_layout": "single"})).eval()
    single.load_state_dict(tiny.state_dict())
    z = torch.randn(2, tiny.config.z_dim)
    with torch.no_grad():
        a, b = tiny(z), single(z)
    assert a.ws.shape[1] == tiny.config.num_blocks and b.ws.shape[1] == 1
    torch.testing.assert_close(a.gaussians.means, b.gaussians.means)
    # per-block ws really act per block: editing one slot changes the scene
    ws = a.ws.clone()
    ws[:, -1] += 1.0
    with torch.no_grad():
        edited = tiny.synthesis(ws)
    assert not torch.allclose(edited.gaussians.means, a.gaussians.means)
    with pytest.raises(ValueError, match="ws must be"):
        tiny.synthesis(ws[:, :2])


def test_children_stay_inside_their_parents_box_and_never_grow():
    g = torch.Generator().manual_seed(0)
    P = 500
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    q = r(1, P, 4) * 1e4  # |q| >> 1e-3: R(q / (|q| + 1e-3)) is a rotation
    parent = Points(torch.cat([r(1, P, 3), r(1, P, 3) * 1.5 - 7.5, q, r(1, P, 3) * 0, r(1, P, 1) * 0], -1))
    raw = Points(r(1, P, 14) * 3)
    child = place_children(raw, parent, split_ratio=1.9, split_min_scale=1e-3)
    qn = q / q.norm(dim=-1, keepdim=True)
    local = rotate(qn * torch.tensor([1.0, -1, -1, -1], dtype=torch.float64), child.xyz - parent.xyz)  # back into the parent frame
    assert (local.abs() <= parent.scale.exp() * (1 + 1e-4)).all()
    # the soft clip is monotone, so a child never exceeds its (clipped) parent
    assert (child.scale <= soft_clip(parent.scale) + 1e-9).all()
    big = parent.scale.amax(-1, keepdim=True) > math.log(1e-3)
    assert big.any() and (~big).any()
    shrunk = child.scale[big.expand_as(child.scale)] <= soft_clip(parent.scale - math.log(1.9))[big.expand_as(child.scale)] + 1e-9
    assert shrunk.all()
    first = place_first_anchors(raw, parent, scale_threshold=-3.8)
    assert (first.scale < soft_clip(torch.tensor(-3.8))).all()
    torch.testing.assert_close(first.xyz, 0.2 * raw.xyz)


def test_rotate_matches_the_rotation_matrix():
    from core.render_torch import quat_to_rotmat

    q = torch.nn.functional.normalize(torch.randn(20, 4, dtype=torch.float64), dim=-1)
    v = torch.randn(20, 3, dtype=torch.float64)
    torch.testing.assert_close(rotate(q, v), (quat_to_rotmat(q) @ v[..., None])[..., 0])


def test_official_positional_encoding_lookup_reads_two_columns():
    pe = PositionalEncoding(dim=8, res=512, official_table_lookup=True)
    p = torch.rand(2, 5, 3) * 2 - 1
    out = pe(p)[..., 8:]
    mid = 0.5 * (pe.table[:, :, 0, 255] + pe.table[:, :, 0, 256])  # [3, dim]
    expected = ((1 - p.abs() / 2)[..., None] * mid).sum(-2) / math.sqrt(3)  # [2, 5, dim]
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-5)
    fixed = PositionalEncoding(dim=8, res=512)
    fixed.load_state_dict(pe.state_dict())
    assert (fixed(p)[..., 8:] - out).abs().max() > 0.1  # the default really samples along the table


def test_renders_when_asked_and_gradients_reach_every_parameter():
    torch.manual_seed(0)
    G = Generator(PRESETS["tiny"])
    with torch.no_grad():
        for block in G.transformer.blocks:
            block.scale1.weight.normal_()
            block.scale2.weight.normal_()
    cams = orbit_cameras(torch.tensor([-0.5, 0.5]), 0.1)
    out = G(torch.randn(2, G.config.z_dim), cameras=cams, resolution=32)
    assert out.render.color.shape == (2, 2, 32, 32, 3)
    assert out.render.alpha.max() > 0.05  # the random-init head is visible
    (out.render.color.mean() + out.anchors.square().mean()).backward()
    missing = [n for n, p in G.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == [] or all("const" in n for n in missing), missing


def test_config_round_trip_and_validation():
    cfg = PRESETS["cpu128"]
    assert GeneratorConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown generator config keys"):
        GeneratorConfig.from_dict({**cfg.to_dict(), "bogus": 1})
    with pytest.raises(ValueError, match="power of two"):
        GeneratorConfig(resolution=100)
    with pytest.raises(ValueError, match="first level"):
        GeneratorConfig(upsample_ratios=(4, 4, 4, 4, 2, 2))
    with pytest.raises(ValueError, match="no preset"):
        official_preset(300)
    with pytest.raises(ValueError, match="z must have shape"):
        Generator(PRESETS["tiny"]).map(torch.randn(2, 3))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cgs64", "cgs128", "cgs256", "cgs512", "cgs1024", "cgs2048"])
def test_official_presets_run_on_cpu(name):
    G = Generator(PRESETS[name]).eval()
    with torch.no_grad():
        out = G(torch.randn(1, 512), truncation_psi=0.7)
    assert out.gaussians.num_gaussians == PRESETS[name].num_gaussians
    out.gaussians.validate()
