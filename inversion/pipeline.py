"""The one inversion pipeline: photos -> preprocessing -> stage 1 (latent search) -> stage 2 (pivotal tuning),
as a Python generator of typed, frozen events. The CLI (``python -m inversion``) and the viewer both drive it;
:func:`inversion.outputs.write_results` writes its result, with the one report layout of :func:`build_report`.

Whole run (the CLI)::

    settings = InversionSettings(preprocess=PreprocessConfig(...), latent=LatentConfig(...),
                                 tuning=TuningConfig(...), networks=LossNetworks(...))
    for event in run_inversion(G, ["photo.jpg"], settings, cancel=stop_event):
        if isinstance(event, StepDone): ...          # progress: event.stage, event.step, event.losses
        elif isinstance(event, Failed): ...          # expected failure, as data: event.message
        elif isinstance(event, Finished): result = event.result   # InversionResult

One stage at a time (the viewer, whose user starts each stage with its own settings; run each generator on
the thread that owns the model, e.g. by calling ``next()`` from the render worker)::

    for ev in preprocess_events(sources, settings.preprocess, cancel): ...     # StageFinished(result=PreprocessResult)
    target = make_target(preprocessed.aligned)
    for ev in latent_events(G, target, settings, cancel, objective=obj1): ...                  # StageFinished(result=LatentResult)
    for ev in tuning_events(G, target, latent_result, settings, cancel): ...   # StageFinished(result=TuningResult)
    result = InversionResult(preprocessed, target, latent_result, tuning_result)

Events (all frozen dataclasses; ``stage`` is ``"preprocess"``, ``"latent"`` or ``"tuning"``):

- :class:`StageStarted` ``(stage, total)``: before the first step.
- :class:`StepDone` ``(stage, step, total, losses, lr, seconds, preview, latent, generator)``: after each step
  (one per photo in preprocessing, with empty ``losses``). ``latent`` (a CPU copy of ws) and ``generator``
  (stage 2's live tuned copy: snapshot it before handing it to another thread) are set every
  ``settings.publish_every`` steps and on the last step, else None; ``preview`` (uint8 render of the step's
  first photo) follows the stage config's ``preview_every``.
- :class:`StageFinished` ``(stage, result, seconds, cancelled)``: the stage's typed result. Cancelled stages
  also finish, with what they reached (``result`` is None if they took no step).
- :class:`Failed` ``(stage, message)``: an expected failure (no usable photo, a missing or refused weight file);
  the message is complete for a user. Nothing follows it.
- :class:`Finished` ``(result)``: the end of :func:`run_inversion` (also after a cancel), with everything done.

Cancel by setting ``cancel`` (a ``threading.Event``; checked before every step) or by ``.close()``-ing the
generator. After a cancel, :func:`run_inversion` finishes the current stage, starts no other and ends with
:class:`Finished`. Programming errors raise as usual.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field, is_dataclass
from types import MappingProxyType
from typing import Iterator, Literal, Mapping, Sequence, Union

import numpy as np
import torch

from core.camera import Cameras
from core.generator import Generator
from inversion.latent_search import LatentConfig, invert_latent
from inversion.objective import LossNetworks, Objective
from inversion.pivotal_tuning import TuningConfig, tune_generator
from inversion.preprocess import InversionTarget, PreprocessConfig, PreprocessResult, make_target, preprocess_photos
from inversion.pretrained import MissingWeightsError

PipelineStage = Literal["preprocess", "latent", "tuning"]
REPORT_FORMAT = "splathead-inversion-report"
REPORT_VERSION = 2


@dataclass(frozen=True)
class InversionSettings:
    """Everything one inversion run needs besides the generator and the photos.

    Attributes:
        preprocess: detection, alignment, camera estimate, weight map.
        latent: stage 1. tuning: stage 2, or None to skip it.
        networks: where the pretrained loss networks come from (and whether stand-ins are allowed).
        publish_every: attach the current latent (stage 1) / tuned generator (stage 2) to every this many
            :class:`StepDone` events and the last one (0: the last one only).
    """

    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    latent: LatentConfig = field(default_factory=LatentConfig)
    tuning: TuningConfig | None = field(default_factory=TuningConfig)
    networks: LossNetworks = field(default_factory=LossNetworks)
    publish_every: int = 0

    def __post_init__(self) -> None:
        if self.publish_every < 0:
            raise ValueError(f"publish_every must be >= 0, got {self.publish_every}")


# ---------------------------------------------------------------------------------------------- results


def final_losses(history: Mapping[str, tuple[float, ...]]) -> dict[str, float]:
    """The last value of every loss term of a stage's ``history`` (not its ``step`` and ``lr`` columns)."""
    return {k: v[-1] for k, v in history.items() if k not in ("step", "lr") and v}


@dataclass(frozen=True, eq=False)
class LatentResult:
    """Stage 1's outcome.

    Attributes:
        ws: ``[1, num_ws or 1, w_dim]`` float32 CPU latent (the pivot of stage 2).
        space: ``"w"`` or ``"w+"``.
        cameras: ``[N]`` CPU cameras of the photos after refinement (the initial ones without it).
        steps_done, total_steps: steps taken / planned. cancelled: stopped early by the user.
        history: term name (``step``, ``lr``, ``total``, ``mse``, ...) -> one value per step.
        seconds: wall time of the stage. loss_sources: loss network -> weight file or ``"random stand-in"``.
    """

    ws: torch.Tensor
    space: str
    cameras: Cameras
    steps_done: int
    total_steps: int
    cancelled: bool
    history: Mapping[str, tuple[float, ...]]
    seconds: float
    loss_sources: Mapping[str, str]

    @property
    def final_losses(self) -> dict[str, float]:
        return final_losses(self.history)


@dataclass(frozen=True, eq=False)
class TuningResult:
    """Stage 2's outcome: ``generator`` is the tuned copy (eval mode, no grad; the original is untouched);
    the other attributes as in :class:`LatentResult`."""

    generator: Generator
    steps_done: int
    total_steps: int
    cancelled: bool
    history: Mapping[str, tuple[float, ...]]
    seconds: float
    loss_sources: Mapping[str, str]

    @property
    def final_losses(self) -> dict[str, float]:
        return final_losses(self.history)


@dataclass(frozen=True, eq=False)
class InversionResult:
    """A whole run: ``preprocess`` (aligned photos and the skipped ones' messages, with ``seconds``),
    ``target`` (None when no photo was usable), stage results (None when not run)."""

    preprocess: PreprocessResult
    target: InversionTarget | None
    latent: LatentResult | None = None
    tuning: TuningResult | None = None
    preprocess_seconds: float = 0.0

    @property
    def names(self) -> tuple[str, ...]:
        return () if self.target is None else self.target.names


StageResult = Union[PreprocessResult, LatentResult, TuningResult]


# ---------------------------------------------------------------------------------------------- events


@dataclass(frozen=True)
class StageStarted:
    stage: PipelineStage
    total: int


@dataclass(frozen=True, eq=False)
class StepDone:
    """One step of a stage (see the module docstring). ``losses``: read-only term -> value of this step;
    ``seconds``: since the stage started; ``preview``: ``uint8 [R, R, 3]`` or None; ``latent``:
    ``[1, num_ws or 1, w_dim]`` CPU tensor or None; ``generator``: stage 2's live tuned copy or None."""

    stage: PipelineStage
    step: int
    total: int
    losses: Mapping[str, float]
    lr: float
    seconds: float
    preview: np.ndarray | None = None
    latent: torch.Tensor | None = None
    generator: Generator | None = None


@dataclass(frozen=True, eq=False)
class StageFinished:
    stage: PipelineStage
    result: StageResult | None
    seconds: float
    cancelled: bool


@dataclass(frozen=True)
class Failed:
    stage: PipelineStage
    message: str


@dataclass(frozen=True, eq=False)
class Finished:
    result: InversionResult


Event = Union[StageStarted, StepDone, StageFinished, Failed, Finished]


def _cancelled(cancel: threading.Event | None) -> bool:
    return cancel is not None and cancel.is_set()


def _publish(step: int, total: int, every: int) -> bool:
    return step == total or (every > 0 and step % every == 0)


def _columns(rows: list[dict[str, float]]) -> Mapping[str, tuple[float, ...]]:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    return MappingProxyType({k: tuple(float(r.get(k, float("nan"))) for r in rows) for k in keys})


# ---------------------------------------------------------------------------------------------- stages


def preprocess_events(sources: Sequence, cfg: PreprocessConfig, cancel: threading.Event | None = None
                      ) -> Iterator[Event]:
    """Preprocess photos (paths or :class:`inversion.photos.Photo`) one by one: a :class:`StepDone` per photo,
    then ``StageFinished(result=PreprocessResult)``; :class:`Failed` when none is usable."""
    t0 = time.perf_counter()
    total = len(sources)
    yield StageStarted("preprocess", total)
    aligned, problems, messages = [], [], []
    for i, src in enumerate(sources):
        if _cancelled(cancel):
            yield StageFinished("preprocess", PreprocessResult(aligned, problems, messages),
                                time.perf_counter() - t0, True)
            return
        res = preprocess_photos([src], cfg)
        aligned += res.aligned
        problems += res.problems
        messages += res.messages
        yield StepDone("preprocess", i + 1, total, MappingProxyType({}), 0.0, time.perf_counter() - t0)
    result = PreprocessResult(aligned, problems, messages)
    if not aligned:
        detail = "; ".join(problems) if problems else "no photo given"
        yield Failed("preprocess", f"no usable photo, nothing to invert ({detail})")
        return
    yield StageFinished("preprocess", result, time.perf_counter() - t0, False)


def _objective(losses, settings: InversionSettings, device) -> Objective:
    return Objective(losses, settings.preprocess.framing, settings.networks).to(device)


def latent_events(G: Generator, target: InversionTarget, settings: InversionSettings,
                  cancel: threading.Event | None = None, start: torch.Tensor | None = None,
                  objective: Objective | None = None) -> Iterator[Event]:
    """Stage 1 on ``target`` (its cameras are the initial estimates); ends with
    ``StageFinished(result=LatentResult)`` or :class:`Failed` (missing loss weights). ``start``: optional
    ``[1, num_ws or 1, w_dim]`` start latent instead of w_avg. ``objective``: a prebuilt loss for
    ``settings.latent.losses`` (else built here). G is not modified."""
    cfg = settings.latent
    device = next(G.parameters()).device
    try:
        objective = objective if objective is not None else _objective(cfg.losses, settings, device)
    except MissingWeightsError as exc:
        yield Failed("latent", str(exc))
        return
    t0 = time.perf_counter()
    yield StageStarted("latent", cfg.steps)
    rows: list[dict[str, float]] = []
    last = None
    for last in invert_latent(G, target, cfg, objective, cancel=cancel, start=start):
        rows.append({"step": float(last.step), "lr": last.lr, **last.losses})
        pub = _publish(last.step, cfg.steps, settings.publish_every)
        yield StepDone("latent", last.step, cfg.steps, MappingProxyType(dict(last.losses)), last.lr,
                       time.perf_counter() - t0, last.preview, last.ws if pub else None)
    seconds = time.perf_counter() - t0
    cancelled = last is None or last.step < cfg.steps
    result = None if last is None else LatentResult(
        last.ws, cfg.space, last.cameras, last.step, cfg.steps, cancelled, _columns(rows), seconds,
        MappingProxyType(dict(objective.sources)))
    if result is not None and cancelled and not _publish(last.step, cfg.steps, settings.publish_every):
        # stopped between publications: let the consumer show where it got to
        yield StepDone("latent", last.step, cfg.steps, MappingProxyType(dict(last.losses)), last.lr, seconds,
                       None, last.ws)
    yield StageFinished("latent", result, seconds, cancelled)


def tuning_events(G: Generator, target: InversionTarget, latent: LatentResult, settings: InversionSettings,
                  cancel: threading.Event | None = None, objective: Objective | None = None) -> Iterator[Event]:
    """Stage 2: tune a copy of G around ``latent.ws`` with ``latent.cameras``; ends with
    ``StageFinished(result=TuningResult)`` or :class:`Failed`. Needs ``settings.tuning``; ``objective`` as in
    :func:`latent_events`."""
    cfg = settings.tuning
    if cfg is None:
        raise ValueError("settings.tuning is None: stage 2 is switched off")
    device = next(G.parameters()).device
    try:
        objective = objective if objective is not None else _objective(cfg.losses, settings, device)
    except MissingWeightsError as exc:
        yield Failed("tuning", str(exc))
        return
    t0 = time.perf_counter()
    yield StageStarted("tuning", cfg.steps)
    rows: list[dict[str, float]] = []
    last = None
    refined = target.with_cameras(latent.cameras)
    for last in tune_generator(G, latent.ws, refined, cfg, objective, cancel=cancel):
        rows.append({"step": float(last.step), "lr": last.lr, **last.losses})
        pub = _publish(last.step, cfg.steps, settings.publish_every)
        yield StepDone("tuning", last.step, cfg.steps, MappingProxyType(dict(last.losses)), last.lr,
                       time.perf_counter() - t0, last.preview, None, last.generator if pub else None)
    seconds = time.perf_counter() - t0
    stopped_early = last is not None and last.step < cfg.steps
    cancelled = last is None or (stopped_early and _cancelled(cancel))
    result = None
    if last is not None:
        result = TuningResult(last.generator.eval().requires_grad_(False), last.step, cfg.steps, cancelled,
                              _columns(rows), seconds, MappingProxyType(dict(objective.sources)))
        if stopped_early and not _publish(last.step, cfg.steps, settings.publish_every):
            yield StepDone("tuning", last.step, cfg.steps, MappingProxyType(dict(last.losses)), last.lr, seconds,
                           None, None, result.generator)
    yield StageFinished("tuning", result, seconds, cancelled)


def run_inversion(G: Generator, sources: Sequence, settings: InversionSettings,
                  cancel: threading.Event | None = None) -> Iterator[Event]:
    """The whole pipeline (module docstring): every stage's events, then :class:`Finished` (or :class:`Failed`).

    Args:
        G: the generator (never modified; stage 2 tunes a copy).
        sources: photo paths and/or :class:`inversion.photos.Photo` objects of one person.
        settings: see :class:`InversionSettings`; its ``preprocess.resolution`` is normally G's resolution.
        cancel: set it to stop (module docstring).

    The loss networks of both stages are loaded first, so a missing weight file fails before any work.
    """
    device = next(G.parameters()).device
    try:
        obj1 = _objective(settings.latent.losses, settings, device)
        obj2 = None if settings.tuning is None else _objective(settings.tuning.losses, settings, device)
    except MissingWeightsError as exc:
        yield Failed("latent", str(exc))
        return
    pre_result: PreprocessResult | None = None
    pre_seconds = 0.0
    for ev in preprocess_events(sources, settings.preprocess, cancel):
        yield ev
        if isinstance(ev, Failed):
            return
        if isinstance(ev, StageFinished):
            pre_result, pre_seconds = ev.result, ev.seconds  # type: ignore[assignment]
    assert pre_result is not None
    if _cancelled(cancel) or not pre_result.aligned:
        yield Finished(InversionResult(pre_result, None, preprocess_seconds=pre_seconds))
        return
    target = make_target(pre_result.aligned)
    latent: LatentResult | None = None
    for ev in latent_events(G, target, settings, cancel, objective=obj1):
        yield ev
        if isinstance(ev, Failed):
            return
        if isinstance(ev, StageFinished):
            latent = ev.result  # type: ignore[assignment]
    tuning: TuningResult | None = None
    if latent is not None and settings.tuning is not None and not _cancelled(cancel):
        for ev in tuning_events(G, target, latent, settings, cancel, objective=obj2):
            yield ev
            if isinstance(ev, Failed):
                return
            if isinstance(ev, StageFinished):
                tuning = ev.result  # type: ignore[assignment]
    yield Finished(InversionResult(pre_result, target, latent, tuning, pre_seconds))


# ---------------------------------------------------------------------------------------------- report


def _jsonable(value):
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return str(value)


def _stage_record(r: LatentResult | TuningResult | None, extra: dict) -> dict | None:
    if r is None:
        return None
    return {**extra, "steps_done": r.steps_done, "total_steps": r.total_steps, "cancelled": r.cancelled,
            "final": r.final_losses, "history": {k: list(v) for k, v in r.history.items()},
            "seconds": r.seconds, "loss_networks": dict(r.loss_sources)}


def build_report(result: InversionResult, settings: InversionSettings, *, model: str,
                 model_format: str | None = None, device: str | None = None,
                 extra: Mapping[str, object] | None = None) -> dict:
    """The report.json layout (the only place it is defined), JSON-able::

        {"format": "splathead-inversion-report", "version": 2, "model", "model_format", "device",
         "framing", "resolution", "photos": [names], "skipped": [messages], "notes": [messages],
         "settings": {preprocess, latent, tuning, networks, publish_every},
         "stage1": {"space", "steps_done", "total_steps", "cancelled", "final": {term: value},
                    "history": {term: [per step]}, "seconds", "loss_networks"} or null,
         "stage2": {same keys without "space"} or null,
         "timings": {"preprocess", "stage1", "stage2", "total"} (seconds),
         ...extra}

    ``write_results`` adds ``"outputs"`` (name -> path).
    """
    pre = result.preprocess
    t1 = result.latent.seconds if result.latent else 0.0
    t2 = result.tuning.seconds if result.tuning else 0.0
    report = {
        "format": REPORT_FORMAT, "version": REPORT_VERSION, "model": model, "model_format": model_format,
        "device": device, "framing": settings.preprocess.framing.name,
        "resolution": None if result.target is None else result.target.resolution,
        "photos": list(result.names), "skipped": list(pre.problems), "notes": list(pre.messages),
        "settings": {"preprocess": {**_jsonable(settings.preprocess), "framing": settings.preprocess.framing.name},
                     "latent": _jsonable(settings.latent), "tuning": _jsonable(settings.tuning),
                     "networks": _jsonable(settings.networks), "publish_every": settings.publish_every},
        "stage1": _stage_record(result.latent, {"space": result.latent.space} if result.latent else {}),
        "stage2": _stage_record(result.tuning, {}),
        "timings": {"preprocess": result.preprocess_seconds, "stage1": t1, "stage2": t2,
                    "total": result.preprocess_seconds + t1 + t2},
    }
    for k, v in (extra or {}).items():
        if k in report:
            raise ValueError(f"extra report key {k!r} would replace a pipeline field")
        report[k] = _jsonable(v)
    return report
