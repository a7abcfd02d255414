"""Background jobs with progress, cancel and errors as data; two kinds, one status table.

- **Thread jobs** (:meth:`JobRunner.start`): ``work(ctx) -> result`` on a daemon thread of its own, for file
  work that touches no model (writing a .png, reading a latent or directions file, following a training run).
- **Worker jobs** (:meth:`JobRunner.start_on_worker`): ``work(ctx, gpu) -> result`` run by the render worker,
  the only thread that touches models and device tensors (``gpu`` is its :class:`~viewer.viewport.models.
  GpuAccess`). If ``work`` is a Python generator, the worker advances it one ``next()`` per turn, between
  render requests, so long jobs (inversion stages, videos) never hold the view up for more than a step; its
  ``return`` value is the result. A cancelled generator is closed, so its ``finally`` blocks run.

``work`` reports with ``ctx.progress(fraction, message)`` and checks ``ctx.cancelled`` (or calls
``ctx.check()``, which raises :class:`JobCancelled`). Every frame the GUI calls :meth:`JobRunner.poll`, which
returns the statuses and runs each finished job's ``on_done(result)`` **on the GUI thread**, so callbacks may
touch UI state. An exception in ``work`` becomes ``JobStatus.error``; nothing propagates. Job names are the
closed list :data:`ui_state.jobs.JobName`; one job per name runs at a time.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from ui_state.jobs import JOB_NAMES, JobName, JobStatus


class JobCancelled(Exception):
    """Raised by :meth:`JobContext.check` after a cancel request."""


@dataclass
class JobContext:
    """What a job's function sees: progress reporting and the cancel flag."""

    name: str
    _cancel: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _progress: float = 0.0
    _message: str = ""

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def cancel_event(self) -> threading.Event:
        """The cancel flag as an ``Event`` (for APIs that take one, e.g. ``core.orbit_video``, inversion)."""
        return self._cancel

    def cancel(self) -> None:
        self._cancel.set()

    def check(self) -> None:
        if self._cancel.is_set():
            raise JobCancelled(f"{self.name} cancelled")

    def progress(self, fraction: float, message: str = "") -> None:
        with self._lock:
            self._progress = min(1.0, max(0.0, float(fraction)))
            self._message = message

    def snapshot(self) -> tuple[float, str]:
        with self._lock:
            return self._progress, self._message


class WorkerHost(Protocol):
    """The render worker as a host of jobs (see :meth:`viewer.viewport.worker.RenderWorker.add_job`)."""

    def add_job(self, ctx: JobContext, work: Callable[..., Any], finish: Callable[[Any, str | None], None]
                ) -> None: ...


@dataclass
class _Job:
    ctx: JobContext
    on_done: Callable[[Any], None] | None
    started: float
    output: str = ""
    thread: threading.Thread | None = None
    done: threading.Event = field(default_factory=threading.Event)
    finished: float | None = None
    result: Any = None
    error: str | None = None
    delivered: bool = False
    wake: Callable[[], None] | None = None

    def finish(self, result: Any, error: str | None) -> None:
        """Record the outcome (any thread); the GUI delivers it in :meth:`JobRunner.poll`."""
        self.result, self.error = result, error
        self.finished = time.perf_counter()
        self.done.set()
        if self.wake is not None:
            self.wake()


class JobRunner:
    """Named background jobs; one job per name at a time. ``worker``: where :meth:`start_on_worker` jobs run;
    ``wake``: called (on the job's thread) when a job ends, so an idling GUI delivers it at once."""

    def __init__(self, worker: WorkerHost | None = None, wake: Callable[[], None] | None = None) -> None:
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._worker = worker
        self._wake = wake

    @property
    def any_running(self) -> bool:
        return any(job.finished is None for job in list(self._jobs.values()))

    def running(self, name: JobName) -> bool:
        job = self._jobs.get(name)
        return job is not None and job.finished is None

    def _new(self, name: JobName, on_done, output: str) -> _Job | None:
        if name not in JOB_NAMES:
            raise ValueError(f"unknown job name {name!r}; add it to ui_state.jobs.JobName")
        with self._lock:
            if self.running(name):
                return None
            job = _Job(JobContext(name), on_done, time.perf_counter(), output=output, wake=self._wake)
            self._jobs[name] = job
            return job

    def start(self, name: JobName, work: Callable[[JobContext], Any], on_done: Callable[[Any], None] | None = None,
              output: str = "") -> bool:
        """Start ``work`` on a new thread unless a job called ``name`` is still running (then return False).
        ``output``: a path or short text shown with the job's status."""
        job = self._new(name, on_done, output)
        if job is None:
            return False
        job.thread = threading.Thread(target=self._run, args=(job, work), name=f"job-{name}", daemon=True)
        job.thread.start()
        return True

    def start_on_worker(self, name: JobName, work: Callable[..., Any], on_done: Callable[[Any], None] | None = None,
                        output: str = "") -> bool:
        """Queue ``work(ctx, gpu)`` on the render worker (see the module docstring); False while ``name`` runs."""
        if self._worker is None:
            raise RuntimeError("this JobRunner has no render worker for GPU jobs")
        job = self._new(name, on_done, output)
        if job is None:
            return False
        self._worker.add_job(job.ctx, work, job.finish)
        return True

    @staticmethod
    def _run(job: _Job, work: Callable[[JobContext], Any]) -> None:
        try:
            result, error = work(job.ctx), None
        except JobCancelled:
            result, error = None, "cancelled"
        except Exception:  # noqa: BLE001 - the job boundary: errors become data
            result, error = None, traceback.format_exc(limit=6)
        job.finish(result, error)

    def cancel(self, name: JobName) -> None:
        job = self._jobs.get(name)
        if job is not None:
            job.ctx.cancel()

    def poll(self) -> dict[JobName, JobStatus]:
        """Statuses by name; runs ``on_done`` of newly finished, successful jobs (GUI thread)."""
        out: dict[JobName, JobStatus] = {}
        for name, job in list(self._jobs.items()):
            progress, message = job.ctx.snapshot()
            done = job.finished is not None
            if done and not job.delivered:
                job.delivered = True
                if job.error is None and job.on_done is not None:
                    try:
                        job.on_done(job.result)
                    except Exception:  # noqa: BLE001
                        job.error = traceback.format_exc(limit=4)
            end = job.finished if done else time.perf_counter()
            out[name] = JobStatus(name, not done, 1.0 if done and job.error is None else progress,  # type: ignore[arg-type]
                                  message if not done else ("done" if job.error is None else "failed"),
                                  job.error, job.output, end - job.started)
        return out

    def wait(self, name: JobName, timeout: float | None = None) -> bool:
        """Block until the job ends (scripts and tests, not the GUI); True if it ended."""
        job = self._jobs.get(name)
        return job is None or job.done.wait(timeout)

    def shutdown(self, timeout: float = 5.0) -> list[str]:
        """Cancel everything and wait up to ``timeout`` s in total; returns the names still running."""
        for name in list(self._jobs):
            self.cancel(name)  # type: ignore[arg-type]
        deadline = time.perf_counter() + timeout
        for job in list(self._jobs.values()):
            job.done.wait(max(0.0, deadline - time.perf_counter()))
        return [n for n, j in self._jobs.items() if j.finished is None]
