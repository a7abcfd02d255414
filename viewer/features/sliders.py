"""The Latent panel's sliders (``core.editing``): PCA, attribute, user-taught and 3D-measured directions of the
open model.

- When the source changes, a thread job loads ``<model>.directions.npz`` (checked against the model's SHA-256);
  a model without one (or a built-in random generator) can get PCA sliders computed on request (a render-worker
  job on the worker's own generator).
- The direction set is handed to the render worker with a version number; the slider values
  (``UiState.latent.sliders``) and that version travel in every render request (``SliderParams``), and the
  worker adds the offsets to the base latent with ``core.editing.apply_sliders``. Nothing here rewrites the
  latent: all sliders at 0 give the base back exactly.
- Teaching: yes/no marks on the heads on screen, then a logistic boundary (``teach_direction``), saved into the
  directions file. Matching: a picked colour / typed width -> ``match_target`` on the worker, starting from
  the result's base latent -> slider values, with progress. The measured attributes of the head on screen
  are measured (a small render-worker job per new head) and published, so each target starts at the head's
  own value (hair colour at the hair's, not a fixed skin tone).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from core.editing.direction_file import SUFFIX as DIRECTIONS_SUFFIX
from core.editing.fingerprint import sidecar_path
from ui_state.actions import ComputeDirections, MarkSample, MatchTarget, TeachSlider
from ui_state.info import DirectionsInfo, MeasuredInfo, SliderInfo
from viewer.events import SourceChanged
from viewer.features.base import Feature, Studio
from viewer.features.sources import is_model_file
from viewer.jobs import JobContext

PCA_SAMPLES = 4096
PCA_COMPONENTS = 20
MATCH_STEPS = 8  # Gauss-Newton steps of core.editing.match_target


class Sliders(Feature):
    def __init__(self, studio: Studio) -> None:
        self.studio = studio
        self.dirs = None  # core.editing.DirectionSet of the open model, or None
        self._source = ""
        self._version = 0
        self._marks = {}  # attribute name -> core.editing.Marks
        self._load_error_shown = True
        self._measured_scene = None  # the RenderResult.scene last measured

    def handlers(self):
        return {ComputeDirections: self.compute, MarkSample: self.mark, TeachSlider: self.teach,
                MatchTarget: self.match}

    @property
    def info(self) -> DirectionsInfo:
        return self.studio.ui.info.directions

    def _publish(self, info: DirectionsInfo) -> None:
        self.studio.ui.info.directions = info

    # ------------------------------------------------------------------ per frame

    def poll(self) -> None:
        st = self.studio.ui.info.jobs.get("directions")
        if st is not None and st.error and not self._load_error_shown:
            self._load_error_shown = True
            self._publish(DirectionsInfo(status=st.error.strip().splitlines()[-1], can_compute=True))
        marks = self._marks.get(self.studio.ui.latent.teach_name.strip())
        counts = marks.counts if marks is not None else (0, 0)
        if self.info.marks != counts:
            self._publish(replace(self.info, marks=counts))
        self._measure_head()

    def _measure_head(self) -> None:
        """Measure the head on screen for the measured sliders (one job at a time, the newest head)."""
        result = self.studio.picture.result
        if (self.dirs is None or not self.dirs.measurements or result is None or result.scene is None
                or result.base_ws is None or result.scene is self._measured_scene
                or self.studio.jobs.running("measure")):
            return
        scene, source, measurements = result.scene, self._source, self.dirs.measurements
        self._measured_scene = scene

        def work(ctx: JobContext, gpu):
            import torch

            from core.editing.measured import measure

            with torch.no_grad():
                return {m.name: tuple(float(v) for v in measure(scene, m).cpu()) for m in measurements}

        def done(values: dict) -> None:
            if source != self._source:
                return
            measured = tuple(replace(m, value=values.get(m.name)) for m in self.info.measured)
            self._publish(replace(self.info, measured=measured))

        self.studio.jobs.start_on_worker("measure", work, on_done=done)

    # ------------------------------------------------------------------ loading and computing

    def source_changed(self, event: SourceChanged) -> None:
        source = self._source = event.source
        self.dirs = None
        self._marks = {}
        if not is_model_file(source):
            self._publish(DirectionsInfo(status=f"{source}: no directions file; compute PCA sliders here",
                                         can_compute=True))
            return

        def work(ctx: JobContext):
            from core.editing import find_directions

            return find_directions(source)

        sidecar = Path(sidecar_path(source, DIRECTIONS_SUFFIX)).name

        def done(dirs) -> None:
            if self._source != source:
                return
            if dirs is None:
                self._publish(DirectionsInfo(
                    status=f"no {sidecar} beside the model: compute PCA sliders here, or "
                           f"all kinds with: python -m training.directions --model {source} --data <dataset>",
                    can_compute=True))
                return
            self._set(dirs, f"{len(dirs.directions)} sliders from {sidecar}")

        if not self.studio.jobs.start("directions", work, on_done=done):
            self.studio.say("directions are still loading", "warning")
        self._load_error_shown = False

    def _set(self, dirs, status: str) -> None:
        """Use ``dirs`` for the open model: hand them to the worker (new version), publish the sliders."""
        self.dirs = dirs
        self._measured_scene = None  # measure again for the new set
        self._version += 1
        self.studio.worker.set_directions(self._source, self._version, dirs)
        sliders = tuple(SliderInfo(d.name, d.kind, d.note) for d in dirs.directions)
        measured = tuple(MeasuredInfo(m.name, m.quantity) for m in dirs.measurements)
        self._publish(DirectionsInfo(sliders, measured, status, can_compute=True, version=self._version))
        known = set(dirs.names)
        latent = self.studio.ui.latent
        latent.sliders = {k: v for k, v in latent.sliders.items() if k in known}

    def _on_worker(self, name, work, done) -> None:
        if not self.studio.jobs.start_on_worker(name, work, on_done=done):
            self.studio.say(f"{name} is already running", "warning")

    def compute(self, a: ComputeDirections) -> None:
        source, device = self._source, self.studio.ui.device

        def work(ctx: JobContext, gpu):
            from core.editing import directions_path, file_sha256, pca_direction_set, save_directions

            ctx.progress(0.1, "sampling w")
            G = gpu.generator(source, device)
            is_file = Path(source).is_file()
            dirs = pca_direction_set(G, file_sha256(source) if is_file else "0" * 64, PCA_SAMPLES, PCA_COMPONENTS)
            if is_file:
                save_directions(dirs, directions_path(source), model_file=source)
            return source, dirs

        def done(result) -> None:
            computed_for, dirs = result
            if computed_for == self._source:
                self._set(dirs, f"{len(dirs.directions)} PCA sliders computed from {PCA_SAMPLES} samples")

        self._on_worker("pca", work, done)

    # ------------------------------------------------------------------ teaching

    def mark(self, a: MarkSample) -> None:
        ws = self.studio.ui.info.current_ws
        if ws is None:
            self.studio.say("no head on screen to mark", "warning")
            return
        from core.editing import Marks

        marks = self._marks.get(a.name) or Marks(a.name)
        self._marks[a.name] = marks.add(np.asarray(ws), a.yes)

    def teach(self, a: TeachSlider) -> None:
        marks = self._marks.get(a.name)
        if self.dirs is None:
            self.studio.say("compute the model's directions first (they give the slider units)", "warning")
            return
        if marks is None:
            self.studio.say(f"mark some heads yes/no for {a.name!r} first", "warning")
            return
        from core.editing import teach_direction

        try:
            d = teach_direction(marks, self.dirs)
        except ValueError as e:
            self.studio.say(str(e), "error")
            return
        dirs = self.dirs.without(a.name) if a.name in self.dirs.names else self.dirs
        dirs = dirs.with_directions([d])
        self._set(dirs, f"taught {a.name!r} from {sum(marks.counts)} marks")
        self._save(dirs)

    def _save(self, dirs) -> None:
        source = self._source
        if not Path(source).is_file():
            return

        def work(ctx: JobContext) -> str:
            from core.editing import directions_path, save_directions

            path = directions_path(source)
            save_directions(dirs, path, model_file=source)
            return path

        self.studio.jobs.start("save_directions", work, on_done=lambda p: self.studio.say(f"saved {p}"))

    # ------------------------------------------------------------------ matching a measured attribute

    def match(self, a: MatchTarget) -> None:
        if self.dirs is None:
            self.studio.say("this model has no measured directions", "warning")
            return
        result = self.studio.picture.result
        if result is None or result.base_ws is None:
            self.studio.say("no head on screen to match", "warning")
            return
        dirs, source, device = self.dirs, self._source, self.studio.ui.device
        base, values = np.array(result.base_ws, np.float32), dict(self.studio.ui.latent.sliders)

        def work(ctx: JobContext, gpu):
            import torch

            from core.editing import LatentEdit
            from core.editing.measured import match_target_steps

            edit = LatentEdit(torch.from_numpy(base), tuple(values.items()))
            run = match_target_steps(gpu.generator(source, device), edit, dirs, a.name, a.target, steps=MATCH_STEPS)
            while True:
                try:
                    step = next(run)
                except StopIteration as done:
                    return done.value
                ctx.progress(step / MATCH_STEPS, f"matching {a.name}: step {step} of {MATCH_STEPS}")
                yield  # one synthesis per worker turn

        def done(match) -> None:
            self.studio.ui.latent.sliders = dict(match.edit.slider_values)
            self.studio.say(f"{a.name}: error {match.start_error:.3f} -> {match.error:.3f} in {match.steps} steps")

        self._on_worker("match", work, done)
