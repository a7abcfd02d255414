"""The viewer's command line (``run_viewer.py``), its default model and small start-up helpers."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import tyro

from ui_state.panels import DisplayPath

APP_NAME = "SplatHead Studio"
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "assets" / "default_model.safetensors"
FALLBACK_SOURCE = "random:cpu128"


@dataclass(frozen=True)
class ViewerConfig:
    """SplatHead Studio: explore, edit and export 3D Gaussian-splatting head GANs."""

    path: tyro.conf.Positional[str | None] = None
    """A generator file (ours: .safetensors or a snapshot index; .pkl: official CGS-GAN, GGHead, our older format), a 3DGS .ply, or random:tiny / random:cpu128.
    Default: the embedded model in assets/."""
    device: str = "auto"
    """Compute device: auto (CUDA if available, else CPU), cpu, cuda or cuda:N."""
    resolution: int = 512
    """Rendered image size in pixels (square; change it in the Render panel)."""
    display: DisplayPath = "auto"
    """How the picture is made (the Render panel's "display"): auto (the render worker's images: gsplat on
    CUDA, the CPU splat rasterizer elsewhere; OpenGL splats if that cannot run), opengl (the window draws the
    splats with OpenGL) or image (always the worker's images)."""
    width: int = 1400
    """Window width in pixels."""
    height: int = 900
    """Window height in pixels."""
    torch_threads: int = 0
    """CPU threads for model work (synthesis, inversion) on the render worker. 0: automatic (on a CPU device
    half the cores, at least one, since the GUI thread and the OpenGL driver's threads share them; see
    docs/viewer.md). Ignored on CUDA."""
    fps_max: float = 75.0
    """Most frames per second the window draws (0: no cap; a desktop's vsync also limits it). Idle, it draws
    about one per second."""
    state_dir: Path | None = None
    """Where the recent-files list is kept (default: ~/.config/splathead-studio)."""
    frames: int = 0
    """Exit after this many frames once the first image is shown (0: run until the window closes)."""
    screenshot: Path | None = None
    """Save the last frame here as PNG when the window closes (combine with --frames for smoke runs)."""
    bench_orbit_s: float = 0.0
    """Benchmark: orbit the camera for this many seconds once the head is shown, then exit."""
    bench_orbit_deg_per_s: float = 90.0
    """Benchmark orbit speed in degrees per second."""
    bench_low_res: bool = False
    """Benchmark: treat the orbit as a drag (progressive low resolution)."""
    bench_seeds: int = 0
    """Benchmark: once the head is shown, step the seed this many times, timing each until its head is on
    screen, then exit."""
    bench_idle_s: float = 0.0
    """Benchmark: once the head is shown (and 3 s more), measure the CPU use of this many idle seconds, then the
    frame rate with the pointer moving over the panels for --bench-ui-s seconds, then exit."""
    bench_ui_s: float = 5.0
    """Benchmark: seconds of pointer motion over the panels after the idle measurement."""
    stats_json: Path | None = None
    """Write the frame statistics (GUI, render and synthesis times) here as JSON at exit."""


def default_source() -> str:
    """The embedded trained model when it is in assets/, else the random-weight ``random:cpu128`` generator."""
    return str(DEFAULT_MODEL) if DEFAULT_MODEL.is_file() else FALLBACK_SOURCE


def random_banner(source: str) -> str:
    if source == FALLBACK_SOURCE and not DEFAULT_MODEL.is_file():
        return ("Random weights: assets/ has no trained default model yet, so this 'head' is an untrained "
                f"{source.split(':', 1)[1]} generator. Open a trained generator file or a .ply in the Load panel.")
    return f"Random weights: {source} is an untrained generator (for testing the viewer)."


def display_problem() -> str:
    """Why no window can open here, or '' if one can."""
    if sys.platform == "linux" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return ("no display: DISPLAY is not set. Run on a desktop session, or under a virtual X server: "
                'xvfb-run -a -s "-screen 0 1400x900x24" python run_viewer.py ...')
    return ""


def resolve_device(requested: str) -> tuple[str, str]:
    """``(torch device string, note)`` for ``auto``/``cpu``/``cuda``/``cuda:N``; imports torch."""
    import torch

    cuda = torch.cuda.is_available()
    if requested == "auto":
        return ("cuda", "") if cuda else ("cpu", "")
    try:
        dev = torch.device(requested)
    except RuntimeError as e:
        return "cpu", f"--device {requested!r} is not a device ({e}); using the CPU"
    if dev.type == "cuda":
        if not cuda:
            return "cpu", f"--device {requested}: CUDA is not available; using the CPU"
        if (dev.index or 0) >= torch.cuda.device_count():
            return "cuda", f"--device {requested}: only {torch.cuda.device_count()} CUDA device(s); using cuda:0"
    return str(dev), ""


def torch_threads(requested: int, device: str) -> int | None:
    """Intra-op threads for torch on ``device`` (None: leave torch's default). On a CPU device the render worker
    shares the cores with the GUI thread and llvmpipe's raster threads (one per core); an OpenMP thread that
    gets descheduled stalls every parallel region, so two threads on two busy cores made one synthesis of the
    default model take 1-8 s instead of 0.15 s with one thread (docs/viewer.md, "Speed on a laptop CPU")."""
    if requested > 0:
        return requested
    if not device.startswith("cpu"):
        return None
    return max(1, (os.cpu_count() or 1) // 2)


def save_screenshot(path: Path) -> tuple[int, int]:
    """Write the last frame of the window that just closed to ``path``; returns (width, height)."""
    from imgui_bundle import hello_imgui
    from PIL import Image

    img = hello_imgui.final_app_window_screenshot()
    if img is None or img.size == 0:
        raise RuntimeError("no frame was rendered, so there is nothing to save")
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)
    return img.shape[1], img.shape[0]
