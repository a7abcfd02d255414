"""``python -m core.orbit_video``: a turntable video of a generated head (``--model``) or a 3DGS scene
(``--ply``), written by :mod:`core.orbit_video` (cameras, frames, the atomic ``.mp4`` writer).

    python -m core.orbit_video --model G.safetensors --seed 7 --psi 0.7 --out head.mp4 --frames 120
    python -m core.orbit_video --ply scene.ply --out scene.mp4 --resolution 1024 --elevation-deg 10
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import torch

from core.camera import DEFAULT_FOCAL, DEFAULT_RADIUS, fov_deg_from_focal
from core.gaussians import GaussianSet
from core.orbit_video import OrbitVideoSettings, existing_video_error, orbit_frames, write_orbit_video
from core.render import Backend


@dataclass(frozen=True)
class OrbitVideoOptions:
    """Render a turntable video of a generated head (--model) or a 3DGS scene (--ply) to an .mp4.

    Attributes:
        out: the .mp4 to write (written atomically; its directory must exist; an existing file is kept and
            the command fails unless --overwrite is given).
        model: a generator file (ours, an official CGS-GAN pickle or a GGHead checkpoint); needs --seed/--psi.
        ply: a 3DGS .ply scene (instead of --model).
        seed: latent seed (the studio's seed -> z rule, core.latent.seed_z).
        psi: truncation psi (1 = none).
        frames: number of frames.
        fps: frames per second.
        resolution: square image size in pixels (even).
        radius: camera distance from the origin, scene units.
        elevation_deg: camera elevation above the horizontal plane, degrees.
        fov_deg: field of view, degrees.
        turns: revolutions over the video.
        start_yaw_deg: yaw of the first frame, degrees (0 = frontal).
        background: RGB in [0, 1].
        device: "auto" (CUDA if available, else CPU), "cpu", "cuda" or "cuda:N".
        backend: rasterizer, "auto", "torch" or "gsplat".
        quality: encoder quality 0..10 (10 best, larger files).
        overwrite: replace --out if it exists.
    """

    out: str
    model: str | None = None
    ply: str | None = None
    seed: int = 0
    psi: float = 0.7
    frames: int = 120
    fps: float = 30.0
    resolution: int = 512
    radius: float = DEFAULT_RADIUS
    elevation_deg: float = 0.0
    fov_deg: float = fov_deg_from_focal(DEFAULT_FOCAL)
    turns: float = 1.0
    start_yaw_deg: float = 0.0
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    device: str = "auto"
    backend: Backend = "auto"
    quality: float = 8.0
    overwrite: bool = False


def load_scene(opts: OrbitVideoOptions, device: torch.device) -> GaussianSet:
    """The scene the options name: a generated head (--model, --seed, --psi) or a .ply (--ply)."""
    if (opts.model is None) == (opts.ply is None):
        raise ValueError("give exactly one of --model (a generator file) or --ply (a 3DGS scene)")
    if opts.ply is not None:
        from core.ply import read_ply

        return read_ply(opts.ply, device=device)
    from core.latent import load_generator_source, seed_ws

    G = load_generator_source(opts.model, device)
    with torch.no_grad():
        return G.synthesis(seed_ws(G, opts.seed, float(opts.psi), device=device)).gaussians[0]


_CLI_DESCRIPTION = """Render a turntable video of a generated head (--model) or a 3DGS scene (--ply) to an .mp4.

Examples:
    python -m core.orbit_video --model G.safetensors --seed 7 --psi 0.7 --out head.mp4 --frames 120
    python -m core.orbit_video --ply scene.ply --out scene.mp4 --resolution 1024 --elevation-deg 10
"""


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status: 0 done, 2 bad input or I/O error, 130 interrupted."""
    import tyro
    from tqdm import tqdm

    opts = tyro.cli(OrbitVideoOptions, args=argv, description=_CLI_DESCRIPTION, prog="python -m core.orbit_video")
    try:
        if not opts.overwrite and os.path.lexists(opts.out):  # before loading and rendering anything
            raise existing_video_error(opts.out)
        settings = OrbitVideoSettings(opts.frames, opts.fps, opts.radius, opts.elevation_deg, opts.resolution,
                                      opts.fov_deg, tuple(opts.background), opts.turns, opts.start_yaw_deg)
        auto = "cuda" if torch.cuda.is_available() else "cpu"
        device = torch.device(auto if opts.device == "auto" else opts.device)
        scene = load_scene(opts, device)
        with tqdm(total=settings.frames, unit="frame", desc=os.path.basename(opts.out), file=sys.stderr) as bar:
            result = write_orbit_video(orbit_frames(scene, settings, device, opts.backend), opts.out, settings.fps,
                                       total=settings.frames, progress=lambda done, _: bar.update(done - bar.n),
                                       quality=opts.quality, overwrite=opts.overwrite)
    except KeyboardInterrupt:
        print("interrupted: no video written", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {result.path} ({result.frames_written} frames, {settings.resolution}x{settings.resolution}, "
          f"{settings.fps:g} fps)")
    return 0
