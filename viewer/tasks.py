"""The work behind the panels' actions, run on job threads (``viewer.jobs``): saving .ply/.png/.npz, loading a
latent, orbit videos, scene statistics, and the recent-files list.

Every ``start_*`` returns at once; results and errors show up in ``AppInfo.jobs`` (and, for loads, in the UI
state through the job's ``on_done`` callback, which runs on the GUI thread). Files are written atomically and
never overwrite an existing file: a taken name gets ``_2``, ``_3``, ... before its extension.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from viewer.jobs import JobContext, JobRunner
from viewer.state.actions import StartVideo
from viewer.state.render import RANDOM_SOURCES, LatentParams
from viewer.state.ui import Histogram, InspectData, UiState

MAX_RECENT_BYTES = 1 << 16
HISTOGRAM_LABELS = (("scale_log10", "scale (log10)"), ("opacity", "opacity"), ("r", "colour R"),
                    ("g", "colour G"), ("b", "colour B"), ("x", "position x"), ("y", "position y"),
                    ("z", "position z"))


# ---------------------------------------------------------------- sources and the recent list

def check_source(path: str) -> str:
    """'' if ``path`` can be opened (a file that exists, or a built-in source), else why not."""
    if path in RANDOM_SOURCES or path.startswith("memory:"):
        return ""
    if path.startswith("random:"):
        return f"unknown built-in source {path!r}; use one of {', '.join(RANDOM_SOURCES)}"
    p = Path(path).expanduser()
    if not p.exists():
        return f"file not found: {path}"
    if p.is_dir():
        return f"{path} is a folder; choose a .pkl or .ply file"
    return ""


def recent_file(state_dir: Path | None) -> Path:
    base = state_dir if state_dir is not None else Path(os.environ.get("XDG_CONFIG_HOME", "~/.config")) \
        .expanduser() / "splathead-studio"
    return Path(base) / "recent.json"


def read_recent(path: Path) -> list[str]:
    """The saved recent list; a missing, huge or corrupt file gives an empty list."""
    try:
        from core.regular_file import require_regular_file  # a FIFO would block read_text (issue 19)

        if require_regular_file(path).st_size > MAX_RECENT_BYTES:
            return []
        data = json.loads(path.read_text(encoding="utf-8"))
        return [str(x) for x in data if isinstance(x, str)][:12] if isinstance(data, list) else []
    except (OSError, ValueError):
        return []


def write_recent(path: Path, recent: list[str]) -> None:
    """Save the list (best effort: an unwritable config folder only loses the history)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(recent), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


# ---------------------------------------------------------------- saving

def free_path(path: str | os.PathLike) -> Path:
    """``path`` if no file has that name, else ``stem_2.ext``, ``stem_3.ext``, ..."""
    p = Path(path).expanduser()
    if not p.exists():
        return p
    n = 2
    while (q := p.with_name(f"{p.stem}_{n}{p.suffix}")).exists():
        n += 1
    return q


def _atomic_bytes_writer(target: Path):
    from core.atomic_file import atomic_write

    target.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(target)


def start_save_ply(jobs: JobRunner, ui: UiState, scene, path: str) -> None:
    if scene is None:
        ui.info.say("nothing to save yet: no Gaussians on screen", "warning")
        return
    target = free_path(path)

    def work(ctx: JobContext) -> str:
        from core.ply import write_ply

        ctx.progress(0.1, "writing")
        target.parent.mkdir(parents=True, exist_ok=True)
        write_ply(target, scene.detach().to("cpu"))
        return str(target)

    _start(jobs, ui, "save_ply", work, target)


def start_save_image(jobs: JobRunner, ui: UiState, image: np.ndarray | None, path: str) -> None:
    if image is None:
        ui.info.say("nothing to save yet: no full-resolution image", "warning")
        return
    target = free_path(path)
    image = np.array(image, copy=True)

    def work(ctx: JobContext) -> str:
        from PIL import Image

        with _atomic_bytes_writer(target) as f:
            Image.fromarray(image).save(f, format="PNG")
        return str(target)

    _start(jobs, ui, "save_image", work, target)


def start_save_latent(jobs: JobRunner, ui: UiState, path: str) -> None:
    ws = ui.info.current_ws
    if ws is None:
        ui.info.say("no latent to save (a .ply scene has none)", "warning")
        return
    target = free_path(path)
    lat = ui.latent.latent
    payload = {"ws": np.array(ws, np.float32), "seed": np.int64(lat.seed), "psi": np.float32(lat.psi),
               "space": np.str_(lat.space), "source": np.str_(ui.load.current)}

    def work(ctx: JobContext) -> str:
        with _atomic_bytes_writer(target) as f:
            np.savez(f, **payload)
        return str(target)

    _start(jobs, ui, "save_latent", work, target)


def read_latent(path: str | os.PathLike) -> np.ndarray:
    """``[num_ws, w_dim]`` (or ``[1, w_dim]``) float32 from a latent ``.npz`` (key ``ws`` or ``w``; a leading
    batch axis of 1 is dropped). Raises ``ValueError`` with the reason for anything else (shape and size are
    checked before the array is read: :func:`core.editing.latent_file.read_latent_file`)."""
    from core.editing.latent_file import read_latent_file

    try:
        return read_latent_file(path)
    except OSError as e:  # missing, a folder, a FIFO, unreadable
        raise ValueError(f"{path}: not a readable .npz ({type(e).__name__}: {e})") from e


def start_load_latent(jobs: JobRunner, ui: UiState, path: str) -> None:
    def done(ws: np.ndarray) -> None:
        ui.latent.latent = LatentParams(space="w", latent=tuple(float(v) for v in ws.reshape(-1)), psi=1.0)
        ui.latent.use_grid = False
        ui.info.say(f"loaded latent {list(ws.shape)} from {path}")

    _start(jobs, ui, "load_latent", lambda ctx: read_latent(path), Path(path), on_done=done)


# ---------------------------------------------------------------- video, statistics

def start_video(jobs: JobRunner, ui: UiState, scene, a: StartVideo) -> None:
    if scene is None:
        ui.info.say("nothing to film yet: no Gaussians on screen", "warning")
        return
    if not a.path.lower().endswith(".mp4"):
        ui.info.say(f"the video file must end in .mp4: {a.path}", "error")
        return
    target = free_path(a.path)
    device = ui.device
    background = ui.render.background
    fov = ui.camera.camera.fov_deg
    total = a.frames

    def work(ctx: JobContext) -> str:
        from core.orbit_video import OrbitVideoSettings, orbit_frames, write_orbit_video

        settings = OrbitVideoSettings(frames=a.frames, fps=a.fps, radius=a.radius, elevation_deg=a.elevation_deg,
                                      resolution=a.resolution, fov_deg=fov, background=background, turns=a.turns)
        target.parent.mkdir(parents=True, exist_ok=True)
        result = write_orbit_video(orbit_frames(scene, settings, device), target, a.fps, total=total,
                                   progress=lambda done, n: ctx.progress(done / max(1, n), f"frame {done}/{n}"),
                                   cancel=ctx._cancel)
        if result.cancelled:
            ctx.check()
        return str(target)

    _start(jobs, ui, "video", work, target)


def start_inspect(jobs: JobRunner, ui: UiState, scene) -> None:
    if jobs.running("inspect"):
        return

    def work(ctx: JobContext) -> InspectData:
        from core.scene_stats import scene_stats

        return inspect_data(scene_stats(scene.detach().to("cpu")))

    def done(data: InspectData) -> None:
        ui.info.inspect = data

    jobs.start("inspect", work, on_done=done)


def inspect_data(stats) -> InspectData:
    """``core.scene_stats.SceneStats`` -> the panel's plain :class:`InspectData`."""
    series = stats.series()
    hists = []
    for key, label in HISTOGRAM_LABELS:
        s = series.get(key)
        if s is None:
            continue
        hists.append((label, Histogram(np.asarray(s.histogram.counts, np.float32), np.asarray(s.histogram.edges),
                                       s.min, s.max, s.mean, s.std)))
    return InspectData(int(stats.num_gaussians), int(stats.sh_degree), int(stats.nonfinite_gaussians),
                       tuple(hists))


def thumbnail(image: np.ndarray, size: int) -> np.ndarray:
    """A ``[size, size, 3]`` uint8 thumbnail (nearest-neighbour; centre crop to square)."""
    h, w = image.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    idx = (np.arange(size) * s // size)
    return np.ascontiguousarray(image[y0 + idx][:, x0 + idx])


def _start(jobs: JobRunner, ui: UiState, name: str, work, target: Path, on_done=None) -> None:
    def finished(result) -> None:
        if on_done is not None:
            on_done(result)
        elif result:
            ui.info.say(f"saved {result}")

    if not jobs.start(name, work, on_done=finished, output=str(target)):
        ui.info.say(f"{name} is still running; wait for it to finish", "warning")
