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
