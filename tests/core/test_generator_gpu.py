"""The generator on CUDA: same output as on the CPU, bf16 feature path close to fp32, CUDA-graph capture."""

from __future__ import annotations

import pytest
import torch

from core.camera import default_camera
from core.generator import PRESETS, Generator, official_preset

pytestmark = pytest.mark.gpu


def test_cuda_matches_cpu_and_renders():
    torch.manual_seed(0)
    G = Generator(PRESETS["cpu128"]).eval()
    z = torch.randn(2, G.config.z_dim)
    torch.backends.cuda.matmul.allow_tf32 = False
    with torch.no_grad():
        cpu = G(z)
        Gc = G.cuda()
        gpu = Gc(z.cuda(), cameras=default_camera().to("cuda"), resolution=128)
    torch.testing.assert_close(gpu.gaussians.means.cpu(), cpu.gaussians.means, atol=1e-4, rtol=0)
    assert gpu.render.backend == "gsplat" and gpu.render.color.shape == (2, 128, 128, 3)


def test_bf16_features_and_cuda_graph_capture():
    torch.manual_seed(0)
    G = Generator(official_preset(256)).cuda().eval()
    z = torch.randn(1, 512, device="cuda")
    with torch.no_grad():
        ref = G(z).gaussians
        G.feature_dtype = torch.bfloat16
        half = G(z).gaussians
    assert half.means.dtype == torch.float32
    assert (half.means - ref.means).abs().max() < 0.05
    from bench.synthesis import GraphedSynthesis

    graphed = GraphedSynthesis(G, 1)
    out = graphed(z)
    torch.testing.assert_close(out.gaussians.means, half.means, atol=1e-5, rtol=0)


@pytest.mark.parametrize("res", [256, 512, 1024, 2048])
def test_official_presets_run_on_cuda(res):
    G = Generator(official_preset(res)).cuda().eval()
    with torch.no_grad():
        out = G(torch.randn(2, 512, device="cuda"), cameras=default_camera().to("cuda"), resolution=res)
    assert out.gaussians.num_gaussians == official_preset(res).num_gaussians
    assert out.render.color.shape == (2, res, res, 3)
    out.gaussians.validate()


def test_graphed_no_grad_forward_follows_in_place_updates_and_w_avg():
    """core.cuda_graphs.graphed_generator_no_grad (the trainer's D step): the same Gaussians as the eager
    forward, also after an optimizer changes the weights in place, and the same w_avg update."""
    from core.cuda_graphs import graphed_generator_no_grad

    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = False
    G = Generator(PRESETS["cpu128"]).cuda().train()
    eager = Generator(PRESETS["cpu128"]).cuda().train()
    eager.load_state_dict(G.state_dict())
    graphed = graphed_generator_no_grad(G, (4, G.config.z_dim), update_w_avg=True)
    torch.testing.assert_close(G.w_avg, eager.w_avg, atol=0, rtol=0)  # capture and warm-up left w_avg alone
    opt = torch.optim.Adam(G.parameters(), lr=0.01, fused=True)
    for step in range(3):
        z = torch.randn(4, G.config.z_dim, device="cuda")
        with torch.no_grad():
            got, want = graphed(z).gaussians, eager(z, update_w_avg=True).gaussians
        torch.testing.assert_close(got.means, want.means, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(got.sh, want.sh, atol=1e-6, rtol=1e-5)  # |sh| reaches ~5: a few ulp
        torch.testing.assert_close(G.w_avg, eager.w_avg, atol=1e-6, rtol=1e-5)
        # an Adam step (in place, as in training) on G; the eager copy takes the new weights
        G.zero_grad()
        G(torch.randn(2, G.config.z_dim, device="cuda")).gaussians.means.square().mean().backward()
        opt.step()
        with torch.no_grad():
            for p, q in zip(eager.parameters(), G.parameters()):
                p.copy_(q)
    with pytest.raises(ValueError, match="captured for z"):
        graphed(torch.randn(2, G.config.z_dim, device="cuda"))
