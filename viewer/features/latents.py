"""The Latent panel's latent: what is shown (``SetLatent``), the saved latents (a
``core.editing.saved_latents.LatentLibrary`` with thumbnails), and latent files.

A saved latent is the head on screen as core defines it: its base latent (``RenderResult.base_ws``), the slider
values, and a thumbnail. Restoring shows the base as an explicit w latent with the sliders as they were;
interpolating blends bases and slider values (``core.editing.interpolate``). Save latent / Load latent write
and read the same library format (``<name>.latents.npz``), the one latent file format of the studio.

The saved latents of a model file live beside it (``<model>.latents.npz``, ``core.editing.latents_path``): read
when the model opens, written (on a job thread, atomically) after every change, so they survive a restart. A
file there that belongs to another model (its SHA-256 differs) or cannot be read is never overwritten: the
list then lives for the session only and a message says why. Built-in and in-memory sources keep theirs for
the session.

The only writer of ``ui.latent.latent`` apart from the Latent widget itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ui_state.actions import (
    DeleteLatent, InterpolateLatents, LoadLatent, RestoreLatent, SaveCurrentLatent, SaveLatent, SetLatent,
)
from ui_state.info import SavedLatentInfo
from ui_state.render import LatentParams
from viewer.events import SourceChanged
from viewer.features.base import Feature, Studio
from viewer.features.exports import free_path, thumbnail
from viewer.features.sources import is_model_file
from viewer.jobs import JobContext

THUMB = 64
NO_MODEL_SHA = "0" * 64  # in-memory and built-in sources have no file to fingerprint


def w_latent(ws: np.ndarray, like: LatentParams | None = None) -> LatentParams:
    """An explicit w latent showing ``ws`` (any shape, flattened); keeps ``like``'s seed for the seed field."""
    values = tuple(float(v) for v in np.asarray(ws, np.float32).reshape(-1))
    seed = like.seed if like is not None else 0
    return LatentParams(seed=seed, space="w", latent=values, psi=1.0)


class Latents(Feature):
    def __init__(self, studio: Studio) -> None:
        from core.editing import LatentLibrary

        self.studio = studio
        self.library = LatentLibrary(NO_MODEL_SHA)
        self._textures: dict[str, object] = {}
        self._file: str | None = None  # where the library is kept (None: this session only)
        self._source = ""
        self._reading = False  # the saved_latents job reads the model's file
        self._to_read: str | None = None  # a model whose latents file is to be read
        self._writing = False  # a write_latents job was started and not yet checked
        self._dirty = False  # changed since last written

    def handlers(self):
        return {SetLatent: self.set_latent, SaveCurrentLatent: self.save_current, RestoreLatent: self.restore,
                DeleteLatent: self.delete, InterpolateLatents: self.interpolate, SaveLatent: self.save_file,
                LoadLatent: self.load_file}

    # ------------------------------------------------------------------ the library beside the model

    def source_changed(self, event: SourceChanged) -> None:
        if not event.opened:  # a feature's view of the same model (an inversion's tuned copy): same latents
            return
        from core.editing import LatentLibrary

        self._write_now()
        self.library, self._file, self._source, self._dirty = LatentLibrary(NO_MODEL_SHA), None, event.source, False
        self._reading = False
        self._publish()
        self._to_read = event.source if is_model_file(event.source) else None

    def _read(self, source: str) -> None:
        """Read ``<model>.latents.npz`` on a job thread (or start an empty library keyed by the model's hash)."""

        def work(ctx: JobContext):
            import os

            from core.editing import LatentLibrary, file_sha256, latents_path, load_library

            sha, path = file_sha256(source), latents_path(source)
            return sha, path, (load_library(path, sha) if os.path.exists(path) else LatentLibrary(sha))

        def done(result) -> None:
            sha, path, library = result
            if source != self._source:
                return
            self._reading = False
            for e in self.library.entries:  # saved while the file was read: keep them too
                if e.name not in library.names:
                    library = library.save(e.name, e.edit, e.thumbnail)
                    self._dirty = True
            self.library, self._file = library, path
            self._publish()

        self._reading = self.studio.jobs.start("saved_latents", work, on_done=done, output=source)

    def poll(self) -> None:
        jobs = self.studio.ui.info.jobs
        status = jobs.get("saved_latents")
        if self._reading and status is not None and status.error and not status.running:
            self._reading = False
            self.studio.say(f"saved latents of {Path(self._source).name} are kept for this session only: "
                            f"{status.error.strip().splitlines()[-1]}", "warning")
        status = jobs.get("write_latents")
        if self._writing and status is not None and not status.running:
            self._writing = False
            if status.error:
                self._file = None  # do not try again; the list stays for the session
                self.studio.say(f"could not save the latents beside the model: {status.error.strip().splitlines()[-1]}"
                                " (kept for this session only)", "warning")
        if self._to_read is not None and not self.studio.jobs.running("saved_latents"):
            source, self._to_read = self._to_read, None
            if source == self._source:
                self._read(source)
        if self._dirty and self._file is not None and not self.studio.jobs.running("write_latents"):
            self._write_now()

    def _write_now(self) -> None:
        if not (self._dirty and self._file is not None):
            return
        library, path = self.library, self._file
        self._dirty = False

        def work(ctx: JobContext) -> str:
            from core.editing import save_library

            save_library(library, path)
            return path

        if self.studio.jobs.start("write_latents", work, output=path):
            self._writing = True
        else:
            self._dirty = True  # the previous write still runs: write again after it

    def _changed(self) -> None:
        self._dirty = True
        self._publish()
        self._write_now()

    # ------------------------------------------------------------------ showing

    def set_latent(self, a: SetLatent) -> None:
        lat = self.studio.ui.latent
        lat.latent = a.latent
        lat.use_grid = a.latent.grid_xy is not None
        if a.sliders is not None:
            lat.sliders = {k: float(v) for k, v in a.sliders if v != 0.0}

    def _show(self, edit) -> None:
        """Show a ``core.editing.LatentEdit``: its base as an explicit w, its slider values."""
        self.set_latent(SetLatent(w_latent(edit.base.numpy(), self.studio.ui.latent.latent), edit.values))

    # ------------------------------------------------------------------ the saved latents

    def _current_edit(self):
        """The head on screen as a ``LatentEdit`` (base ws and slider values), or None (a .ply, nothing yet)."""
        import torch

        from core.editing import LatentEdit

        result = self.studio.picture.result
        if result is None or result.base_ws is None:
            return None
        values = tuple(result.params.sliders.values) if result.params is not None else ()
        return LatentEdit(torch.from_numpy(np.array(result.base_ws, np.float32)), values)

    def save_current(self, a: SaveCurrentLatent) -> None:
        edit = self._current_edit()
        if edit is None:
            self.studio.say("no latent on screen to save (a .ply scene has none)", "warning")
            return
        image = self.studio.picture.current_image()
        thumb = thumbnail(image, THUMB) if image is not None else None
        if a.name in self._textures:  # replaced: its thumbnail too
            self._textures.pop(a.name).release()
        self.library = self.library.save(a.name, edit, thumb)
        self._changed()

    def restore(self, a: RestoreLatent) -> None:
        self._show(self.library.get(a.name).edit)

    def delete(self, a: DeleteLatent) -> None:
        self.library = self.library.remove(a.name)
        self._changed()

    def interpolate(self, a: InterpolateLatents) -> None:
        from core.editing import interpolate

        self._show(interpolate(self.library.get(a.a).edit, self.library.get(a.b).edit, float(a.t)))

    def _publish(self) -> None:
        for name in [n for n in self._textures if n not in self.library.names]:
            self._textures.pop(name).release()
        entries = []
        for e in self.library.entries:
            tex = self._textures.get(e.name)
            if e.thumbnail is not None and tex is None:
                tex = self._textures[e.name] = self.studio.picture.new_texture()
                tex.upload(e.thumbnail)
            entries.append(SavedLatentInfo(e.name, tex.texture_id if tex is not None else 0,
                                           tuple(n for n, _ in e.edit.values)))
        self.studio.ui.info.saved_latents = tuple(entries)

    def release(self) -> None:
        self._write_now()
        self.studio.jobs.wait("write_latents", 5.0)
        for tex in self._textures.values():
            tex.release()
        self._textures.clear()

    # ------------------------------------------------------------------ files

    def save_file(self, a: SaveLatent) -> None:
        edit = self._current_edit()
        if edit is None:
            self.studio.say("no latent to save (a .ply scene has none)", "warning")
            return
        ui = self.studio.ui
        target = free_path(a.path)
        source = ui.load.current
        image = self.studio.picture.current_image()
        thumb = thumbnail(image, THUMB) if image is not None else None
        name = f"{Path(source).stem} seed {ui.latent.latent.seed}"

        def work(ctx: JobContext) -> str:
            from core.editing import LatentLibrary, file_sha256, save_library

            sha = file_sha256(source) if Path(source).is_file() else NO_MODEL_SHA
            target.parent.mkdir(parents=True, exist_ok=True)
            save_library(LatentLibrary(sha).save(name, edit, thumb), target)
            return str(target)

        if not self.studio.jobs.start("save_latent", work, on_done=lambda p: self.studio.say(f"saved {p}"),
                                      output=str(target)):
            self.studio.say("save_latent is still running; wait for it to finish", "warning")

    def load_file(self, a: LoadLatent) -> None:
        path = a.path

        def work(ctx: JobContext):
            from core.editing import load_latents

            return load_latents(path)  # a saved-latents file or one latent (e.g. an inversion's pivot.npz)

        def done(library) -> None:
            if not library.entries:
                self.studio.say(f"{path} holds no saved latents", "warning")
                return
            for e in library.entries:
                self.library = self.library.save(e.name, e.edit, e.thumbnail)
            self._changed()
            self._show(library.entries[0].edit)
            self.studio.say(f"loaded {len(library.entries)} latent(s) from {path}")

        if not self.studio.jobs.start("load_latent", work, on_done=done, output=path):
            self.studio.say("load_latent is still running; wait for it to finish", "warning")

