"""Saving what is on screen: the edited Gaussians as a standard 3DGS ``.ply`` (a render-worker job: the scene
lives on the device) and the current view as ``.png`` (a thread job). Files are written atomically and never
overwrite an existing file: a taken name gets ``_2``, ``_3``, ... before its extension."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ui_state.actions import SaveImage, SavePly
from viewer.features.base import Feature, Studio
from viewer.jobs import JobContext


def free_path(path: str | os.PathLike) -> Path:
    """``path`` if no file has that name, else ``stem_2.ext``, ``stem_3.ext``, ... (``.latents.npz`` counts as
    one extension)."""
    p = Path(path).expanduser()
    if not p.exists():
        return p
    suffix = "".join(p.suffixes[-2:]) if p.name.endswith(".latents.npz") else p.suffix
    stem = p.name[: len(p.name) - len(suffix)]
    n = 2
    while (q := p.with_name(f"{stem}_{n}{suffix}")).exists():
        n += 1
    return q


def thumbnail(image: np.ndarray, size: int) -> np.ndarray:
    """A ``[size, size, 3]`` uint8 thumbnail (nearest-neighbour; centre crop to square)."""
    h, w = image.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    idx = (np.arange(size) * s // size)
    return np.ascontiguousarray(image[y0 + idx][:, x0 + idx])


class Exports(Feature):
    def __init__(self, studio: Studio) -> None:
        self.studio = studio

    def handlers(self):
        return {SavePly: self.save_ply, SaveImage: self.save_image}

    def _said(self, path: str) -> None:
        self.studio.say(f"saved {path}")

    def save_ply(self, a: SavePly) -> None:
        result = self.studio.picture.result
        scene = result.scene if result is not None else None
        if scene is None:
            self.studio.say("nothing to save yet: no Gaussians on screen", "warning")
            return
        target = free_path(a.path)

        def work(ctx: JobContext, gpu) -> str:
            from core.ply import write_ply

            ctx.progress(0.1, "writing")
            target.parent.mkdir(parents=True, exist_ok=True)
            write_ply(target, scene.detach().to("cpu"))
            return str(target)

        if not self.studio.jobs.start_on_worker("save_ply", work, on_done=self._said, output=str(target)):
            self.studio.say("save_ply is still running; wait for it to finish", "warning")

    def save_image(self, a: SaveImage) -> None:
        image = self.studio.picture.current_image()
        if image is None:
            self.studio.say("nothing to save yet: no full-resolution image", "warning")
            return
        target = free_path(a.path)
        image = np.array(image, copy=True)

        def work(ctx: JobContext) -> str:
            from PIL import Image

            from core.atomic_file import atomic_write

            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(target) as f:
                Image.fromarray(image).save(f, format="PNG")
            return str(target)

        if not self.studio.jobs.start("save_image", work, on_done=self._said, output=str(target)):
            self.studio.say("save_image is still running; wait for it to finish", "warning")
