"""The Inversion panel's inputs, GUI-thread side: the chosen photos (paths and webcam pictures), the open dialog,
the live webcam with its preview texture, and the thumbnails of the preprocessed photos."""

from __future__ import annotations

import os
from typing import Any, Callable

from ui_state.inversion import PhotoThumb
from viewer.features.inversion.photos import PhotoDialog, check_photos, photo_thumb
from viewer.features.inversion.webcam import WebcamFeed
from viewer.jobs import JobRunner

Said = list[tuple[str, str]]  # (message, level)


class PhotoInputs:
    """``sources``: photo paths (str) and webcam pictures (``inversion.photos.Photo``), in order.
    ``texture``: makes GL textures (thumbnails, the webcam preview)."""

    def __init__(self, jobs: JobRunner, texture: Callable[[], Any]) -> None:
        self.sources: list = []
        self._texture = texture
        self.webcam = WebcamFeed(jobs)
        self._webcam_texture = None
        self._webcam_seen = 0
        self._webcam_pictures = 0
        self.dialog = PhotoDialog()
        self._thumbs: list[tuple[Any, PhotoThumb]] = []

    # ------------------------------------------------------------------ choosing

    def add(self, paths) -> Said:
        added, said = check_photos(paths, {s for s in self.sources if isinstance(s, str)})
        self.sources += added
        return said

    def browse(self) -> Said:
        problem = self.dialog.open()
        return [(problem, "warning")] if problem else []

    def take_picture(self) -> Said:
        frame = self.webcam.frame
        if frame is None:
            return [(self.webcam.status or "no webcam picture: open the Webcam section first", "error")]
        from inversion.photos import PhotoError, photo_from_array

        try:
            photo = photo_from_array(frame, f"webcam {self._webcam_pictures}")
        except PhotoError as e:
            return [(str(e), "error")]
        self._webcam_pictures += 1
        self.sources.append(photo)
        return [(f"added {photo.name}", "info")]

    # ------------------------------------------------------------------ per frame

    def poll(self, webcam_open: bool) -> tuple[Said, bool]:
        """Webcam and dialog: ``(what to say, something new to show)``."""
        changed = False
        self.webcam.poll(webcam_open)
        if self.webcam.live() and self.webcam.frame_count != self._webcam_seen:
            self._webcam_seen = self.webcam.frame_count
            if self._webcam_texture is None:
                self._webcam_texture = self._texture()
            self._webcam_texture.upload(self.webcam.frame)
            changed = True
        chosen = self.dialog.chosen()
        return (self.add(chosen) if chosen else []), changed

    def set_aligned(self, aligned) -> None:
        """Thumbnails of the preprocessed photos (``inversion.preprocess.AlignedPhoto`` list)."""
        self._release_thumbs()
        for al in aligned:
            tex = self._texture()
            self._thumbs.append((tex, photo_thumb(al, tex)))

    # ------------------------------------------------------------------ what the panel shows

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(os.path.basename(s) if isinstance(s, str) else s.name for s in self.sources)

    @property
    def thumbs(self) -> tuple[PhotoThumb, ...]:
        return tuple(t for _, t in self._thumbs)

    def webcam_preview(self) -> tuple[int, tuple[int, int]]:
        """``(texture, (w, h))`` of the live preview (0 when none)."""
        tex = self._webcam_texture
        if tex is None or self.webcam.frame is None:
            return 0, (0, 0)
        return tex.texture_id, tex.size

    # ------------------------------------------------------------------ cleaning up

    def _release_thumbs(self) -> None:
        for tex, _ in self._thumbs:
            tex.release()
        self._thumbs.clear()

    def release(self) -> None:
        self.webcam.release()
        self.dialog.close()
        self._release_thumbs()
        if self._webcam_texture is not None:
            self._webcam_texture.release()
            self._webcam_texture = None
