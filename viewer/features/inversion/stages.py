"""The inversion's GPU jobs: ``inversion.pipeline``'s stage generators run on the render worker, one pipeline
step per worker turn (``JobRunner.start_on_worker``), on the worker's own generator.

Each job forwards the pipeline's events to the GUI through a :class:`StageFeed` (a locked queue) as plain data:
losses, the CPU latent to show; a live tuned generator never crosses threads: the job snapshots it into the
worker's ``memory:tuned`` slot itself and sends :class:`TunedPublished`. The job's own result is the stage's
typed result (``PreprocessResult``, ``LatentResult``, ``TuningResult``) or a :class:`StageFailed` message.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from viewer.jobs import JobContext

TUNED = "tuned"
TUNED_SOURCE = f"memory:{TUNED}"


@dataclass(frozen=True)
class StageFailed:
    """A stage's expected failure (no usable photo, a missing weight file): ``message`` is for the user."""

    message: str


@dataclass(frozen=True)
class TunedPublished:
    """The worker's ``memory:tuned`` slot now holds stage 2's copy after ``step`` steps."""

    step: int


class StageFeed:
    """Worker -> GUI mailbox of one stage run (pipeline events without models). ``closed``: set by the GUI to
    drop anything still coming (e.g. after a reset)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: deque = deque()
        self.closed = False

    def put(self, item: Any) -> None:
        with self._lock:
            self._items.append(item)

    def take(self) -> list:
        with self._lock:
            items, self._items = list(self._items), deque()
        return [] if self.closed else items


def _drive(events, feed: StageFeed, ctx: JobContext, on_step=None):
    """Forward ``events`` to ``feed`` one per worker turn; returns the stage result or a StageFailed."""
    from inversion.pipeline import Failed, StageFinished, StepDone

    result: Any = None
    for ev in events:
        if isinstance(ev, Failed):
            return StageFailed(ev.message)
        if isinstance(ev, StageFinished):
            result = ev.result
        if isinstance(ev, StepDone):
            ctx.progress(ev.step / max(1, ev.total), f"step {ev.step}/{ev.total}")
            if on_step is not None:
                on_step(ev)
            feed.put(dataclasses.replace(ev, generator=None, preview=None))
        yield
    return result


def preprocess_job(sources: list, framing, source: str, device: str, feed: StageFeed, stop: threading.Event):
    """Worker job: the generator's resolution, then one photo per turn (``inversion.pipeline.preprocess_events``).
    Returns ``(PreprocessConfig, PreprocessResult)`` or StageFailed."""

    def work(ctx: JobContext, gpu):
        from inversion.pipeline import preprocess_events
        from inversion.preprocess import PreprocessConfig

        ctx.progress(0.0, "loading the generator")
        cfg = PreprocessConfig(framing=framing, resolution=gpu.generator(source, device).config.resolution)
        yield
        result = yield from _drive(preprocess_events(sources, cfg, stop), feed, ctx)
        return result if isinstance(result, StageFailed) else (cfg, result)

    return work


def latent_job(settings, target, source: str, device: str, feed: StageFeed, stop: threading.Event):
    """Worker job: stage 1 (``inversion.pipeline.latent_events``) on the worker's generator of ``source``."""

    def work(ctx: JobContext, gpu):
        from inversion.pipeline import latent_events

        ctx.progress(0.0, "loading the loss networks")
        G = gpu.generator(source, device)
        return (yield from _drive(latent_events(G, target, settings, stop), feed, ctx))

    return work


def tuning_job(settings, target, latent, source: str, device: str, feed: StageFeed, stop: threading.Event):
    """Worker job: stage 2 (``inversion.pipeline.tuning_events``) on a copy of the worker's generator; every
    published copy goes into the worker's ``memory:tuned`` slot (and a TunedPublished into the feed)."""

    def work(ctx: JobContext, gpu):
        from inversion.pipeline import tuning_events

        ctx.progress(0.0, "loading the loss networks")
        G = gpu.generator(source, device)

        def publish(ev) -> None:
            if ev.generator is not None and not feed.closed:
                gpu.put_memory_model(TUNED, copy.deepcopy(ev.generator).eval().requires_grad_(False))
                feed.put(TunedPublished(ev.step))

        return (yield from _drive(tuning_events(G, target, latent, settings, stop), feed, ctx, publish))

    return work


def save_job(out, result, settings, source: str, device: str, frames: int, extra: dict):
    """Worker job: every output of the run (``inversion.outputs.write_results``, with the pipeline's report)."""

    def work(ctx: JobContext, gpu):
        from inversion.outputs import write_results

        ctx.progress(0.1, "writing")
        return write_results(out, gpu.generator(source, device), result, settings, model=source, device=device,
                             orbit_count=frames, extra=extra)

    return work


CALIBRATION_STEPS = 3  # per stage; the first step loads the loss networks, so the later ones are timed


def speed_job(runs, target, source: str, device: str, stop: threading.Event):
    """Worker job: a few throw-away steps of each stage for every ``InversionSettings`` of ``runs`` (both
    stages'; the form's and each preset's, one per speed key; random-weight stand-ins for missing loss files:
    same networks, same speed) on the worker's generator; returns one ``(seconds per stage-1 step, seconds per
    stage-2 step)`` per run, in order (fewer when it stops or fails part way; None if none finished). Nothing
    it computes is kept."""

    def work(ctx: JobContext, gpu):
        from inversion.pipeline import StageFinished, StepDone, latent_events, tuning_events

        G = gpu.generator(source, device)
        out = []
        for k, settings in enumerate(runs):
            nets = dataclasses.replace(settings.networks, allow_random=True)
            s1 = dataclasses.replace(settings, networks=nets, tuning=None, latent=dataclasses.replace(
                settings.latent, steps=CALIBRATION_STEPS, preview_every=0), publish_every=CALIBRATION_STEPS)
            s2 = dataclasses.replace(settings, networks=nets, tuning=dataclasses.replace(
                settings.tuning, steps=CALIBRATION_STEPS, preview_every=0), publish_every=10 ** 9)
            per_step, latent = [], None
            for stage, events in (("latent", lambda: latent_events(G, target, s1, stop)),
                                  ("tuning", lambda: tuning_events(G, target, latent, s2, stop))):
                times = []
                for ev in events():
                    if isinstance(ev, StepDone):
                        times.append(ev.seconds)
                        done = 2 * k + len(per_step) + ev.step / ev.total
                        ctx.progress(done / (2 * len(runs)), f"measuring the speed ({stage})")
                    elif isinstance(ev, StageFinished) and stage == "latent":
                        latent = ev.result
                    if stop.is_set():
                        return tuple(out) or None  # the runs finished so far
                    yield
                if len(times) < 2 or (stage == "latent" and latent is None):
                    return tuple(out) or None
                per_step.append((times[-1] - times[0]) / (len(times) - 1))
            out.append(tuple(per_step))
        return tuple(out)

    return work
