"""Webcam frames as inversion inputs, through imageio's ffmpeg reader (no OpenCV).

:func:`camera_frames` is the one camera reader (the viewer's live preview streams it on a job thread);
:func:`grab_frames` takes a few pictures with it for the CLI and scripts. Frames are mirrored by default, as a
webcam preview shows them (the person sees themself as in a mirror); the inversion does not care either way.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from inversion.photos import Photo, photo_from_array

DEFAULT_DEVICE = "<video0>"  # imageio's name of the first camera


class WebcamError(RuntimeError):
    """The camera could not be opened or read; ``str(err)`` says which and why."""


def camera_frames(device: str = DEFAULT_DEVICE, mirror: bool = True) -> Iterator[np.ndarray]:
    """Frames of ``device`` as ``uint8 [H, W, 3]`` (mirrored like a preview by default) for as long as the
    caller iterates; closing the iterator releases the camera.

    Raises:
        WebcamError: the camera cannot be opened, or reading it failed (the message names the device).
    """
    try:
        import imageio.v2 as imageio

        reader = imageio.get_reader(device)
    except Exception as exc:  # imageio raises IndexError/OSError/RuntimeError depending on the platform
        raise WebcamError(f"cannot open the camera {device}: {_first_line(exc)}") from None
    try:
        for frame in reader:
            rgb = np.asarray(frame)[..., :3]
            yield np.ascontiguousarray(rgb[:, ::-1] if mirror else rgb)
    except GeneratorExit:
        raise
    except Exception as exc:
        raise WebcamError(f"reading the camera {device} failed: {_first_line(exc)}") from None
    finally:
        reader.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def grab_frames(count: int = 1, device: str = DEFAULT_DEVICE, skip: int = 5, mirror: bool = True) -> list[Photo]:
    """Read ``count`` frames from ``device`` (imageio's name: ``"<video0>"`` is the first camera), dropping the
    first ``skip`` frames (auto exposure settles) and taking every ``skip + 1``-th after that.

    Returns:
        ``count`` :class:`Photo` objects named ``"webcam 0"``, ``"webcam 1"``, ...
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    photos: list[Photo] = []
    frames = camera_frames(device, mirror)
    try:
        for i, frame in enumerate(frames):
            if i < skip or (i - skip) % (skip + 1):
                continue
            photos.append(photo_from_array(frame, f"webcam {len(photos)}"))
            if len(photos) == count:
                break
    except WebcamError as exc:
        if not photos:
            raise
        raise WebcamError(f"{exc} (after {len(photos)} pictures)") from None
    finally:
        frames.close()
    if len(photos) < count:
        raise WebcamError(f"the camera {device} stopped after {len(photos)} of {count} frames")
    return photos
