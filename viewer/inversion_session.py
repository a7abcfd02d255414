"""The app's side of the Inversion panel: photos (files or webcam) -> preprocessing -> stage 1 (latent) ->
stage 2 (pivotal tuning) -> outputs, all on job threads, with the view following the optimisation.

GUI thread only (:meth:`InversionSession.poll` every frame, :meth:`InversionSession.handlers` for actions);
model work runs on :class:`viewer.jobs.JobRunner` jobs that talk back through a small locked mailbox
(:class:`_Feed`) and through their results, so every change to the UI state (the latent shown, the source,
textures) happens in ``poll`` on the GUI thread:

- stage 1 publishes its current latent every ``follow_every`` steps and at the end: the view shows
  ``LatentParams(space="w", latent=ws.flatten(), psi=1.0)``;
- stage 2 hands a copy of the tuned generator to the render worker (``put_model("tuned", copy)``) every
  ``publish_every`` steps and at the end, and the view switches to source ``memory:tuned``;
- "Reset to original model" switches back to the source the inversion started from and drops the tuned model.

The generator the stages use is loaded here (a separate object from the worker's), from the open source's file
or the same random construction for ``random:*``; tuning works on a deep copy, so it is never modified.
"""

from __future__ import annotations

import copy
import os
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ui_state.actions import (
    BrowsePhotos, ClearPhotos, LoadPhotos, Preprocess, ResetModel, SaveInversion, SetLatent,
    ShowSource, StartLatentSearch, StartTuning, StopLatentSearch, StopTuning, TakeWebcamPicture,
)
from ui_state.inversion import InversionInfo, InversionMessage, PhotoThumb
from ui_state.render import LatentParams
from viewer.events import SourceChanged
from viewer.features.webcam import WebcamFeed
from viewer.jobs import JobContext

JOB_PREPROCESS, JOB_LATENT, JOB_TUNING, JOB_SAVE = ("inversion_preprocess", "inversion_latent",
                                                    "inversion_tuning", "inversion_save")
WORK_JOBS = {JOB_PREPROCESS: "preprocess", JOB_LATENT: "latent", JOB_TUNING: "tuning", JOB_SAVE: "saving"}
TUNED = "tuned"
TUNED_SOURCE = f"memory:{TUNED}"
THUMB = 112  # px, side of the preprocessed thumbnails
MAX_MESSAGES = 30
IMAGE_FILTERS = ["Images", "*.jpg *.jpeg *.png *.webp *.bmp *.tif *.tiff", "All files", "*"]


class _Feed:
    """Job thread -> GUI thread mailbox of one stage run: per-step losses, the newest latent to show and the
    newest tuned-generator copy to hand to the worker."""

    def __init__(self, stage: str) -> None:
        self.stage = stage  # "latent" or "tuning"
        self._lock = threading.Lock()
        self._records: list[tuple[int, int, dict[str, float]]] = []
        self._ws: np.ndarray | None = None
        self._generator: Any = None
        self.closed = False  # set by the GUI thread: drop anything still coming (e.g. after a reset)

    def push(self, step: int, total: int, losses: dict[str, float], ws: np.ndarray | None = None) -> None:
        with self._lock:
            self._records.append((step, total, dict(losses)))
            if ws is not None:
                self._ws = ws

    def put_generator(self, generator: Any) -> None:
        with self._lock:
            self._generator = generator

    def take(self) -> tuple[list[tuple[int, int, dict[str, float]]], np.ndarray | None, Any]:
        with self._lock:
            out = (self._records, self._ws, self._generator)
            self._records, self._ws, self._generator = [], None, None
        return out if not self.closed else ([], None, None)


@dataclass(frozen=True)
class _Failure:
    """A job's user-facing failure (e.g. a missing weight file): shown as is."""

    message: str


@dataclass(frozen=True, eq=False)
class _StageDone:
    last: Any  # InversionStep or None
    cancelled: bool
    loss_sources: dict


def _thumbnail(image: np.ndarray, landmarks: np.ndarray, size: int = THUMB) -> np.ndarray:
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


def _snapshot(G):
    """A frozen CPU/GPU copy of a generator being tuned, safe to hand to the render worker."""
    return copy.deepcopy(G).eval().requires_grad_(False)


class InversionSession:
    """Controller of the Inversion panel (see the module docstring). ``texture_factory``: makes objects with
    ``upload(uint8 [H, W, 3])``, ``texture_id``, ``size`` and ``release()`` (default: ``viewer.texture.
    ImageTexture``, which needs the GL context; tests without a window pass a stand-in)."""

    def __init__(self, app, texture_factory: Callable[[], Any] | None = None) -> None:
        self.app = app
        self.ui = app.ui
        self.jobs = app.jobs
        self.worker = app.worker
        self.state = app.ui.inversion
        self._texture_factory = texture_factory
        self.sources: list = []  # photo paths (str) and webcam pictures (inversion.photos.Photo)
        self.aligned: list = []  # inversion.preprocess.AlignedPhoto
        self.target = None  # inversion.preprocess.InversionTarget
        self.framing = None  # inversion.framing.FaceFraming of the target
        self.latent_step = None  # stage 1's last InversionStep
        self.latent_space = "w+"
        self.latent_source = ""  # the source stage 1 ran on (stage 2 and saving use the same generator)
        self.tuned = None  # stage 2's tuned generator (our copy)
        self.original_source: str | None = None  # what the view showed before switching to memory:tuned
        self.loss_sources: dict[str, str] = {}
        self._generator_cache: tuple[tuple[str, str], Any] | None = None
        self._feed: _Feed | None = None
        self._cancel = threading.Event()
        self._history: dict[str, dict[str, list[float]]] = {"latent": {}, "tuning": {}}
        self._progress = (0, 0)
        self._thumbs: list[tuple[Any, PhotoThumb]] = []
        self._webcam = WebcamFeed(app.jobs)
        self._webcam_texture = None
        self._webcam_seen = 0
        self._webcam_pictures = 0
        self._messages: list[InversionMessage] = []
        self._watch: set[str] = set()
        self._dialog = None
        self._saved_to = ""
        self._pivot_latent: LatentParams | None = None  # the view's latent while the tuned model shows
        self._dirty = True

    # ------------------------------------------------------------------ messages and helpers

    def say(self, text: str, level: str = "info") -> None:
        self._messages.append(InversionMessage(text, level))
        del self._messages[:-MAX_MESSAGES]
        self._dirty = True

    def _texture(self):
        if self._texture_factory is not None:
            return self._texture_factory()
        from viewer.texture import ImageTexture

        return ImageTexture()

    def _busy(self) -> str:
        """The running model job's stage ("" = none)."""
        for name, stage in WORK_JOBS.items():
            if self.jobs.running(name):
                return stage
        return ""

    def _refuse_if_busy(self, what: str) -> bool:
        busy = self._busy()
        if busy:
            self.say(f"cannot {what} while {busy} runs; stop it or wait", "warning")
        return bool(busy)

    def _base_source(self) -> str:
        """The source the inversion works on: the view's, or the original one while the tuned model shows."""
        return self.original_source or self.ui.load.current or "random:tiny"

    def _stage_inputs(self, ctx: JobContext, source: str, device: str, cfg, framing, networks):
        """(generator, objective) for a stage's job thread; the objective is a ``_Failure`` carrying the exact
        message when a pretrained weight file is missing."""
        from inversion.objective import Objective
        from inversion.pretrained import MissingWeightsError

        ctx.progress(0.0, "loading")
        G = self._generator(source, device)
        try:
            return G, Objective(cfg.losses, framing, networks).to(device)
        except MissingWeightsError as exc:
            return G, _Failure(str(exc))

    def _generator(self, source: str, device: str):
        """Load (or reuse) the generator of ``source`` on ``device`` (job thread)."""
        key = (source, device)
        cached = self._generator_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        if source.startswith("memory:"):
            raise ValueError(f"{source} is an in-memory model; open a generator file (or random:*) to invert")
        from core.latent import load_generator_source

        G = load_generator_source(source, device).eval()
        self._generator_cache = (key, G)
        return G

    def _networks(self):
        from inversion.objective import LossNetworks

        p = self.state.panel
        return LossNetworks(weights_dir=p.weights_dir.strip() or None, allow_random=p.stand_in_losses)

    def _start(self, name: str, work: Callable[[JobContext], Any], on_done: Callable[[Any], None],
               output: str = "") -> bool:
        started = self.jobs.start(name, work, on_done=on_done, output=output)
        if started:
            self._watch.add(name)
            self._dirty = True
        return started

    # ------------------------------------------------------------------ actions

    def handlers(self) -> dict[type, Callable[[Any], None]]:
        """The Inversion panel's actions (GUI thread)."""
        return {LoadPhotos: lambda a: self.add_photos(a.paths), BrowsePhotos: lambda a: self._browse(),
                ClearPhotos: lambda a: self.clear_photos(), TakeWebcamPicture: lambda a: self.take_picture(),
                Preprocess: lambda a: self.start_preprocess(), StartLatentSearch: lambda a: self.start_latent(),
                StopLatentSearch: lambda a: self._stop(JOB_LATENT), StartTuning: lambda a: self.start_tuning(),
                StopTuning: lambda a: self._stop(JOB_TUNING), SaveInversion: lambda a: self.start_save(),
                ResetModel: lambda a: self.reset_model()}

    def clear_photos(self) -> None:
        if not self._refuse_if_busy("clear the photos"):
            self.sources.clear()
            self.say("inputs cleared")

    def add_photos(self, paths) -> None:
        known = {s for s in self.sources if isinstance(s, str)}
        for raw in paths:
            path = os.path.expanduser(str(raw).strip())
            if not path:
                continue
            if not os.path.exists(path):
                self.say(f"{path}: no such file", "error")
            elif os.path.isdir(path):
                self.say(f"{path}: is a folder, not an image", "error")
            elif path in known:
                self.say(f"{os.path.basename(path)} is already an input", "warning")
            else:
                self.sources.append(path)
                known.add(path)
                self.say(f"added {os.path.basename(path)}")
        self._dirty = True

    def _browse(self) -> None:
        try:
            from imgui_bundle import portable_file_dialogs as pfd

            self._dialog = pfd.open_file("Choose photos of one person", str(Path.cwd()), IMAGE_FILTERS,
                                         pfd.opt.multiselect)
        except Exception as e:  # noqa: BLE001
            self.say(f"no file dialog here ({e}); type the paths instead, separated by ';'", "warning")

    def take_picture(self) -> None:
        frame = self._webcam.frame
        if frame is None:
            self.say(self._webcam.status or "no webcam picture: open the Webcam section first", "error")
            return
        from inversion.photos import PhotoError, photo_from_array

        try:
            photo = photo_from_array(frame, f"webcam {self._webcam_pictures}")
        except PhotoError as e:
            self.say(str(e), "error")
            return
        self._webcam_pictures += 1
        self.sources.append(photo)
        self.say(f"added {photo.name}")

    def _stop(self, job: str) -> None:
        if self.jobs.running(job):
            self._cancel.set()
            self.jobs.cancel(job)
            self.say("stopping after the current step...")

    # ------------------------------------------------------------------ preprocessing

    def start_preprocess(self) -> None:
        if self._refuse_if_busy("preprocess"):
            return
        if not self.sources:
            self.say("add photos first (paths, Browse... or the webcam)", "error")
            return
        from inversion.framing import get_framing

        try:
            framing = get_framing(self.state.panel.framing)
        except ValueError as e:
            self.say(str(e), "error")
            return
        sources, source, device = list(self.sources), self._base_source(), self.ui.device

        def work(ctx: JobContext):
            from inversion.preprocess import PreprocessConfig, make_target, preprocess_photos

            ctx.progress(0.0, "loading the generator")
            G = self._generator(source, device)
            cfg = PreprocessConfig(framing=framing, resolution=G.config.resolution)
            aligned, problems, notes = [], [], []
            for i, src in enumerate(sources):
                ctx.check()
                ctx.progress(i / len(sources), f"photo {i + 1} of {len(sources)}")
                res = preprocess_photos([src], cfg)
                aligned += res.aligned
                problems += res.problems
                notes += res.messages
            thumbs = [_thumbnail(a.image, a.landmarks) for a in aligned]
            target = make_target(aligned) if aligned else None
            return aligned, thumbs, target, problems, notes, framing

        self._start(JOB_PREPROCESS, work, self._preprocessed)
        self.say(f"preprocessing {len(sources)} photo(s)...")

    def _preprocessed(self, result) -> None:
        aligned, thumbs, target, problems, notes, framing = result
        for msg in problems:
            self.say(f"skipped: {msg}", "error")
        for msg in notes:
            self.say(f"note: {msg}", "warning")
        self._release_thumbs()
        for a, img in zip(aligned, thumbs):
            tex = self._texture()
            tex.upload(img)
            self._thumbs.append((tex, PhotoThumb(a.name, tex.texture_id, (img.shape[1], img.shape[0]),
                                                 float(a.camera.yaw_deg), float(a.camera.pitch_deg),
                                                 a.message or "")))
        self.aligned, self.target, self.framing = aligned, target, framing
        self.latent_step = None
        if target is None:
            self.say("no usable photo: nothing to invert", "error")
        else:
            cams = (f"{a.name} (yaw {a.camera.yaw_deg:+.1f}, pitch {a.camera.pitch_deg:+.1f} deg)"
                    for a in aligned)
            self.say(f"{len(aligned)} photo(s) ready: " + ", ".join(cams))

    # ------------------------------------------------------------------ stage 1

    def start_latent(self) -> None:
        if self._refuse_if_busy("start stage 1"):
            return
        if self.target is None:
            self.say("preprocess the photos first", "error")
            return
        from inversion.latent_search import LatentConfig
        from inversion.objective import LossWeights

        p, f = self.state.panel, self.state.panel.latent
        try:
            cfg = LatentConfig(steps=int(f.steps), lr=float(f.lr), space=p.space,  # type: ignore[arg-type]
                               batch_size=int(f.batch_size),
                               losses=LossWeights(f.id_weight, f.mse_weight, f.lpips_weight),
                               refine_cameras=p.refine_cameras, preview_every=0)
        except ValueError as e:
            self.say(f"stage 1 settings: {e}", "error")
            return
        source, device, target, framing = self._base_source(), self.ui.device, self.target, self.framing
        if self.tuned is not None or self.original_source is not None:
            self.reset_model(quiet=True)  # the latent belongs to the original generator
        networks, every = self._networks(), max(1, int(p.follow_every))
        feed = self._new_feed("latent")
        cancel = self._cancel = threading.Event()
        self._history["latent"] = {}
        self._progress = (0, cfg.steps)

        def work(ctx: JobContext):
            from inversion.latent_search import invert_latent

            G, objective = self._stage_inputs(ctx, source, device, cfg, framing, networks)
            if isinstance(objective, _Failure):
                return objective
            last = None
            for step in invert_latent(G, target, cfg, objective, cancel=cancel):
                last = step
                show = step.step == 1 or step.step % every == 0 or step.step == cfg.steps
                feed.push(step.step, cfg.steps, step.losses, step.ws.numpy() if show else None)
                ctx.progress(step.step / cfg.steps, f"step {step.step}/{cfg.steps}")
                if ctx.cancelled:
                    cancel.set()
            if last is not None and last.step % every and last.step != cfg.steps:
                feed.push(last.step, cfg.steps, {}, last.ws.numpy())  # stopped: show where it got to
            return _StageDone(last, cancel.is_set(), dict(objective.sources))

        if self._start(JOB_LATENT, work, lambda r: self._latent_done(r, source, cfg.space)):
            self.say(f"stage 1: {cfg.steps} steps in {cfg.space.upper()} on {source}")

    def _latent_done(self, result, source: str, space: str) -> None:
        self._drain()
        if isinstance(result, _Failure):
            self.say(result.message, "error")
            return
        self.loss_sources = result.loss_sources
        if result.last is None:
            self.say("stage 1 stopped before its first step", "warning")
            return
        self.latent_step, self.latent_space, self.latent_source = result.last, space, source
        self.tuned = None
        how = "stopped after" if result.cancelled else "done:"
        self.say(f"stage 1 {how} {result.last.step} of {result.last.total_steps} steps, "
                 f"loss {result.last.losses['total']:.4f}")

    # ------------------------------------------------------------------ stage 2

    def start_tuning(self) -> None:
        if self._refuse_if_busy("start stage 2"):
            return
        if self.latent_step is None or self.target is None:
            self.say("run stage 1 first: tuning needs its latent", "error")
            return
        from inversion.objective import LossWeights
        from inversion.pivotal_tuning import TuningConfig

        p, f = self.state.panel, self.state.panel.tuning
        try:
            cfg = TuningConfig(steps=int(f.steps), lr=float(f.lr), batch_size=int(f.batch_size),
                               losses=LossWeights(f.id_weight, f.mse_weight, f.lpips_weight),
                               locality_weight=float(p.locality_weight), preview_every=0)
        except ValueError as e:
            self.say(f"stage 2 settings: {e}", "error")
            return
        source, device, framing = self.latent_source, self.ui.device, self.framing
        pivot = self.latent_step.ws
        target = self.target.with_cameras(self.latent_step.cameras)
        networks, every = self._networks(), max(1, int(p.publish_every))
        feed = self._new_feed("tuning")
        cancel = self._cancel = threading.Event()
        self._history["tuning"] = {}
        self._progress = (0, cfg.steps)
        self._pivot_latent = self._latent_params(pivot.numpy())

        def work(ctx: JobContext):
            from inversion.pivotal_tuning import tune_generator

            G, objective = self._stage_inputs(ctx, source, device, cfg, framing, networks)
            if isinstance(objective, _Failure):
                return objective
            last = None
            for step in tune_generator(G, pivot, target, cfg, objective, cancel=cancel):
                last = step
                feed.push(step.step, cfg.steps, step.losses)
                if step.step % every == 0 or step.step == cfg.steps:
                    feed.put_generator(_snapshot(step.generator))
                ctx.progress(step.step / cfg.steps, f"step {step.step}/{cfg.steps}")
                if ctx.cancelled:
                    cancel.set()
            if last is not None and last.step % every and last.step != cfg.steps:
                feed.put_generator(_snapshot(last.generator))  # stopped early: show what it got to
            return _StageDone(last, cancel.is_set(), dict(objective.sources))

        if self._start(JOB_TUNING, work, lambda r: self._tuning_done(r, feed)):
            self.say(f"stage 2: tuning a copy of the generator for {cfg.steps} steps")

    def _tuning_done(self, result, feed: _Feed) -> None:
        self._drain()
        if feed.closed:
            return  # reset while it ran
        if isinstance(result, _Failure):
            self.say(result.message, "error")
            return
        if result.last is None:
            self.say("stage 2 stopped before its first step", "warning")
            return
        self.tuned = result.last.generator.eval().requires_grad_(False)
        how = "stopped after" if result.cancelled else "done:"
        self.say(f"stage 2 {how} {result.last.step} of {result.last.total_steps} steps, "
                 f"loss {result.last.losses['total']:.4f}; the view shows the tuned generator")

    def _show_tuned(self, generator) -> None:
        """Hand a tuned copy to the worker and show it (GUI thread)."""
        self.worker.put_model(TUNED, generator)
        if self.original_source is None:  # the switch (only then: the user may move the latent afterwards)
            self.original_source = self.ui.load.current
            self.ui.request(ShowSource(TUNED_SOURCE, self._pivot_latent))
        self._dirty = True

    def _opened_elsewhere(self) -> None:
        """The user opened another model while the tuned one showed: stop showing (and tuning) it."""
        if self._feed is not None and self.jobs.running(JOB_TUNING):
            self._feed.closed = True
            self._stop(JOB_TUNING)
        self.original_source = None
        self.worker.drop_model(TUNED)
        self.say("another model was opened: the tuned generator is no longer shown", "warning")

    def reset_model(self, quiet: bool = False) -> None:
        """Back to the original generator; the tuned copy is dropped (a running stage 2 is stopped)."""
        if self._feed is not None and self.jobs.running(JOB_TUNING):
            self._feed.closed = True
            self._stop(JOB_TUNING)
        original = self._base_source()
        if self.original_source is not None:
            self.ui.request(ShowSource(self.original_source))
        self.original_source = None
        self.tuned = None
        self.worker.drop_model(TUNED)
        self._dirty = True
        if not quiet:
            self.say(f"showing the original model again ({original})")

    # ------------------------------------------------------------------ saving

    def start_save(self) -> None:
        if self._refuse_if_busy("save"):
            return
        if self.latent_step is None:
            self.say("nothing to save yet: run stage 1 first", "error")
            return
        from types import MappingProxyType

        from inversion.outputs import free_folder, write_results
        from inversion.pipeline import InversionResult, InversionSettings, LatentResult, TuningResult
        from inversion.preprocess import PreprocessConfig, PreprocessResult

        # Interim glue (helper `inversion`): the results in inversion.pipeline's types, so that report.json has
        # the one layout of inversion.pipeline.build_report; the redesign moves this session onto the pipeline.
        p = self.state.panel
        out = free_folder(Path(os.path.expanduser(p.output.strip() or "out/inversion")))
        source, device, framing = self.latent_source, self.ui.device, self.framing
        aligned, latent, space, tuned = list(self.aligned), self.latent_step, self.latent_space, self.tuned
        frames = max(0, int(p.orbit_frames))
        cols = {k: MappingProxyType({t: tuple(v) for t, v in self._history[k].items()}) for k in self._history}
        sources = MappingProxyType(dict(self.loss_sources))
        result = InversionResult(
            PreprocessResult(aligned), self.target,
            LatentResult(latent.ws, space, latent.cameras, latent.step, latent.total_steps,
                         latent.step < latent.total_steps, cols["latent"], 0.0, sources),
            None if tuned is None else TuningResult(tuned, len(next(iter(cols["tuning"].values()), ())), 0,
                                                    False, cols["tuning"], 0.0, sources))
        settings = InversionSettings(PreprocessConfig(framing=framing, resolution=aligned[0].image.shape[0]),
                                     tuning=None)
        extra = {"saved_by": "splathead studio viewer", "time": time.strftime("%Y-%m-%d %H:%M:%S")}

        def work(ctx: JobContext):
            ctx.progress(0.1, "writing")
            G = self._generator(source, device)
            return write_results(out, G, result, settings, model=source, device=device, orbit_count=frames,
                                 extra=extra)

        def done(paths) -> None:
            self._saved_to = str(out)
            self.say(f"saved to {out}: {', '.join(sorted(paths))}")

        if self._start(JOB_SAVE, work, done, output=str(out)):
            self.say(f"saving to {out}...")

    # ------------------------------------------------------------------ per frame

    def _new_feed(self, stage: str) -> _Feed:
        self._feed = _Feed(stage)
        return self._feed

    @staticmethod
    def _latent_params(ws: np.ndarray) -> LatentParams:
        return LatentParams(space="w", latent=tuple(float(v) for v in np.asarray(ws, np.float32).reshape(-1)),
                            psi=1.0)

    def _drain(self) -> None:
        """Move what the running stage reported into the history, the view and the worker (GUI thread)."""
        feed = self._feed
        if feed is None:
            return
        records, ws, generator = feed.take()
        hist = self._history[feed.stage]
        for step, total, losses in records:
            self._progress = (step, total)
            for k, v in losses.items():
                hist.setdefault(k, []).append(float(v))
            self._dirty = True
        if ws is not None:
            self.ui.request(SetLatent(self._latent_params(ws)))
        if generator is not None:
            self._show_tuned(generator)

    def source_changed(self, event: SourceChanged) -> None:
        """Another model was opened while the tuned one showed: stop showing (and tuning) it."""
        if self.original_source is not None and event.source != TUNED_SOURCE:
            self._opened_elsewhere()

    def poll(self) -> None:
        """Per frame (GUI thread): webcam, file dialog, stage reports, failed jobs, then publish the info."""
        p = self.state.panel
        self._webcam.poll(p.webcam_open)
        p.webcam_open = False  # the panel sets it again while it draws an open Webcam section (a collapsed
        # Inversion header, or a closed window, releases the camera)
        if self._webcam.live() and self._webcam.frame_count != self._webcam_seen:
            self._webcam_seen = self._webcam.frame_count
            if self._webcam_texture is None:
                self._webcam_texture = self._texture()
            self._webcam_texture.upload(self._webcam.frame)
            self._dirty = True
        self._poll_dialog()
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
                self.say(f"{WORK_JOBS.get(name, name)} failed: {lines[-1] if lines else st.error}", "error")
        stage = self._busy()
        info = self.state.info
        if stage != info.stage or self._dirty or self._webcam.status != info.webcam_status:
            self._publish(stage)

    def _poll_dialog(self) -> None:
        if self._dialog is None or not self._dialog.ready(0):
            return
        result, self._dialog = self._dialog.result(), None
        if result:
            self.add_photos(result)

    def _publish(self, stage: str) -> None:
        tex = self._webcam_texture
        live = tex is not None and self._webcam.frame is not None
        self.state.info = InversionInfo(
            photos=tuple(os.path.basename(s) if isinstance(s, str) else s.name for s in self.sources),
            thumbs=tuple(t for _, t in self._thumbs),
            webcam_texture=tex.texture_id if live else 0, webcam_size=tex.size if live else (0, 0),
            webcam_status=self._webcam.status, stage=stage, step=self._progress[0],
            total_steps=self._progress[1],
            latent_history={k: np.asarray(v, np.float64) for k, v in self._history["latent"].items()},
            tuning_history={k: np.asarray(v, np.float64) for k, v in self._history["tuning"].items()},
            has_target=self.target is not None, has_latent=self.latent_step is not None,
            has_tuned=self.tuned is not None or self.ui.load.current == TUNED_SOURCE,
            tuned_active=self.ui.load.current == TUNED_SOURCE, loss_sources=dict(self.loss_sources),
            messages=tuple(self._messages), saved_to=self._saved_to)
        self._dirty = False

    # ------------------------------------------------------------------ shutdown

    def _release_thumbs(self) -> None:
        for tex, _ in self._thumbs:
            tex.release()
        self._thumbs.clear()

    def release(self) -> None:
        """Cancel the jobs, close the camera and free the textures (GUI thread, GL context current)."""
        self._cancel.set()
        for name in WORK_JOBS:
            self.jobs.cancel(name)
        self._webcam.release()
        self._release_thumbs()
        if self._webcam_texture is not None:
            self._webcam_texture.release()
            self._webcam_texture = None
        self.state.info = replace(self.state.info, thumbs=(), webcam_texture=0)
