"""Background jobs (video, saving, statistics, inversion, ...): one daemon thread each, progress and cancel as
data, errors as data.

The GUI thread calls :meth:`JobRunner.start` with a function ``work(ctx) -> result``; ``work`` reports with
``ctx.progress(fraction, message)`` and checks ``ctx.cancelled`` (or calls ``ctx.check()``, which raises
:class:`JobCancelled`). Every frame the GUI calls :meth:`JobRunner.poll`, which returns the statuses and runs
each finished job's ``on_done(result)`` callback **on the GUI thread**, so callbacks may touch UI state. An
exception in ``work`` becomes ``JobStatus.error``; nothing propagates.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from viewer.state.ui import JobStatus


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


@dataclass
class _Job:
    work: Callable[[JobContext], Any]
    ctx: JobContext
    thread: threading.Thread
    on_done: Callable[[Any], None] | None
    started: float
    finished: float | None = None
    result: Any = None
    error: str | None = None
    output: str = ""
    delivered: bool = False


class JobRunner:
    """Named background jobs; one job per name at a time."""

    def __init__(self) -> None:
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()

    def running(self, name: str) -> bool:
        job = self._jobs.get(name)
        return job is not None and job.finished is None

    def start(self, name: str, work: Callable[[JobContext], Any], on_done: Callable[[Any], None] | None = None,
              output: str = "") -> bool:
        """Start ``work`` on a new thread unless a job called ``name`` is still running (then return False).
        ``output``: a path or short text shown with the job's status."""
        with self._lock:
            if self.running(name):
                return False
            ctx = JobContext(name)
            job = _Job(work, ctx, threading.Thread(target=lambda: self._run(name), name=f"job-{name}", daemon=True),
                       on_done, time.perf_counter(), output=output)
            self._jobs[name] = job
        job.thread.start()
        return True

    def _run(self, name: str) -> None:
        job = self._jobs[name]
        try:
            job.result = job.work(job.ctx)
        except JobCancelled:
            job.error = "cancelled"
        except Exception:  # noqa: BLE001 - the job boundary: errors become data
            job.error = traceback.format_exc(limit=6)
        finally:
            job.finished = time.perf_counter()

    def cancel(self, name: str) -> None:
        job = self._jobs.get(name)
        if job is not None:
            job.ctx._cancel.set()

    def poll(self) -> dict[str, JobStatus]:
        """Statuses by name; runs ``on_done`` of newly finished, successful jobs (GUI thread)."""
        out = {}
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
            out[name] = JobStatus(name, not done, 1.0 if done and job.error is None else progress,
                                  message if not done else ("done" if job.error is None else "failed"),
                                  job.error, job.output, end - job.started)
        return out

    def wait(self, name: str, timeout: float | None = None) -> bool:
        """Block until the job ends (scripts and tests, not the GUI); True if it ended."""
        job = self._jobs.get(name)
        if job is None:
            return True
        job.thread.join(timeout)
        return not job.thread.is_alive()

    def shutdown(self, timeout: float = 5.0) -> list[str]:
        """Cancel everything and wait up to ``timeout`` s in total; returns the names still running."""
        for name in list(self._jobs):
            self.cancel(name)
        deadline = time.perf_counter() + timeout
        for job in self._jobs.values():
            job.thread.join(max(0.0, deadline - time.perf_counter()))
        return [n for n, j in self._jobs.items() if j.thread.is_alive()]
