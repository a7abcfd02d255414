"""The Inversion panel's feature: photos (files or webcam) -> preprocessing -> stage 1 (latent) -> stage 2
(pivotal tuning) -> outputs, through ``inversion.pipeline`` (the same steps as ``python -m inversion``), each
stage a render-worker job (:mod:`viewer.features.inversion.stages`) with its own settings from the panel.

The view follows the optimisation through actions, never by writing other panels' state: stage 1's latent is
shown with ``SetLatent``; stage 2's tuned copy sits in the worker's ``memory:tuned`` slot and is shown with
``ShowSource`` (the pivot latent with it); "Reset to original model" shows the source the inversion started from.
Opening another model (``SourceChanged``) ends the tuned view. "Save everything" writes the pipeline's outputs
and its one report layout (``inversion.outputs.write_results``).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ui_state.actions import (
    BrowsePhotos, ChoosePreset, ClearPhotos, LoadPhotos, Preprocess, ResetModel, SaveInversion, SetLatent,
    ShowSource, StartLatentSearch, StartTuning, StopLatentSearch, StopTuning, TakeWebcamPicture,
)
from ui_state.inversion import InversionInfo, InversionMessage
from ui_state.jobs import JobName
from viewer.events import SourceChanged
from viewer.features.base import Feature, Studio
from viewer.features.inversion import stages
from viewer.features.inversion.inputs import PhotoInputs
from viewer.features.inversion.settings import (
    WeightsCheck, default_preset, gui_wording, latent_settings, missing_weights, tuning_settings,
    tuning_weights_of, weights_of,
)
from viewer.features.inversion.speed import SPEED_JOB, StageSpeed
from viewer.features.latents import w_latent

STAGE_JOBS: dict[JobName, str] = {"inversion_preprocess": "preprocess", "inversion_latent": "latent",
                                  "inversion_tuning": "tuning", "inversion_save": "saving"}
MAX_MESSAGES = 30


class Inversion(Feature):
    """See the module docstring. ``texture_factory``: GL textures for thumbnails and the webcam (default: the
    picture's; tests without a window pass a stand-in)."""

    def __init__(self, studio: Studio, texture_factory: Callable[[], Any] | None = None) -> None:
        self.studio, self.ui = studio, studio.ui
        self.state = studio.ui.inversion
        self.inputs = PhotoInputs(studio.jobs, texture_factory or studio.picture.new_texture)
        self.preprocessed = None  # (PreprocessConfig, PreprocessResult)
        self.target = None  # inversion.preprocess.InversionTarget
        self.latent = None  # inversion.pipeline.LatentResult
        self.latent_settings = None  # the InversionSettings stage 1 ran with
        self.tuning = None  # inversion.pipeline.TuningResult
        self.tuning_settings = None
        self.latent_source = ""  # the source stage 1 ran on (stage 2 and saving use the same generator)
        self.original_source: str | None = None  # what the view showed before switching to memory:tuned
        self._pivot = None  # the view's latent while the tuned model shows
        self._feed = stages.StageFeed()
        self._stop = threading.Event()
        self._history: dict[str, dict[str, list[float]]] = {"latent": {}, "tuning": {}}
        self._progress = (0, 0)
        self._messages: list[InversionMessage] = []
        self._watch: set[JobName] = set()
        self._saved_to = ""
        self._notes: dict[str, InversionMessage] = {}  # stage -> its newest error/warning
        self._weights_used: dict[str, dict[str, float]] = {"latent": {}, "tuning": {}}
        self._weights = WeightsCheck()
        self._dirty = True
        self.speed = StageSpeed(self)
        self.speed.choose(ChoosePreset(default_preset(self.ui.device)), by_user=False)

    def handlers(self):
        return {LoadPhotos: lambda a: self.add_photos(a.paths), BrowsePhotos: self.browse,
                ClearPhotos: self.clear_photos, TakeWebcamPicture: self.take_picture,
                Preprocess: self.start_preprocess, StartLatentSearch: self.start_latent,
                StopLatentSearch: self.stop, StartTuning: self.start_tuning, StopTuning: self.stop,
                SaveInversion: self.start_save, ResetModel: lambda a: self.reset_model(), ChoosePreset: self.speed.choose}

    # ------------------------------------------------------------------ helpers

    def say(self, text: str, level: str = "info", stage: str = "") -> None:
        """A line in the panel's log; with ``stage``, errors and warnings also show under that stage's buttons
        (an info line there clears them)."""
        msg = InversionMessage(gui_wording(text), level)
        self._messages.append(msg)
        del self._messages[:-MAX_MESSAGES]
        if stage:
            if level in ("error", "warning"):
                self._notes[stage] = msg
            else:
                self._notes.pop(stage, None)
        self._dirty = True

    def mark_dirty(self) -> None:
        self._dirty = True

    def _busy(self) -> str:
        """The running stage ("" = none)."""
        return next((stage for name, stage in STAGE_JOBS.items() if self.studio.jobs.running(name)), "")

    def _refuse_if_busy(self, what: str, stage: str = "") -> bool:
        busy = self._busy()
        if busy:
            self.say(f"cannot {what} while {busy} runs; stop it or wait", "warning", stage)
        return bool(busy)

    def _base_source(self) -> str:
        """The source the inversion works on: the view's, or the original one while the tuned model shows."""
        return self.original_source or self.ui.load.current or "random:tiny"

    def _start(self, name: JobName, work, on_done: Callable[[Any], None], output: str = "") -> bool:
        stage = STAGE_JOBS[name]

        def done(result) -> None:
            self._drain()
            if isinstance(result, stages.StageFailed):
                self.say(result.message, "error", stage)
            else:
                on_done(result)

        self.studio.jobs.cancel(SPEED_JOB)  # a measurement must not share the worker with a real run
        started = self.studio.jobs.start_on_worker(name, work, on_done=done, output=output)
        if started:
            self._watch.add(name)
            self._dirty = True
        return started

    def _new_run(self, stage: str, steps: int) -> tuple[stages.StageFeed, threading.Event]:
        self._feed.closed = True
        self._feed, self._stop = stages.StageFeed(), threading.Event()
        if stage in self._history:
            self._history[stage] = {}
        self._progress = (0, steps)
        return self._feed, self._stop

    # ------------------------------------------------------------------ inputs

    @property
    def sources(self) -> list:
        """Photo paths (str) and webcam pictures (``inversion.photos.Photo``), in order."""
        return self.inputs.sources

    def _say_all(self, said) -> None:
        for text, level in said:
            self.say(text, level)

    def add_photos(self, paths) -> None:
        self._say_all(self.inputs.add(paths))

    def browse(self, a: BrowsePhotos) -> None:
        self._say_all(self.inputs.browse())

    def clear_photos(self, a: ClearPhotos) -> None:
        if not self._refuse_if_busy("clear the photos"):
            self.sources.clear()
            self.say("inputs cleared")

    def take_picture(self, a: TakeWebcamPicture | None = None) -> None:
        self._say_all(self.inputs.take_picture())

    def stop(self, a=None) -> None:
        """Stop the running stage after its current step (its result so far is kept)."""
        if self._busy() in ("latent", "tuning"):
            self._stop.set()
            self.say("stopping after the current step...")

    # ------------------------------------------------------------------ the stages

    def start_preprocess(self, a: Preprocess | None = None) -> None:
        if self._refuse_if_busy("preprocess", "preprocess"):
            return
        if not self.sources:
            self.say("add photos first (paths, Browse... or the webcam)", "error", "preprocess")
            return
        from inversion.framing import get_framing

        try:
            framing = get_framing(self.state.panel.framing)
        except ValueError as e:
            self.say(str(e), "error", "preprocess")
            return
        feed, stop = self._new_run("preprocess", len(self.sources))
        work = stages.preprocess_job(list(self.sources), framing, self._base_source(), self.ui.device, feed, stop)
        if self._start("inversion_preprocess", work, self._preprocessed):
            self.say(f"preprocessing {len(self.sources)} photo(s)...", stage="preprocess")

    def _preprocessed(self, result) -> None:
        from inversion.preprocess import make_target

        cfg, pre = result
        for msg in pre.problems:
            self.say(f"skipped: {msg}", "error")
        for msg in pre.messages:
            self.say(f"note: {msg}", "warning")
        self.inputs.set_aligned(pre.aligned)
        self.preprocessed, self.target, self.latent = (cfg, pre), make_target(pre.aligned), None
        cams = (f"{al.name} (yaw {al.camera.yaw_deg:+.1f}, pitch {al.camera.pitch_deg:+.1f} deg)" for al in pre.aligned)
        if pre.aligned:
            self.say(f"{len(pre.aligned)} photo(s) ready: " + ", ".join(cams), stage="preprocess")
            self.speed.measure()
        else:
            self.say("no usable photo: every photo was skipped (see above)", "error", "preprocess")

    def start_latent(self, a: StartLatentSearch | None = None) -> None:
        if self._refuse_if_busy("start stage 1", "latent"):
            return
        if self.target is None:
            self.say("preprocess the photos first", "error", "latent")
            return
        weights = missing_weights(self.state.panel, self.state.panel.latent)
        if weights is not None and weights.level == "error":  # offline and missing: cannot run
            self.say(weights.text, "error", "latent")
            return
        try:
            settings = latent_settings(self.state.panel, self.preprocessed[0])
        except ValueError as e:
            self.say(f"stage 1 settings: {e}", "error", "latent")
            return
        source = self._base_source()
        if self.tuning is not None or self.original_source is not None:
            self.reset_model(quiet=True)  # the latent belongs to the original generator
        feed, stop = self._new_run("latent", settings.latent.steps)
        work = stages.latent_job(settings, self.target, source, self.ui.device, feed, stop)
        if self._start("inversion_latent", work, lambda r: self._latent_done(r, source, settings)):
            try:  # the key of a run is both stages' settings; stage 2's form may not be valid yet
                self.speed.started(tuning_settings(self.state.panel, settings))
            except ValueError:
                self.speed.started(None)
            self._weights_used["latent"] = weights_of(settings.latent.losses)
            if weights is not None:  # the download note
                self.say(weights.text)
            self.say(f"stage 1: {settings.latent.steps} steps in {settings.latent.space.upper()} on {source}",
                     stage="latent")

    def _latent_done(self, result, source: str, settings) -> None:
        if result is None:
            self.say("stage 1 stopped before its first step", "warning", "latent")
            return
        self.speed.learn(0, result)
        self.latent, self.latent_source, self.latent_settings, self.tuning = result, source, settings, None
        how = "stopped after" if result.cancelled else "done:"
        self.say(f"stage 1 {how} {result.steps_done} of {result.total_steps} steps, "
                 f"loss {result.final_losses.get('total', float('nan')):.4f}")

    def start_tuning(self, a: StartTuning | None = None) -> None:
        if self._refuse_if_busy("start stage 2", "tuning"):
            return
        if self.latent is None or self.target is None:
            self.say("run stage 1 first: tuning needs its latent", "error", "tuning")
            return
        weights = missing_weights(self.state.panel, self.state.panel.tuning)
        if weights is not None and weights.level == "error":  # offline and missing: cannot run
            self.say(weights.text, "error", "tuning")
            return
        try:
            settings = tuning_settings(self.state.panel, self.latent_settings)
        except ValueError as e:
            self.say(f"stage 2 settings: {e}", "error", "tuning")
            return
        feed, stop = self._new_run("tuning", settings.tuning.steps)
        self._pivot = w_latent(self.latent.ws.numpy())
        work = stages.tuning_job(settings, self.target, self.latent, self.latent_source, self.ui.device, feed, stop)
        if self._start("inversion_tuning", work, lambda r: self._tuning_done(r, feed, settings)):
            self.speed.started(settings)
            self._weights_used["tuning"] = tuning_weights_of(settings.tuning)
            if weights is not None:
                self.say(weights.text)
            self.say(f"stage 2: tuning a copy of the generator for {settings.tuning.steps} steps", stage="tuning")

    def _tuning_done(self, result, feed: stages.StageFeed, settings) -> None:
        if feed.closed:
            return  # reset while it ran
        if result is None:
            self.say("stage 2 stopped before its first step", "warning", "tuning")
            return
        self.speed.learn(1, result)
        self.tuning, self.tuning_settings = result, settings
        how = "stopped after" if result.cancelled else "done:"
        self.say(f"stage 2 {how} {result.steps_done} of {result.total_steps} steps, "
                 f"loss {result.final_losses.get('total', float('nan')):.4f}; the view shows the tuned generator")

    # ------------------------------------------------------------------ the tuned view

    def _show_tuned(self) -> None:
        if self.original_source is None:  # the switch (only then: the user may move the latent afterwards)
            self.original_source = self.ui.load.current
            self.ui.request(ShowSource(stages.TUNED_SOURCE, self._pivot))
        self._dirty = True

    def source_changed(self, event: SourceChanged) -> None:
        """Another model was opened while the tuned one showed: stop showing (and tuning) it."""
        self._dirty = True  # "the view shows the tuned generator" may have changed
        if self.original_source is not None and event.source != stages.TUNED_SOURCE:
            self._end_tuned_view()
            self.say("another model was opened: the tuned generator is no longer shown", "warning")

    def _end_tuned_view(self) -> None:
        if self.studio.jobs.running("inversion_tuning"):
            self._feed.closed = True
            self._stop.set()
        self.original_source = None
        self.studio.worker.drop_model(stages.TUNED)
        self._dirty = True

    def reset_model(self, quiet: bool = False) -> None:
        """Back to the original generator; the tuned copy is dropped (a running stage 2 is stopped)."""
        original = self._base_source()
        if self.original_source is not None:
            self.ui.request(ShowSource(self.original_source))
        self._end_tuned_view()
        self.tuning = None
        if not quiet:
            self.say(f"showing the original model again ({original})")

    # ------------------------------------------------------------------ saving

    def start_save(self, a: SaveInversion | None = None) -> None:
        if self._refuse_if_busy("save", "saving"):
            return
        if self.latent is None:
            self.say("nothing to save yet: run stage 1 first", "error", "saving")
            return
        from inversion.outputs import free_folder
        from inversion.pipeline import InversionResult

        p = self.state.panel
        out = free_folder(Path(os.path.expanduser(p.output.strip() or "out/inversion")))
        cfg, pre = self.preprocessed
        result = InversionResult(pre, self.target, self.latent, self.tuning)
        settings = self.tuning_settings if self.tuning is not None else replace(self.latent_settings, tuning=None)
        extra = {"saved_by": "splathead studio viewer", "time": time.strftime("%Y-%m-%d %H:%M:%S")}
        work = stages.save_job(out, result, settings, self.latent_source, self.ui.device, max(0, int(p.orbit_frames)),
                               extra)

        def done(paths) -> None:
            self._saved_to = str(out)
            self.say(f"saved to {out}: {', '.join(sorted(paths))}", stage="saving")

        if self._start("inversion_save", work, done, output=str(out)):
            self.say(f"saving to {out}...", stage="saving")

    # ------------------------------------------------------------------ per frame

    def _drain(self) -> None:
        """Move what the running stage reported into the history and the view (GUI thread)."""
        from inversion.pipeline import StepDone

        for item in self._feed.take():
            if isinstance(item, stages.TunedPublished):
                self._show_tuned()
            elif isinstance(item, StepDone) and item.stage in self._history:
                self._progress = (item.step, item.total)
                hist = self._history[item.stage]
                for k, v in item.losses.items():
                    hist.setdefault(k, []).append(float(v))
                if item.latent is not None and item.stage == "latent":
                    self.ui.request(SetLatent(w_latent(item.latent.numpy(), self.ui.latent.latent)))
                self._dirty = True

    def poll(self) -> None:
        """Per frame: webcam, file dialog, stage reports, failed jobs, then publish the info."""
        p = self.state.panel
        said, changed = self.inputs.poll(p.webcam_open)
        p.webcam_open = False  # the panel sets it again while it draws an open Webcam section (a collapsed
        # Inversion header, or a closed window, releases the camera)
        self._say_all(said)
        self._dirty = self._dirty or changed
        self._drain()
        statuses = self.ui.info.jobs
        for name in list(self._watch):
            st = statuses.get(name)
            if st is None or st.running:
                continue
            self._watch.discard(name)
            self._dirty = True
            if st.error and st.error != "cancelled":
                lines = st.error.strip().splitlines()
                self.say(f"{STAGE_JOBS[name]} failed: {lines[-1] if lines else st.error}", "error", STAGE_JOBS[name])
        self.speed.poll()
        self.speed.sync_preset()
        self._dirty = self._weights.update(self.state.panel) or self._dirty
        stage = self._busy()
        if stage != self.state.info.stage or self._dirty or self.inputs.webcam.status != self.state.info.webcam_status:
            self._publish(stage)

    def _publish(self, stage: str) -> None:
        webcam_texture, webcam_size = self.inputs.webcam_preview()
        tuned_active = self.ui.load.current == stages.TUNED_SOURCE
        sources = dict(self.latent.loss_sources) if self.latent is not None else {}
        self.state.info = InversionInfo(
            photos=self.inputs.names, thumbs=self.inputs.thumbs, webcam_texture=webcam_texture,
            webcam_size=webcam_size, webcam_status=self.inputs.webcam.status, stage=stage, step=self._progress[0], total_steps=self._progress[1],
            latent_history={k: np.asarray(v, np.float64) for k, v in self._history["latent"].items()},
            tuning_history={k: np.asarray(v, np.float64) for k, v in self._history["tuning"].items()},
            has_target=self.target is not None, has_latent=self.latent is not None,
            has_tuned=self.tuning is not None or tuned_active, tuned_active=tuned_active, loss_sources=sources,
            messages=tuple(self._messages), saved_to=self._saved_to, stage_notes=dict(self._notes),
            presets=self.speed.presets(), speed=self.speed.note, seconds_per_step=self.speed.per_step,
            weights_note=self._weights.note, latent_weights=dict(self._weights_used["latent"]),
            tuning_weights=dict(self._weights_used["tuning"]),
            eta_s=self.speed.eta_s(stage, *self._progress) if stage in ("latent", "tuning") else None)
        self._dirty = False

    def release(self) -> None:
        """Stop the stages, close the camera and free the textures (GUI thread, GL context current)."""
        self._stop.set()
        for name in (*STAGE_JOBS, SPEED_JOB):
            self.studio.jobs.cancel(name)
        self.inputs.release()
        self.state.info = replace(self.state.info, thumbs=(), webcam_texture=0)

