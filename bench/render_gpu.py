"""gsplat backend on the GPU: ms per frame for 100k / 500k / 1M Gaussians at 512 / 1024 / 2048 px.

Scene: :func:`bench.scenes.head_scene` seen by the default head camera (the whole head in view). One view,
float32, CUDA-event timing around ``core.render.render(..., backend="gsplat")``, median of 50 after warm-up.
Also forward+backward of 8 views at 512 for 200k Gaussians (a training-sized step).

    python -m bench.render_gpu
"""

from __future__ import annotations


import torch

from bench.cuda_timing import cuda_ms
from bench.results import device_name, record
from bench.scenes import head_scene
from core.camera import default_camera, orbit_cameras
from core.render import render


def main() -> None:
    dev = device_name("cuda")
    cam = default_camera().to("cuda")
    for n, label in ((100_000, "100k"), (500_000, "500k"), (1_000_000, "1M")):
        scene = head_scene(n, device="cuda")
        for res in (512, 1024, 2048):
            with torch.no_grad():
                ms = cuda_ms(lambda: render(scene, cam, res, res, mode="rgb", backend="gsplat"))
            record(f"gsplat_render_ms_{label}_{res}", ms, "ms/frame", dev, note="head scene, 1 view, forward")
    scene = head_scene(200_000, device="cuda")
    cams = orbit_cameras(torch.linspace(-0.8, 0.8, 8), 0.1).to("cuda")
    params = [t.clone().requires_grad_(True) for t in (scene.means, scene.quats, scene.log_scales,
                                                      scene.opacity_logits, scene.sh)]

    def step():
        from core.gaussians import GaussianSet

        out = render(GaussianSet(*params), cams, 512, 512, mode="rgb", backend="gsplat")
        out.color.mean().backward()

    record("gsplat_fwd_bwd_ms_200k_8x512", cuda_ms(step, repeats=30), "ms/step", dev,
           note="head scene, 8 views, forward+backward")


if __name__ == "__main__":
    main()
