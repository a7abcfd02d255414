"""The Inversion panel's live webcam: a job thread streaming ``inversion.webcam.camera_frames`` (the studio's one
camera reader) while the webcam section is open, the newest frame kept for the preview and for "Take picture".

The camera is opened when :meth:`WebcamFeed.poll` sees the section open and released (the job ends, the reader
closes) when it sees it closed. A camera that cannot be opened is reported once, as a plain sentence, and not
retried until the section is closed and opened again.
"""

from __future__ import annotations

import threading

import numpy as np

from viewer.jobs import JobContext, JobRunner

JOB = "inversion_webcam"


class WebcamFeed:
    """GUI-thread side of the webcam (see the module docstring). ``status``: "" or a line for the user."""

    def __init__(self, jobs: JobRunner, device: str | None = None, mirror: bool = True) -> None:
        from inversion.webcam import DEFAULT_DEVICE

        self.jobs, self.device, self.mirror = jobs, device or DEFAULT_DEVICE, mirror
        self.status = ""
        self._lock = threading.Lock()
        self._frame: np.ndarray | None = None
        self._frame_count = 0
        self._failed = False
        self._running = False

    @property
    def frame(self) -> np.ndarray | None:
        """The newest frame, ``uint8 [H, W, 3]`` (mirrored like a preview), or None."""
        with self._lock:
            return self._frame

    @property
    def frame_count(self) -> int:
        with self._lock:
            return self._frame_count

    def poll(self, section_open: bool) -> None:
        """Open the camera while ``section_open``; release it when the section closes."""
        if not section_open:
            if self._running:
                self.jobs.cancel(JOB)
            self._running = self.jobs.running(JOB)
            self._failed = False
            if not self._running:
                with self._lock:
                    self._frame = None
            return
        self._running = self.jobs.running(JOB)
        if self._running or self._failed:
            return
        self.status = f"opening the camera {self.device}..."
        self._failed = True  # until the job reports frames; a closed-and-reopened section retries
        self._running = self.jobs.start(JOB, self._read, on_done=self._done, output=self.device)

    def _read(self, ctx: JobContext) -> str:
        from inversion.webcam import WebcamError, camera_frames

        frames = camera_frames(self.device, self.mirror)
        try:
            for img in frames:
                if ctx.cancelled:
                    return "camera closed"
                with self._lock:
                    self._frame = img
                    self._frame_count += 1
                ctx.progress(0.0, "live")
        except WebcamError as exc:
            return f"No camera found: {exc}" if str(exc).startswith("cannot open") else str(exc)
        finally:
            frames.close()
        return "the camera stopped sending frames"

    def _done(self, message: str) -> None:
        self._running = False
        if message != "camera closed":
            self.status = message

    def live(self) -> bool:
        """Frames are arriving."""
        if self.frame is not None and self.status.startswith("opening"):
            self.status = ""
        return self.frame is not None

    def release(self) -> None:
        self.jobs.cancel(JOB)
