"""Generator speed: z -> Gaussians and z -> rendered image, on a CUDA GPU.

For each resolution preset (official CGS-GAN architecture, random weights: speed does not depend on them,
apart from how many pixels the splats cover) and batch size it measures, with CUDA events (median of
``--repeats`` after warm-up):

    eager fp32 (TF32 off) | TF32 matmuls | bf16 feature path (heads and placement in fp32)
    | bf16 + a CUDA graph of the whole synthesis (mapping included; rendering stays outside the graph)
    | bf16 + torch.compile (optional, --compile)

``z -> image`` adds gsplat rendering of every scene from the default camera at the preset's resolution.
Quality of each variant against fp32: PSNR of the rendered images and max |delta| of the centres.
Figures are recorded in bench/results.json; the headline one is ``synthesis_fps_512`` (z -> rendered 512
image, batch 1, best variant). A CUDA profile of the fp32 eager forward at 512 shows where the time goes.

    python -m bench.synthesis [--resolutions 256 512 1024] [--repeats 50] [--compile]
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

import torch

from bench.cuda_timing import cuda_ms
from bench.results import device_name, record
from core.camera import default_camera
from core.generator import Generator, GeneratorOutput, official_preset
from core.render import render


class GraphedSynthesis:
    """``fn(z)`` (default: z -> Gaussians with ``G``) captured as one CUDA graph for a fixed batch size;
    static input/output buffers, so each call copies z in and replays."""

    def __init__(self, G: Generator, batch: int, fn: Callable[[torch.Tensor], object] | None = None) -> None:
        self.fn = fn or (lambda z: G.synthesis(G.map(z)))
        self.z = torch.randn(batch, G.config.z_dim, device="cuda")
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s), torch.no_grad():
            for _ in range(3):
                self.fn(self.z)
        torch.cuda.current_stream().wait_stream(s)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), torch.no_grad():
            self.out = self.fn(self.z)

    def __call__(self, z: torch.Tensor):
        self.z.copy_(z)
        self.graph.replay()
        return self.out


class TensorsOut:
    """Adapts a function returning the five GaussianSet tensors to the ``.gaussians`` interface."""

    def __init__(self, fn: Callable[[torch.Tensor], tuple]) -> None:
        self.fn = fn

    def __call__(self, z: torch.Tensor):
        from types import SimpleNamespace

        from core.gaussians import GaussianSet

        return SimpleNamespace(gaussians=GaussianSet(*self.fn(z)))


def activated_tensors(G: Generator) -> Callable[[torch.Tensor], tuple]:
    """z -> contiguous activated inputs of the rasterizer (means, quats, scales, opacities, sh), so the
    activations run inside the compiled graph and rendering needs no further preparation."""
    def fn(z: torch.Tensor) -> tuple:
        g = G.synthesis(G.map(z)).gaussians
        return tuple(t.contiguous() for t in (g.means, g.quats, g.scales(), g.opacities(), g.sh))
    return fn


def gaussian_tensors(G: Generator) -> Callable[[torch.Tensor], tuple]:
    def fn(z: torch.Tensor) -> tuple:
        g = G.synthesis(G.map(z)).gaussians
        return g.means, g.quats, g.log_scales, g.opacity_logits, g.sh
    return fn


def prepared_ms(G: Generator, z: torch.Tensor, res: int, repeats: int, dev: str) -> None:
    """The viewer's path: compiled + graphed synthesis that also activates, camera matrices computed once,
    gsplat called directly. Records ``synthesis_image_ms_{res}_b{B}_prepared``."""
    from core.render_gsplat import render_gsplat

    B = z.shape[0]
    t0 = time.perf_counter()
    graphed = GraphedSynthesis(G, B, torch.compile(activated_tensors(G)))
    print(f"prepared path build: {time.perf_counter() - t0:.1f} s")
    cam = default_camera().to("cuda")
    viewmats = cam.world_to_camera()[None, None].expand(B, 1, 4, 4).contiguous()
    Ks = cam.pixel_intrinsics(res, res)[None, None].expand(B, 1, 3, 3).contiguous()

    def image():
        means, quats, scales, opac, sh = graphed(z)
        return render_gsplat(means, quats, scales, opac, sh, viewmats, Ks, res, res, with_depth=False)[0]

    with torch.no_grad():
        ms = cuda_ms(image, repeats)
    print(f"res {res} batch {B} prepared    : z->image {ms:7.2f} ms ({1000 * B / ms:7.1f}/s)")
    record(f"synthesis_image_ms_{res}_b{B}_prepared", ms, "ms", dev,
           note="bf16 features, torch.compile + CUDA graph incl. activations, cached camera, direct gsplat call")


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a.float().clamp(0, 1) - b.float().clamp(0, 1)).square().mean().item()
    return float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(1.0 / mse)).item()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resolutions", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--compile", action="store_true", help="also try torch.compile (slow to build)")
    ap.add_argument("--compile-mode", default="default")
    ap.add_argument("--compile-resolutions", type=int, nargs="+", default=[512])
    ap.add_argument("--profile", action="store_true", help="print a CUDA kernel profile at 512")
    args = ap.parse_args()
    dev = device_name("cuda")
    torch.backends.cudnn.benchmark = True
    cam = default_camera().to("cuda")
    for res in args.resolutions:
        torch.manual_seed(0)
        G = Generator(official_preset(res)).cuda().eval()
        with torch.no_grad():  # switch the blocks on (layer scales start at zero) so every op does real work
            for blk in G.transformer.blocks:
                blk.scale1.weight.normal_()
                blk.scale2.weight.normal_()
        z_fixed = torch.randn(8, G.config.z_dim, device="cuda", generator=torch.Generator("cuda").manual_seed(1))
        ref = reference = None
        for batch in args.batches:
            z = z_fixed[:batch]
            variants: dict[str, Callable[[torch.Tensor], GeneratorOutput]] = {}

            def eager(dtype, tf32):
                def run(zz):
                    torch.backends.cuda.matmul.allow_tf32 = tf32
                    G.feature_dtype = dtype
                    with torch.no_grad():
                        return G.synthesis(G.map(zz))
                return run

            variants["fp32"] = eager(None, False)
            variants["tf32"] = eager(None, True)
            variants["bf16"] = eager(torch.bfloat16, True)
            G.feature_dtype = torch.bfloat16
            torch.backends.cuda.matmul.allow_tf32 = True
            variants["bf16+graph"] = GraphedSynthesis(G, batch)
            if args.compile and res in args.compile_resolutions:
                t0 = time.perf_counter()
                compiled = torch.compile(gaussian_tensors(G), mode=args.compile_mode)
                with torch.no_grad():
                    compiled(z)
                print(f"torch.compile ({args.compile_mode}) build at {res}, batch {batch}: {time.perf_counter() - t0:.1f} s")
                variants["bf16+compile"] = TensorsOut(compiled)
                try:
                    variants["bf16+compile+graph"] = TensorsOut(GraphedSynthesis(G, batch, compiled))
                except Exception as exc:  # capture can fail if compiled code syncs
                    print(f"CUDA graph of the compiled synthesis failed: {exc}")
                prepared_ms(G, z, res, args.repeats, dev)
            best = None
            for name, fn in variants.items():
                with torch.no_grad():
                    gen_ms = cuda_ms(lambda: fn(z), args.repeats)
                    img_ms = cuda_ms(lambda: render(fn(z).gaussians, cam, res, res, mode="rgb"), args.repeats)
                    out = fn(z)
                    img = render(out.gaussians, cam, res, res, background=[1.0, 1.0, 1.0], mode="rgb").color
                if name == "fp32":
                    ref, reference = img.clone(), out.gaussians.means.clone()
                quality = f"PSNR {psnr(img, ref):.1f} dB vs fp32, max|d xyz| {(out.gaussians.means - reference).abs().max().item():.2e}"
                print(f"res {res} batch {batch} {name:12s}: z->gaussians {gen_ms:7.2f} ms ({1000 * batch / gen_ms:7.1f}/s), "
                      f"z->image {img_ms:7.2f} ms ({1000 * batch / img_ms:7.1f}/s); {quality}")
                record(f"synthesis_ms_{res}_b{batch}_{name}", gen_ms, "ms", dev, note=f"z->Gaussians; {quality}")
                record(f"synthesis_image_ms_{res}_b{batch}_{name}", img_ms, "ms", dev,
                       note=f"z->rendered image (gsplat, default camera); {quality}")
                if best is None or img_ms < best[1]:
                    best = (name, img_ms)
            from bench.results import load as _load
            prepared = [e["value"] for e in _load() if e["name"] == f"synthesis_image_ms_{res}_b{batch}_prepared"
                        and e["device"] == dev]
            if prepared and prepared[0] < best[1]:
                best = ("bf16+compile+graph, prepared camera, direct gsplat", prepared[0])
            if batch == 1:
                record(f"synthesis_fps_{res}", 1000.0 / best[1], "images/s", dev,
                       note=f"z -> rendered {res} image, batch 1, best variant: {best[0]}")
            else:
                record(f"synthesis_throughput_{res}_b{batch}", 1000.0 * batch / best[1], "images/s", dev,
                       note=f"z -> rendered {res} images, batch {batch}, best variant: {best[0]}")
            G.feature_dtype = None
        if args.profile and res == 512:
            torch.backends.cuda.matmul.allow_tf32 = False
            z = z_fixed[:1]
            with torch.no_grad(), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA,
                                                                      torch.profiler.ProfilerActivity.CPU]) as prof:
                for _ in range(5):
                    render(G.synthesis(G.map(z)).gaussians, cam, res, res, mode="rgb")
                torch.cuda.synchronize()
            print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=25))
        del G
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
