"""The Inversion panel's inputs: photo paths checked before use, thumbnails of the aligned crops, and the
desktop's multi-file dialog."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from inversion.photos import PHOTO_SUFFIXES
from ui_state.inversion import PhotoThumb

THUMB = 112  # px, side of the preprocessed thumbnails
IMAGE_FILTERS = (("Images", PHOTO_SUFFIXES),)


def check_photos(paths, known: set[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """``(new paths to add, [(message, level), ...])`` for the typed or chosen ``paths`` (``known``: already
    inputs). Missing files and folders are refused, repeats skipped."""
    added, said = [], []
    for raw in paths:
        path = os.path.expanduser(str(raw).strip())
        if not path:
            continue
        if not os.path.exists(path):
            said.append((f"{path}: no such file", "error"))
        elif os.path.isdir(path):
            said.append((f"{path}: is a folder, not an image", "error"))
        elif path in known or path in added:
            said.append((f"{os.path.basename(path)} is already an input", "warning"))
        else:
            added.append(path)
            said.append((f"added {os.path.basename(path)}", "info"))
    return added, said


def thumbnail(image: np.ndarray, landmarks: np.ndarray, size: int = THUMB) -> np.ndarray:
    """``uint8 [size, size, 3]``: the aligned crop with its five landmarks (normalised ``[5, 2]``) drawn as
    red crosses."""
    from PIL import Image

    img = np.array(Image.fromarray(image).resize((size, size), Image.BILINEAR))
    for x, y in np.asarray(landmarks, dtype=np.float64) * size:
        cx, cy = int(round(x)), int(round(y))
        for d in range(-3, 4):
            for px, py in ((cx + d, cy), (cx, cy + d)):
                if 0 <= px < size and 0 <= py < size:
                    img[py, px] = (255, 40, 40)
    return img


def photo_thumb(aligned, texture) -> PhotoThumb:
    """Upload ``aligned``'s (``inversion.preprocess.AlignedPhoto``) thumbnail into ``texture``; the panel's record."""
    img = thumbnail(aligned.image, aligned.landmarks)
    texture.upload(img)
    return PhotoThumb(aligned.name, texture.texture_id, (img.shape[1], img.shape[0]), float(aligned.camera.yaw_deg),
                      float(aligned.camera.pitch_deg), aligned.message or "")


class PhotoDialog:
    """The open dialog for several photos (the desktop's, or the in-app one: ``viewer.window.file_dialog``)."""

    def __init__(self) -> None:
        from viewer.window.file_dialog import OpenDialog

        self._dialog = OpenDialog("inversion_photos", "Choose photos of one person", IMAGE_FILTERS,
                                  multiselect=True)

    def open(self) -> str:
        """Open it; returns '' or why it could not."""
        try:
            self._dialog.open()
            return ""
        except Exception as e:  # noqa: BLE001
            return f"no file dialog here ({e}); type the paths instead, separated by ';'"

    def chosen(self) -> list[str]:
        """The files chosen since the last call (GUI thread, every frame; draws the in-app dialog)."""
        return self._dialog.chosen()

    @property
    def is_open(self) -> bool:
        return self._dialog.is_open

    def close(self) -> None:
        self._dialog.close()
