"""The render worker: the one thread that owns the models and the device (docs/architecture.md, "Threads").

The GUI thread calls :meth:`RenderWorker.submit` with a :class:`~ui_state.render.RenderParams` (never blocks:
a size-1 mailbox keeps only the newest request; older unstarted ones are dropped) and polls
:meth:`RenderWorker.latest` (never blocks) for the newest finished :class:`~ui_state.render.RenderResult`.
Generations are monotonic; a published result is never older than one published before it.

Between requests the worker gives one turn to each queued GPU job (:meth:`add_job`, used by
``viewer.jobs.JobRunner.start_on_worker``): a job that is a Python generator is advanced by one ``next()``
per turn, so renders keep flowing while it runs. Every exception in a request becomes
``RenderResult(error=...)`` and in a job ``JobStatus.error``; the thread keeps serving. After a CUDA
out-of-memory error the caches are dropped.

torch and ``core`` are imported lazily, on the worker thread, so importing this module is cheap.
"""

from __future__ import annotations

import inspect
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from ui_state.render import RenderParams, RenderResult, RenderStats
from viewer.jobs import JobCancelled, JobContext
from viewer.viewport.models import GpuAccess, ModelCache

LOW_RES_DIVISOR = 4  # image side divisor while dragging (low_res requests)
CPU_LOW_RES_DIVISOR = 2  # the same on the CPU splat rasterizer, which draws a full 512^2 picture in ~20 ms


@dataclass
class _WorkerJob:
    ctx: JobContext
    work: Callable[..., Any]
    finish: Callable[[Any, str | None], None]
    steps: Any = None  # the generator once started


class RenderWorker:
    """Daemon thread serving render requests and GPU jobs; see the module docstring. Use as a context manager
    or call :meth:`close`."""

    def __init__(self, name: str = "render-worker", wake: Callable[[], None] | None = None) -> None:
        """``wake``: called (on the worker thread) after each published result, so an idling GUI draws it."""
        self._wake = wake
        self._cond = threading.Condition()
        self._pending: tuple[int, RenderParams] | None = None
        self._generation = 0
        self._latest: RenderResult | None = None
        self._closed = False
        self._jobs: deque[_WorkerJob] = deque()
        self.models = ModelCache()
        self._gpu = GpuAccess(self.models)
        self._cpu_splats = None  # CpuSplatRasterizer, made on the worker thread at the first CPU image
        self.cpu_splats_error: str | None = None  # why the CPU rasterizer cannot run (then torch renders)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ GUI-thread API

    def submit(self, params: RenderParams) -> int:
        """Queue ``params``, replacing any request not yet started; return its generation (never blocks)."""
        if not isinstance(params, RenderParams):
            raise TypeError(f"submit() takes RenderParams, got {type(params).__name__}")
        with self._cond:
            if self._closed:
                raise RuntimeError("the render worker is closed")
            self._generation += 1
            self._pending = (self._generation, params)
            self._cond.notify_all()
            return self._generation

    def add_job(self, ctx: JobContext, work: Callable[..., Any], finish: Callable[[Any, str | None], None]) -> None:
        """Queue ``work(ctx, gpu)`` (see the module docstring); ``finish(result, error)`` is called on the worker
        thread when it ends (error ``"cancelled"`` after a cancel)."""
        with self._cond:
            if self._closed:
                finish(None, "the render worker is closed")
                return
            self._jobs.append(_WorkerJob(ctx, work, finish))
            self._cond.notify_all()

    def call(self, fn: Callable[[GpuAccess], Any], timeout: float | None = None) -> Any:
        """Run ``fn(gpu)`` on the worker thread and return its result (re-raising its error); blocks the caller,
        so it is for scripts and tests, never the GUI thread."""
        done, box = threading.Event(), {}

        def finish(result: Any, error: str | None) -> None:
            box.update(result=result, error=error)
            done.set()

        self.add_job(JobContext("call"), lambda ctx, gpu: fn(gpu), finish)
        if not done.wait(timeout):
            raise TimeoutError("the render worker did not run the call in time")
        if box["error"] is not None:
            raise RuntimeError(f"the call failed on the render worker:\n{box['error']}")
        return box["result"]

    def latest(self) -> RenderResult | None:
        """The newest finished result, or None before the first (never blocks)."""
        with self._cond:
            return self._latest

    def wait(self, generation: int, timeout: float | None = None) -> RenderResult | None:
        """Block until a result of at least ``generation`` is published (scripts and tests; not the GUI)."""
        with self._cond:
            self._cond.wait_for(lambda: (self._latest is not None and self._latest.generation >= generation)
                                or not self._thread.is_alive(), timeout)
            return self._latest

    def put_model(self, name: str, generator) -> str:
        """Make an in-memory generator available as source ``memory:<name>`` (see ``ModelCache.put_memory``)."""
        return self.models.put_memory(name, generator)

    def drop_model(self, name: str) -> None:
        self.models.drop_memory(name)

    def set_directions(self, source: str, version: int, directions) -> None:
        """The slider directions for ``source`` that requests with ``SliderParams.directions == version`` use."""
        self.models.set_directions(source, version, directions)

    def drop_caches(self) -> None:
        """Forget loaded models and scenes at the next request (thread-safe: it runs on the worker)."""
        self.models.request_drop()

    @property
    def generation(self) -> int:
        """The generation of the newest request submitted."""
        with self._cond:
            return self._generation

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def synthesis_count(self) -> int:
        return self.models.synthesis_count

    def close(self, timeout: float | None = 10.0) -> None:
        """Stop after the request or job step in progress (pending requests are dropped, jobs cancelled) and
        join the thread."""
        with self._cond:
            self._closed = True
            self._pending = None
            for job in self._jobs:
                job.ctx.cancel()
            self._cond.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if self._cpu_splats is not None and not self._thread.is_alive():
            self._cpu_splats.close()

    def __enter__(self) -> RenderWorker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ worker thread

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._jobs or self._closed)
                if self._closed:
                    jobs, self._jobs = list(self._jobs), deque()
                    self._cond.notify_all()
                    break
                request, self._pending = self._pending, None
                job = self._jobs.popleft() if self._jobs else None
            if request is not None:
                result = self._serve(*request)
                with self._cond:
                    if self._latest is None or result.generation > self._latest.generation:
                        self._latest = result
                    self._cond.notify_all()
                if self._wake is not None:
                    self._wake()
            if job is not None and self._turn(job):
                with self._cond:
                    self._jobs.append(job)  # not finished: back of the queue
        for job in jobs:  # closed: end what is left
            self._end(job, None, "cancelled")

    def _turn(self, job: _WorkerJob) -> bool:
        """Run one step of ``job``; True if it has more steps."""
        if job.ctx.cancelled:
            self._end(job, None, "cancelled")
            return False
        try:
            if job.steps is None:
                out = job.work(job.ctx, self._gpu)
                if not inspect.isgenerator(out):
                    job.finish(out, None)
                    return False
                job.steps = out
            next(job.steps)
            return True
        except StopIteration as stop:
            job.finish(stop.value, None)
        except JobCancelled:
            self._end(job, None, "cancelled")
        except Exception as exc:  # noqa: BLE001 - the job boundary: errors become data
            self._out_of_memory(exc)
            job.finish(None, traceback.format_exc(limit=6))
        return False

    @staticmethod
    def _end(job: _WorkerJob, result: Any, error: str | None) -> None:
        if job.steps is not None:
            try:
                job.steps.close()  # runs the job's finally blocks (e.g. removes a half-written video)
            except Exception:  # noqa: BLE001
                error = traceback.format_exc(limit=4)
        job.finish(result, error)

    def _out_of_memory(self, exc: Exception) -> bool:
        if "out of memory" in str(exc).lower():
            self.models.drop()
            return True
        return False

    def _serve(self, generation: int, p: RenderParams) -> RenderResult:
        t0 = time.perf_counter()
        info: dict[str, Any] = {}
        out: dict[str, Any] = {}
        try:
            image = self._render(p, info, out)
            error = None
        except Exception as exc:  # noqa: BLE001 - the worker boundary: errors become data
            image, error = None, traceback.format_exc()
            if self._out_of_memory(exc):
                error += "\n(out of GPU memory: caches dropped; try a smaller size or low resolution)"
        stats = RenderStats(total_ms=(time.perf_counter() - t0) * 1e3, synthesis_count=self.models.synthesis_count,
                            **info)
        return RenderResult(image, stats, error, generation, p, scene=out.get("scene"), splats=out.get("splats"),
                            ws=out.get("ws"), base_ws=out.get("base_ws"))

    def _render(self, p: RenderParams, info: dict, out: dict):
        import torch

        from viewer.viewport.requests import make_image

        device = torch.device(p.device)
        timer = _Timer(device)
        loaded = self.models.load(p.source, device)
        info.update(source_kind=loaded.kind, random_weights=loaded.random_weights)
        scene, synthesized = self.models.scene(p, device)
        fast = self._cpu_rasterizer(p, device)
        gs, splats = self.models.edited(p, device, scene.gaussians,
                                        need_splats=p.output == "scene" or fast is not None)
        out.update(scene=gs, ws=scene.ws, base_ws=scene.base_ws, splats=splats)
        info.update(synthesized=synthesized, synthesis_ms=timer.lap(), gaussians=int(gs.num_gaussians))
        if p.output == "scene":
            return None
        w, h = p.width, p.height
        if p.low_res:
            div = CPU_LOW_RES_DIVISOR if fast is not None else LOW_RES_DIVISOR
            w, h = max(1, w // div), max(1, h // div)
        if fast is not None:
            from viewer.viewport.splats import intrinsics, view_matrix

            image, backend = fast.draw(splats, view_matrix(p.camera), intrinsics(p.camera, w, h), w, h,
                                       p.background, p.splat_scale, p.mode), "cpu-splats"
        else:
            with torch.no_grad():
                image, backend = make_image(gs, p, w, h)
        info.update(width=w, height=h, backend=backend, render_ms=timer.lap())
        return image

    def _cpu_rasterizer(self, p: RenderParams, device):
        """The CPU splat rasterizer for an image request it can draw (RGB or alpha on the CPU), else None (the
        torch reference draws it). Made, and its kernels compiled, at the first such request."""
        if (p.output != "image" or device.type != "cpu" or p.mode not in ("rgb", "alpha")
                or self.cpu_splats_error):
            return None
        if self._cpu_splats is None:
            from viewer.viewport import cpu_splats

            self.cpu_splats_error = cpu_splats.unavailable()
            if self.cpu_splats_error:
                return None
            self._cpu_splats = cpu_splats.CpuSplatRasterizer()
        return self._cpu_splats


class _Timer:
    """Lap timer in ms: perf_counter on the CPU, CUDA events (synchronised) on a CUDA device."""

    def __init__(self, device) -> None:
        import torch

        self._cuda = device.type == "cuda"
        self._torch = torch
        self._t = time.perf_counter()
        if self._cuda:
            self._ev = torch.cuda.Event(enable_timing=True)
            self._ev.record()

    def lap(self) -> float:
        if self._cuda:
            ev = self._torch.cuda.Event(enable_timing=True)
            ev.record()
            ev.synchronize()
            ms = self._ev.elapsed_time(ev)
            self._ev = ev
            return ms
        t = time.perf_counter()
        ms, self._t = (t - self._t) * 1e3, t
        return ms
