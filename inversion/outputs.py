"""Writing an inversion's results into one output folder.

Layout (``write_*`` functions each write one part)::

    aligned/NN_<name>.png        aligned inputs (uint8 RGB, the generator's resolution)
    aligned/NN_<name>_weight.png loss weight maps (8-bit)
    cameras.json                 per photo: name, 25-number EG3D label (initial and refined), yaw/pitch (deg)
    pivot.npz                    ws [1, num_ws, w_dim] float32, space ("w" / "w+"), labels [N, 25], names
    generator_tuned.safetensors  the tuned generator (our generator file; core.model_files.load_generator)
    head.ply                     the inverted head's Gaussians (standard 3DGS .ply)
    renders/NN_<stage>.png       renders from the input views after each stage
    orbit.mp4                    a yaw orbit of the result (orbit.gif when no ffmpeg is available)
    report.json                  settings, per-step losses of both stages, timings, messages
                                 (inversion.pipeline.build_report: the one report layout)

Nothing is replaced without being asked: :func:`check_output_folder` refuses a folder that already holds
results unless ``overwrite``; :func:`free_folder` picks ``name_2``, ``name_3``, ... instead.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.atomic_file import atomic_write
from core.camera import Cameras, orbit_cameras
from core.generator import Generator
from core.ply import write_ply
from inversion.framing import FaceFraming
from inversion.pipeline import InversionResult, InversionSettings, build_report
from inversion.preprocess import AlignedPhoto
from inversion.steps import render_views, to_uint8


def safe_stem(name: str) -> str:
    """A file-name-safe version of a photo label (no folders, no odd characters)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name).stem)[:60]
    return stem or "photo"


def write_aligned(out: Path, aligned: list[AlignedPhoto]) -> list[Path]:
    """The aligned images and weight maps; returns the image paths."""
    folder = out / "aligned"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, a in enumerate(aligned):
        p = folder / f"{i:02d}_{safe_stem(a.name)}.png"
        Image.fromarray(a.image).save(p)
        Image.fromarray((a.weight * 255 + 0.5).astype(np.uint8)).save(p.with_name(p.stem + "_weight.png"))
        paths.append(p)
    return paths


def camera_records(names: tuple[str, ...], initial: Cameras, refined: Cameras | None,
                   target: tuple[float, float, float]) -> list[dict]:
    """One JSON-able dict per photo: labels and orbit angles (degrees) of the initial and refined cameras."""
    from core.camera import orbit_angles

    records = []
    for i, name in enumerate(names):
        rec: dict = {"name": name}
        for key, cams in (("initial", initial), ("refined", refined)):
            if cams is None:
                continue
            cam = cams[i]
            yaw, pitch, radius = orbit_angles(cam, target)
            rec[key] = {"label": [float(v) for v in cam.to_label()], "yaw_deg": math.degrees(float(yaw)),
                        "pitch_deg": math.degrees(float(pitch)), "radius": float(radius)}
        records.append(rec)
    return records


def write_json(path: Path, data: dict | list) -> Path:
    with atomic_write(path) as f:
        f.write((json.dumps(data, indent=1) + "\n").encode())
    return path


def write_pivot(path: Path, ws: torch.Tensor, space: str, cameras: Cameras, names: tuple[str, ...]) -> Path:
    """``pivot.npz``: ``ws`` ``[1, num_ws, w_dim]`` float32 (a W-space latent repeated per block), ``space``,
    camera ``labels [N, 25]``, ``names``."""
    with atomic_write(path) as f:
        np.savez(f, ws=ws.detach().cpu().float().numpy(), space=np.array(space),
                 labels=cameras.to_label().detach().cpu().float().numpy(), names=np.array(list(names)))
    return path


MAX_PIVOT_VIEWS = 1024  # photos of one inversion (labels [N, 25], names [N])


def read_pivot(path: str | os.PathLike) -> tuple[torch.Tensor, Cameras, list[str]]:
    """Read :func:`write_pivot`'s file: ``(ws [1, num_ws, w_dim], cameras [N], names)``.

    Every array's declared shape and dtype is checked before it is read (``core.npz_file``; issue 19): a
    FIFO, a device, a hostile zip or an oversized claim raises ``LatentFileError`` naming the file."""
    from core.editing.latent_file import LatentFileError, read_latent_file
    from core.npz_file import NpzReader

    ws = read_latent_file(path)

    def error(problem: str) -> LatentFileError:
        return LatentFileError(f"{os.fspath(path)}: {problem}")

    with NpzReader(path, "a pivot .npz file", error=error) as z:
        labels, names = z.arrays.get("labels"), z.arrays.get("names")
        if labels is None or labels.dtype.kind != "f" or len(labels.shape) != 2 or labels.shape[1] != 25 \
                or not 1 <= labels.shape[0] <= MAX_PIVOT_VIEWS:
            raise error(f"expected camera labels [N, 25] (N <= {MAX_PIVOT_VIEWS}), got "
                        f"{'nothing' if labels is None else f'{labels.dtype} {list(labels.shape)}'}")
        if names is None or names.dtype.kind != "U" or names.shape != labels.shape[:1] or names.dtype.itemsize > 4 * 4096:
            raise error(f"expected {labels.shape[0]} photo names beside the labels")
        cams = Cameras.from_label(torch.from_numpy(z.read("labels").astype(np.float32)))
        return torch.from_numpy(ws)[None], cams, [str(n) for n in z.read("names")]


@torch.no_grad()
def render_inputs(out: Path, G: Generator, ws: torch.Tensor, cameras: Cameras, names: tuple[str, ...],
                  resolution: int, stage: str) -> list[Path]:
    """``renders/NN_<stage>.png`` from each input view."""
    folder = out / "renders"
    folder.mkdir(parents=True, exist_ok=True)
    device = next(G.parameters()).device
    paths = []
    for i, name in enumerate(names):
        img = render_views(G, ws.to(device), cameras[i:i + 1].to(device), resolution)[0]
        p = folder / f"{i:02d}_{safe_stem(name)}_{stage}.png"
        Image.fromarray(to_uint8(img)).save(p)
        paths.append(p)
    return paths


@torch.no_grad()
def orbit_frames(G: Generator, ws: torch.Tensor, framing: FaceFraming, resolution: int, frames: int = 48,
                 yaw_deg: float = 40.0, pitch_deg: float = 5.0) -> list[np.ndarray]:
    """``frames`` renders ``uint8 [R, R, 3]`` on a yaw sweep ``+-yaw_deg`` (sinusoidal) at the framing's radius."""
    device = next(G.parameters()).device
    t = torch.arange(frames, dtype=torch.float32) / frames * 2 * math.pi
    yaw = torch.sin(t) * math.radians(yaw_deg)
    pitch = torch.full_like(yaw, math.radians(pitch_deg)) * torch.cos(t)
    cams = orbit_cameras(yaw, pitch, framing.radius, framing.target, framing.focal)
    ws = ws.to(device)
    return [to_uint8(render_views(G, ws, cams[i:i + 1].to(device), resolution)[0]) for i in range(frames)]


def write_video(path: Path, frames: list[np.ndarray], fps: int = 24) -> Path:
    """An H.264 mp4 (core.orbit_video's atomic writer, imageio-ffmpeg's bundled ffmpeg); a GIF beside it when
    the encoder is missing or refuses the frame size. Returns the file written. The output folder was checked
    (:func:`check_output_folder`), so an older ``path`` is replaced. A full disk or a failing renderer raises."""
    from core.orbit_video import write_orbit_video

    try:
        write_orbit_video(frames, path, fps, overwrite=True)
        return path
    except (ImportError, ValueError):  # no ffmpeg backend, or a frame size H.264 refuses: a GIF always works
        import imageio.v2 as imageio

        gif = path.with_suffix(".gif")
        imageio.mimsave(gif, frames, duration=1.0 / fps)
        return gif


def write_head(path: Path, G: Generator, ws: torch.Tensor) -> Path:
    """The Gaussians of ``ws`` as a 3DGS .ply."""
    with torch.no_grad():
        gaussians = G.synthesis(ws.to(next(G.parameters()).device)).gaussians
    write_ply(path, gaussians[0])
    return path


RESULT_NAMES = ("aligned", "cameras.json", "pivot.npz", "generator_tuned.safetensors", "head.ply", "renders",
                "orbit.mp4", "orbit.gif", "report.json")


class OutputExistsError(FileExistsError):
    """The output folder already holds an inversion's results; ``str(err)`` says which and what to do."""


def existing_results(out: str | os.PathLike) -> list[str]:
    """The names of :data:`RESULT_NAMES` already present in ``out`` (empty when it is absent)."""
    out = Path(out)
    return [n for n in RESULT_NAMES if (out / n).exists()]


def check_output_folder(out: str | os.PathLike, overwrite: bool = False) -> Path:
    """``out`` as a Path if results may be written there: it holds none yet, or ``overwrite`` is set; else
    :class:`OutputExistsError` naming the files (nothing a user has is replaced without being asked)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out} is a file, not a folder; choose another output folder")
    found = existing_results(out)
    if found and not overwrite:
        raise OutputExistsError(
            f"{out} already holds inversion results ({', '.join(found)}); choose another output folder, "
            f"or pass --overwrite to replace them")
    return out


def remove_results(out: Path) -> None:
    """Delete the :data:`RESULT_NAMES` in ``out`` (files, and the ``aligned``/``renders`` folders the results
    write); only after :func:`check_output_folder` allowed it (``--overwrite``)."""
    import shutil

    for name in existing_results(out):
        target = out / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()


def free_folder(path: str | os.PathLike) -> Path:
    """``path`` if it holds no results (absent, empty or without any :data:`RESULT_NAMES`), else the first free
    ``path_2``, ``path_3``, ... (the viewer's "Save everything": results are never overwritten)."""
    path = Path(path)
    if not existing_results(path) and not (path.exists() and not path.is_dir()):
        return path
    n = 2
    while (path.parent / f"{path.name}_{n}").exists():
        n += 1
    return path.parent / f"{path.name}_{n}"


def write_results(out: str | os.PathLike, G: Generator, result: InversionResult, settings: InversionSettings, *,
                  model: str, model_format: str | None = None, device: str | None = None, orbit_count: int = 48,
                  extra: dict | None = None, overwrite: bool = False) -> dict[str, Path]:
    """Write every output of the module docstring for one finished (or cancelled) run of the pipeline.

    Args:
        out: the output folder (created). With ``overwrite=False`` a folder that already holds results raises
            :class:`OutputExistsError` before anything is written.
        G: the original generator (the one the pipeline ran on).
        result: the pipeline's :class:`inversion.pipeline.InversionResult`; needs stage 1's result. Stage 2's
            tuned generator is used for head.ply, the stage-2 renders and the video when present.
        settings: the run's settings (recorded in report.json; the framing sets the orbit).
        model, model_format, device: recorded in report.json (and the tuned generator's metadata).
        orbit_count: frames of the orbit video (0: none).
        extra: more top-level report.json keys (e.g. who saved it).

    Returns:
        Output name -> path of what was written.
    """
    if result.latent is None or result.target is None:
        raise ValueError("nothing to write: stage 1 has no result")
    out = check_output_folder(out, overwrite)
    remove_results(out)  # with overwrite: nothing of an earlier run stays beside this one's results
    out.mkdir(parents=True, exist_ok=True)
    aligned, latent, framing = result.preprocess.aligned, result.latent, settings.preprocess.framing
    names = tuple(a.name for a in aligned)
    res = aligned[0].image.shape[0]
    initial = Cameras(torch.stack([a.camera.camera.cam2world for a in aligned]),
                      torch.stack([a.camera.camera.intrinsics for a in aligned]))
    paths: dict[str, Path] = {"aligned": write_aligned(out, aligned)[0].parent}
    records = camera_records(names, initial, latent.cameras, framing.target)
    paths["cameras"] = write_json(out / "cameras.json", records)
    pivot = latent.ws.expand(-1, G.config.num_ws, -1)  # the file holds one w per block, in W too
    paths["pivot"] = write_pivot(out / "pivot.npz", pivot, latent.space, latent.cameras, names)
    paths["renders"] = render_inputs(out, G, latent.ws, latent.cameras, names, res, "stage1")[0].parent
    final = G
    if result.tuning is not None:
        final = result.tuning.generator.eval()
        from core.model_files import save_generator

        paths["generator"] = save_generator(final, out / "generator_tuned.safetensors",
                                            metadata={"inversion": {"photos": list(names), "model": model}})
        render_inputs(out, final, latent.ws, latent.cameras, names, res, "stage2")
    paths["ply"] = write_head(out / "head.ply", final, latent.ws)
    if orbit_count > 0:
        frames = orbit_frames(final, latent.ws, framing, res, orbit_count)
        paths["video"] = write_video(out / "orbit.mp4", frames)
    report = build_report(result, settings, model=model, model_format=model_format, device=device, extra=extra)
    report["outputs"] = {k: str(v) for k, v in paths.items()} | {"report": str(out / "report.json")}
    paths["report"] = write_json(out / "report.json", report)
    return paths
