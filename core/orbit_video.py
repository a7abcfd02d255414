"""Turntable (orbit) videos of a Gaussian scene: settings, frame rendering, atomic .mp4 writing, and its CLI (:mod:`core.orbit_video_cli`).

Cameras circle the origin (the head's centre) at ``radius``, looking at it, in the :mod:`core.camera`
conventions: yaw 0 is the frontal view from +z, positive yaw moves the camera toward +x, elevation is the
camera's pitch above the horizontal plane. Frame ``i`` of ``F`` has yaw
``start_yaw_deg + 360 * turns * i / F``, so a whole number of turns loops without a repeated frame.

Writing goes through imageio's FFMPEG plugin (imageio-ffmpeg): H.264 (libx264), yuv420p (plays everywhere;
needs even width and height), into a hidden temporary file that is renamed over the target only after the
encoder finished. A cancelled or failed write removes it, so no partial .mp4 is ever left.

CLI::

    python -m core.orbit_video --model G.safetensors --seed 7 --psi 0.7 --out head.mp4 --frames 120
    python -m core.orbit_video --ply scene.ply --out scene.mp4 --resolution 1024 --elevation-deg 10
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import uuid
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Protocol

import numpy as np
import torch

from core.camera import (
    DEFAULT_FOCAL,
    DEFAULT_RADIUS,
    Cameras,
    focal_from_fov_deg,
    fov_deg_from_focal,
    orbit_cameras,
)
from core.gaussians import GaussianSet
from core.render import Backend, render

SceneSource = GaussianSet | Callable[[int], GaussianSet]
ProgressFn = Callable[[int, "int | None"], None]
MAX_RESOLUTION = 8192


class CancelFlag(Protocol):
    """Anything with ``is_set()``, e.g. :class:`threading.Event`."""

    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class OrbitVideoSettings:
    """Attributes:
        frames: number of frames (>= 1).
        fps: frames per second (> 0).
        radius: camera distance from the origin, scene units (> 0); 2.7 is the CGS-GAN training radius.
        elevation_deg: camera pitch above the horizontal plane, degrees, in (-90, 90).
        resolution: square image size in pixels, even (H.264 yuv420p), 2..8192.
        fov_deg: vertical (= horizontal) field of view, degrees, in (0, 180); default ~13.37 (focal 4.2647).
        background: RGB in [0, 1] composited behind the splats.
        turns: revolutions over the whole video (may be fractional or negative for the other direction).
        start_yaw_deg: yaw of the first frame, degrees (0 = frontal).
    """

    frames: int = 120
    fps: float = 30.0
    radius: float = DEFAULT_RADIUS
    elevation_deg: float = 0.0
    resolution: int = 512
    fov_deg: float = fov_deg_from_focal(DEFAULT_FOCAL)
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    turns: float = 1.0
    start_yaw_deg: float = 0.0

    def __post_init__(self) -> None:
        def bad(name: str, rule: str) -> ValueError:
            return ValueError(f"OrbitVideoSettings.{name} must be {rule}, got {getattr(self, name)!r}")

        for name in ("frames", "resolution"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise bad(name, "an int")
        for name in ("fps", "radius", "elevation_deg", "fov_deg", "turns", "start_yaw_deg"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise bad(name, "a finite number")
        if self.frames < 1:
            raise bad("frames", ">= 1")
        if self.fps <= 0:
            raise bad("fps", "> 0")
        if self.radius <= 0:
            raise bad("radius", "> 0")
        if not -90.0 < self.elevation_deg < 90.0:
            raise bad("elevation_deg", "in (-90, 90)")
        if not 2 <= self.resolution <= MAX_RESOLUTION or self.resolution % 2:
            raise bad("resolution", f"even and in 2..{MAX_RESOLUTION} (H.264 yuv420p needs even sizes)")
        if not 0.0 < self.fov_deg < 180.0:
            raise bad("fov_deg", "in (0, 180)")
        bg = self.background
        unit = lambda c: isinstance(c, (int, float)) and not isinstance(c, bool) and 0.0 <= c <= 1.0  # noqa: E731
        if not isinstance(bg, tuple) or len(bg) != 3 or not all(unit(c) for c in bg):
            raise bad("background", "a tuple of 3 numbers in [0, 1]")

    def yaws_deg(self) -> np.ndarray:
        """``[frames]`` float64 yaw of each frame, degrees."""
        return self.start_yaw_deg + 360.0 * self.turns * np.arange(self.frames) / self.frames


def orbit_video_cameras(settings: OrbitVideoSettings) -> Cameras:
    """``[frames]`` cameras on the orbit (float32, CPU), looking at the origin."""
    yaw = torch.from_numpy(np.radians(settings.yaws_deg()))
    return orbit_cameras(yaw, math.radians(settings.elevation_deg), settings.radius,
                         focal=focal_from_fov_deg(settings.fov_deg), dtype=torch.float64).to(torch.float32)


def orbit_frames(source: SceneSource, settings: OrbitVideoSettings, device: torch.device | str = "cpu",
                 backend: Backend = "auto") -> Iterator[np.ndarray]:
    """Render the orbit one frame at a time (lazy: nothing is rendered until iterated).

    Args:
        source: one scene (batch shape ``[]``), or ``fn(frame_index) -> GaussianSet`` for animated scenes.
        settings: the orbit and image settings.
        device: where to render; the scene is moved there. ``backend="auto"`` picks gsplat on CUDA (float32)
            and the pure-torch reference elsewhere (see :func:`core.render.choose_backend`).

    Yields:
        ``[H, W, 3]`` uint8 RGB frames, H = W = ``settings.resolution``, row 0 at the top.
    """
    if not isinstance(settings, OrbitVideoSettings):
        raise TypeError(f"settings must be OrbitVideoSettings, got {type(settings).__name__}")
    fixed = source if isinstance(source, GaussianSet) else None
    if fixed is None and not callable(source):
        raise TypeError("source must be a GaussianSet or a callable frame -> GaussianSet, "
                        f"got {type(source).__name__}")
    cams = orbit_video_cameras(settings).to(device)
    if fixed is not None:
        fixed = _check_scene(fixed).to(device)
    res = settings.resolution
    for i in range(settings.frames):
        gs = fixed if fixed is not None else _check_scene(source(i)).to(device)  # type: ignore[operator]
        with torch.no_grad():
            out = render(gs, cams[i], res, res, background=settings.background, mode="rgb", backend=backend)
        yield (out.color.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).cpu().numpy()


def _check_scene(gs: object) -> GaussianSet:
    if not isinstance(gs, GaussianSet):
        raise TypeError(f"expected a GaussianSet, got {type(gs).__name__}")
    if gs.batch_shape != ():
        raise ValueError("an orbit video renders one scene (batch shape []), "
                         f"got batch shape {list(gs.batch_shape)}")
    return gs


# ---------------------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class VideoWriteResult:
    """Attributes:
        path: the finished video, or ``None`` when cancelled (nothing was written).
        frames_written: frames encoded before finishing or cancelling.
        cancelled: whether ``cancel`` stopped the write.
    """

    path: str | None
    frames_written: int
    cancelled: bool


VIDEO_SUFFIX = ".mp4"


def check_video_name(path: str | os.PathLike) -> None:
    """``ValueError`` unless ``path`` names an ``.mp4`` (H.264 through imageio-ffmpeg is the one format written)."""
    if not os.fspath(path).lower().endswith(VIDEO_SUFFIX):
        raise ValueError(f"{os.fspath(path)}: the video file name must end in {VIDEO_SUFFIX}")


class VideoFile:
    """An H.264 .mp4 written one frame at a time, atomically: frames go to a hidden temporary file that is
    renamed over ``path`` by :meth:`finish`; :meth:`abort` (or leaving a ``with`` block by an exception)
    removes it, so no partial .mp4 is ever left under the target's name.

    Use this when the frames come one per turn of a loop you do not own (the viewer's render worker);
    :func:`write_orbit_video` is the one-call form.

    Args:
        path: target ``.mp4``; its directory must exist; an existing file is replaced only by :meth:`finish`.
        fps: frames per second (> 0). quality: imageio's 0..10 variable-bitrate quality (10 best).
        overwrite: replace an existing ``path``; False raises ``FileExistsError`` (checked here, and again
            atomically when :meth:`finish` puts the finished video in place).
    """

    def __init__(self, path: str | os.PathLike, fps: float = 30.0, quality: float = 8.0, *,
                 overwrite: bool = False) -> None:
        import imageio.v2 as imageio

        path = os.fspath(path)
        check_video_name(path)
        directory, base = os.path.split(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"{path}: directory {directory} does not exist")
        if not overwrite and os.path.lexists(path):
            raise existing_video_error(path)
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be a finite number > 0, got {fps!r}")
        self.path, self.overwrite = path, overwrite
        self.frames_written = 0
        self._size: tuple[int, int] | None = None
        # Hidden, and named as a temporary (imageio picks the encoder by the .mp4 ending): only a hard kill
        # mid-write can leave it behind, never under the target's name.
        self._tmp = os.path.join(directory, f".{base}.{uuid.uuid4().hex[:12]}.tmp.mp4")
        self._writer = imageio.get_writer(self._tmp, format="FFMPEG", mode="I", fps=float(fps), codec="libx264",
                                          pixelformat="yuv420p", quality=quality, macro_block_size=2,
                                          ffmpeg_log_level="error")

    def append(self, frame: np.ndarray) -> None:
        """Encode one ``[H, W, 3]`` uint8 frame (every frame the same even size); on a bad frame the file is
        aborted and ``ValueError`` raised."""
        try:
            self._size = _check_frame(frame, self.frames_written, self._size)
            self._writer.append_data(frame)
        except BaseException:
            self.abort()
            raise
        self.frames_written += 1

    def finish(self) -> str:
        """Close the encoder and move the video to its name; returns the path. ``ValueError`` (and no file)
        when no frame was written."""
        try:
            self._writer.close()
            if self.frames_written == 0:
                raise ValueError(f"{self.path}: no frames to write")
            if self.overwrite:
                os.replace(self._tmp, self.path)
            else:
                _publish_new(self._tmp, self.path)
        except BaseException:
            _remove(self._tmp)
            raise
        return self.path

    def abort(self) -> None:
        """Stop and remove the temporary file (the target is untouched)."""
        with contextlib.suppress(Exception):
            self._writer.close()
        _remove(self._tmp)

    def __enter__(self) -> VideoFile:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


def write_orbit_video(frames: Iterable[np.ndarray], path: str | os.PathLike, fps: float = 30.0, *,
                      total: int | None = None, progress: ProgressFn | None = None,
                      cancel: CancelFlag | None = None, quality: float = 8.0, overwrite: bool = False,
                      ) -> VideoWriteResult:
    """Encode ``frames`` (``[H, W, 3]`` uint8, all the same even size) into an H.264 .mp4 at ``path``, atomically
    (through :class:`VideoFile`).

    Args:
        frames: any iterable, consumed lazily (pass :func:`orbit_frames` to render while encoding).
        path: target ``.mp4``; its directory must exist; an existing file is replaced only on success.
        fps: frames per second (> 0).
        total: expected frame count, passed to ``progress`` (``None`` if unknown).
        progress: called as ``progress(frames_done, total)`` after every frame (on the calling thread).
        cancel: checked before every frame; once set, the write stops, the temporary file is removed and
            the result says ``cancelled`` (``path`` untouched).
        quality: imageio's 0..10 variable-bitrate quality (10 best).
        overwrite: replace an existing ``path``; False raises ``FileExistsError`` (checked before encoding,
            and again atomically when the finished video is put in place).

    Raises:
        ValueError: bad arguments, a malformed frame, or no frames at all. Errors from ``frames`` or the
            encoder propagate; in every failing case the temporary file is removed.
    """
    with VideoFile(path, fps, quality, overwrite=overwrite) as video:
        for frame in frames:
            if cancel is not None and cancel.is_set():
                break
            video.append(frame)
            if progress is not None:
                progress(video.frames_written, total)
        if cancel is not None and cancel.is_set():
            video.abort()
            return VideoWriteResult(None, video.frames_written, True)
        return VideoWriteResult(video.finish(), video.frames_written, False)


def existing_video_error(path: str) -> FileExistsError:
    return FileExistsError(f"{path} exists already; not replaced (pass --overwrite to replace it, or choose "
                           "another name)")


def _publish_new(tmp: str, path: str) -> None:
    """Give ``tmp`` the name ``path`` only if nothing has it: a hard link fails atomically when the name is
    taken; file systems without hard links get a check, then a rename."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise existing_video_error(path) from None
    except OSError:
        if os.path.lexists(path):
            raise existing_video_error(path) from None
        os.replace(tmp, path)
        return
    _remove(tmp)


def _check_frame(frame: object, index: int, size: tuple[int, int] | None) -> tuple[int, int]:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        desc = f"{frame.dtype} {list(frame.shape)}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ValueError(f"frame {index} must be a uint8 [H, W, 3] array, got {desc}")
    h, w = frame.shape[:2]
    if h % 2 or w % 2 or h == 0:
        raise ValueError(f"frame {index} is {w}x{h}; H.264 yuv420p needs an even width and height")
    if size is not None and (h, w) != size:
        raise ValueError(f"frame {index} is {w}x{h} but frame 0 was {size[1]}x{size[0]}")
    return h, w


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def main(argv: list[str] | None = None) -> int:
    """``python -m core.orbit_video``: the command line lives in :mod:`core.orbit_video_cli`."""
    from core.orbit_video_cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
