"""Webcam frames as inversion inputs, through imageio's ffmpeg reader (no OpenCV).

The viewer may grab frames any way it likes and pass them to :func:`inversion.photos.photo_from_array`;
:func:`grab_frames` is the plain-Python way for the CLI and scripts. Frames are mirrored by default, as a
webcam preview shows them (the person sees themself as in a mirror); the inversion does not care either way.
"""

from __future__ import annotations

from inversion.photos import Photo, photo_from_array


class WebcamError(RuntimeError):
    """The camera could not be opened or read; ``str(err)`` says which and why."""


def grab_frames(count: int = 1, device: str = "<video0>", skip: int = 5, mirror: bool = True) -> list[Photo]:
    """Read ``count`` frames from ``device`` (imageio's name: ``"<video0>"`` is the first camera), dropping the
    first ``skip`` frames (auto exposure settles) and taking every ``skip + 1``-th after that.

    Returns:
        ``count`` :class:`Photo` objects named ``"webcam 0"``, ``"webcam 1"``, ...
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    try:
        import imageio.v2 as imageio

        reader = imageio.get_reader(device)
    except Exception as exc:  # imageio raises IndexError/OSError/RuntimeError depending on the platform
        raise WebcamError(f"cannot open the camera {device}: {exc}") from None
    photos: list[Photo] = []
    try:
        for i, frame in enumerate(reader):
            if i < skip or (i - skip) % (skip + 1):
                continue
            photos.append(photo_from_array(frame[:, ::-1] if mirror else frame, f"webcam {len(photos)}"))
            if len(photos) == count:
                break
    except Exception as exc:
        raise WebcamError(f"reading the camera {device} failed after {len(photos)} frames: {exc}") from None
    finally:
        reader.close()
    if len(photos) < count:
        raise WebcamError(f"the camera {device} stopped after {len(photos)} of {count} frames")
    return photos
