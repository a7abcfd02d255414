"""The app's side of the Latent panel's sliders (``core.editing``): PCA, attribute, user-taught and 3D-measured
directions of the open model.

- When the source changes, a job loads ``<model>.directions.npz`` (checked against the model's SHA-256); a model
  without one (or a built-in random generator) can get PCA sliders computed on request.
- Every frame the slider values (``UiState.latent.sliders``) become ``LatentParams.offset``: the sum of
  ``value * scale * unit`` over the sliders, per ws slot range (numpy, microseconds). The base latent is never
  touched: all sliders at 0 give the base exactly.
- Teaching: yes/no marks on the heads on screen, then a logistic boundary (``teach_direction``), saved into the
  directions file. Matching: a picked colour / typed width -> ``match_target`` on a job -> slider values.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from viewer.jobs import JobContext
from viewer.state.actions import ComputeDirections, MarkSample, MatchTarget, TeachSlider
from viewer.state.ui import DirectionsInfo, MeasuredInfo, SliderInfo

PCA_SAMPLES = 4096
PCA_COMPONENTS = 20


class LatentSliders:
    def __init__(self, app) -> None:
        self.app = app
        self.dirs = None  # core.editing.DirectionSet of the open model, or None
        self._source: str | None = None
        self._offset_key = None
        self._offset: tuple[float, ...] | None = None  # the sliders' offset, flattened [num_ws * w_dim]
        self._marks = {}  # attribute name -> core.editing.Marks

    # ------------------------------------------------------------------ per frame

    def poll(self) -> None:
        ui = self.app.ui
        if ui.load.current != self._source:
            self._source = ui.load.current
            self._load(self._source)
        st = ui.info.jobs.get("directions")
        if st is not None and st.error and not getattr(self, "_error_shown", True):
            self._error_shown = True
            ui.info.directions = DirectionsInfo(status=st.error.strip().splitlines()[-1], can_compute=True)
        self._apply_offset()
        name = ui.latent.teach_name.strip()
        marks = self._marks.get(name)
        counts = marks.counts if marks is not None else (0, 0)
        if ui.info.directions.marks != counts:
            ui.info.directions = replace(ui.info.directions, marks=counts)
        return None

    def _apply_offset(self) -> None:
        """Keep ``LatentParams.offset`` equal to the sliders' offset (recomputed only when they change)."""
        ui = self.app.ui
        values = {k: v for k, v in ui.latent.sliders.items() if v != 0.0}
        dirs = self.dirs
        key = (id(dirs), tuple(sorted(values.items())))
        if key != self._offset_key:
            self._offset_key, self._offset = key, None
            if dirs is not None and values:
                import torch

                from core.editing import apply_sliders

                known = {k: v for k, v in values.items() if k in dirs.names}
                off = apply_sliders(torch.zeros(dirs.num_ws, dirs.w_dim, dtype=torch.float64), dirs, known)
                self._offset = tuple(off.reshape(-1).tolist())
        if ui.latent.latent.offset != self._offset:
            ui.latent.latent = replace(ui.latent.latent, offset=self._offset)

    # ------------------------------------------------------------------ loading and computing

    def _load(self, source: str) -> None:
        ui = self.app.ui
        self.dirs = None
        self._marks = {}
        self._offset_key = None
        is_file = not (source.startswith("random:") or source.startswith("memory:")) and Path(source).is_file() \
            and source.lower().endswith((".safetensors", ".json", ".pkl"))
        if not is_file:
            ui.info.directions = DirectionsInfo(status=f"{source}: no directions file; compute PCA sliders here",
                                                can_compute=True)
            return

        def work(ctx: JobContext):
            from core.editing import find_directions

            return find_directions(source)

        def done(dirs) -> None:
            if self._source != source:
                return
            if dirs is None:
                ui.info.directions = DirectionsInfo(
                    status=f"no {Path(source).stem}.directions.npz beside the model: compute PCA sliders here, or "
                           f"all kinds with: python -m training.directions --model {source} --data <dataset>",
                    can_compute=True)
                return
            self._set(dirs, f"{len(dirs.directions)} sliders from {Path(source).stem}.directions.npz")

        if not self.app.jobs.start("directions", work, on_done=done):
            ui.info.say("directions are still loading", "warning")
        self._error_shown = False

    def _set(self, dirs, status: str) -> None:
        self.dirs = dirs
        self._offset_key = None
        sliders = tuple(SliderInfo(d.name, d.kind, d.note) for d in dirs.directions)
        measured = tuple(MeasuredInfo(m.name, m.quantity) for m in dirs.measurements)
        self.app.ui.info.directions = DirectionsInfo(sliders, measured, status, can_compute=True)
        known = set(dirs.names)
        self.app.ui.latent.sliders = {k: v for k, v in self.app.ui.latent.sliders.items() if k in known}

    def _generator_job(self, name: str, work, done, output: str = "") -> None:
        source = self.app.ui.load.current
        device = self.app.ui.device

        def run(ctx: JobContext):
            from viewer.render_worker import _load_source

            G = _load_source(source, device).obj if not source.startswith("memory:") else \
                self.app.worker._memory[source]
            return work(ctx, G, source)

        if not self.app.jobs.start(name, run, on_done=done, output=output):
            self.app.ui.info.say(f"{name} is already running", "warning")

    # ------------------------------------------------------------------ actions

    def handle(self, a) -> bool:
        ui = self.app.ui
        if isinstance(a, ComputeDirections):
            def work(ctx, G, source):
                from core.editing import file_sha256, pca_direction_set, save_directions
                from core.editing.direction_file import directions_path

                ctx.progress(0.1, "sampling w")
                is_file = Path(source).is_file()
                dirs = pca_direction_set(G, file_sha256(source) if is_file else "0" * 64, PCA_SAMPLES,
                                         PCA_COMPONENTS)
                if is_file:
                    save_directions(dirs, directions_path(source), model_file=source)
                return source, dirs

            def done(result) -> None:
                source, dirs = result
                if source == self._source:
                    self._set(dirs, f"{len(dirs.directions)} PCA sliders computed from {PCA_SAMPLES} samples")

            self._generator_job("pca", work, done)
            return True
        if isinstance(a, MarkSample):
            ws = ui.info.current_ws
            if ws is None:
                ui.info.say("no head on screen to mark", "warning")
                return True
            from core.editing import Marks

            marks = self._marks.get(a.name) or Marks(a.name)
            self._marks[a.name] = marks.add(np.asarray(ws), a.yes)
            return True
        if isinstance(a, TeachSlider):
            marks = self._marks.get(a.name)
            if self.dirs is None:
                ui.info.say("compute the model's directions first (they give the slider units)", "warning")
                return True
            if marks is None:
                ui.info.say(f"mark some heads yes/no for {a.name!r} first", "warning")
                return True
            try:
                from core.editing import teach_direction

                d = teach_direction(marks, self.dirs)
            except ValueError as e:
                ui.info.say(str(e), "error")
                return True
            dirs = self.dirs.without(a.name) if a.name in self.dirs.names else self.dirs
            dirs = dirs.with_directions([d])
            self._set(dirs, f"taught {a.name!r} from {sum(marks.counts)} marks")
            self._save(dirs)
            return True
        if isinstance(a, MatchTarget):
            if self.dirs is None:
                ui.info.say("this model has no measured directions", "warning")
                return True
            dirs = self.dirs
            base = ui.info.current_ws
            if base is None:
                return True
            values = dict(ui.latent.sliders)
            offset = ui.latent.latent.offset

            def work(ctx, G, source):
                import torch

                from core.editing import LatentEdit, match_target

                ctx.progress(0.1, f"matching {a.name}")
                b = torch.as_tensor(np.asarray(base), dtype=torch.float32)
                if offset is not None:  # the base without the current slider offsets
                    b = b - torch.as_tensor(np.asarray(offset, np.float32).reshape(b.shape))
                return match_target(G, LatentEdit(b, values), dirs, a.name, a.target)

            def done(match) -> None:
                ui.latent.sliders = dict(match.edit.slider_values)
                ui.info.say(f"{a.name}: error {match.start_error:.3f} -> {match.error:.3f} in {match.steps} steps")

            self._generator_job("match", work, done)
            return True
        return False

    def _save(self, dirs) -> None:
        source = self._source or ""
        if not Path(source).is_file():
            return

        def work(ctx: JobContext) -> str:
            from core.editing import save_directions
            from core.editing.direction_file import directions_path

            path = directions_path(source)
            save_directions(dirs, path, model_file=source)
            return path

        self.app.jobs.start("save_directions", work, on_done=lambda p: self.app.ui.info.say(f"saved {p}"))

    def release(self) -> None:
        pass
