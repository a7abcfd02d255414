"""What the view shows: opening files and built-in sources (Load panel, drops, snapshots), showing a feature's
source (an inversion's tuned generator), the recent-files list, and dropping the worker's caches.

The only writer of ``ui.load.current``; every change is announced as :class:`~viewer.events.SourceChanged`.

Opening is all or nothing: the file is first loaded on the render worker (a job, ``open_source``, into the
same cache the view renders from); only when that worked does the view switch to it, the recent list take it
and the other features hear about it. A file that fails to load changes nothing but the error line in the Load
panel (and the message list).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from core.model_files import GENERATOR_SUFFIXES
from ui_state.actions import EmptyCache, OpenFile, SetLatent, ShowSource
from viewer.events import SourceChanged
from viewer.features.base import Feature, Studio

MAX_RECENT_BYTES = 1 << 16
MEMORY_PREFIX = "memory:"


def check_source(path: str) -> str:
    """'' if ``path`` can be opened (a file that exists, or a built-in source), else why not."""
    from core.latent import RANDOM_PREFIX, RANDOM_SOURCES

    if path in RANDOM_SOURCES or path.startswith(MEMORY_PREFIX):
        return ""
    if path.startswith(RANDOM_PREFIX):
        return f"unknown built-in source {path!r}; use one of {', '.join(RANDOM_SOURCES)}"
    p = Path(path).expanduser()
    if not p.exists():
        return f"file not found: {path}"
    if p.is_dir():
        return f"{path} is a folder; choose a generator file (.safetensors, .pkl) or a .ply scene"
    return ""


def is_model_file(source: str) -> bool:
    """``source`` is a generator file on disk (not a ``.ply`` scene, a built-in or an in-memory model): what
    files beside it (directions, saved latents) belong to."""
    from core.latent import RANDOM_PREFIX

    return not source.startswith((RANDOM_PREFIX, MEMORY_PREFIX)) and source.lower().endswith(GENERATOR_SUFFIXES) \
        and Path(source).is_file()


def recent_file(state_dir: Path | None) -> Path:
    base = state_dir if state_dir is not None else Path(os.environ.get("XDG_CONFIG_HOME", "~/.config")) \
        .expanduser() / "splathead-studio"
    return Path(base) / "recent.json"


def read_recent(path: Path) -> list[str]:
    """The saved recent list; a missing, huge or corrupt file gives an empty list."""
    try:
        from core.regular_file import require_regular_file  # a FIFO would block read_text (issue 19)

        if require_regular_file(path).st_size > MAX_RECENT_BYTES:
            return []
        data = json.loads(path.read_text(encoding="utf-8"))
        return [str(x) for x in data if isinstance(x, str)][:12] if isinstance(data, list) else []
    except (OSError, ValueError):
        return []


def write_recent(path: Path, recent: list[str]) -> None:
    """Save the list (best effort: an unwritable config folder only loses the history)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(recent), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


class Sources(Feature):
    """See the module docstring. ``initial``: the source shown at start-up; ``recent``: the list's file."""

    def __init__(self, studio: Studio, initial: str, recent: Path) -> None:
        self.studio = studio
        self.recent_path = recent
        load = studio.ui.load
        load.recent = read_recent(recent)
        load.current = initial
        load.remember(initial)
        self._announced = False
        self._opening: str | None = None  # the path the running open_source job loads
        self._next: str | None = None  # opened while another load ran: loaded after it

    def handlers(self):
        return {OpenFile: self.open, ShowSource: self.show, EmptyCache: self.empty_cache}

    def poll(self) -> None:
        if not self._announced:  # the first frame: every feature hears what is shown
            self._announced = True
            self.studio.emit(SourceChanged(self.studio.ui.load.current, "", opened=True))
        status = self.studio.ui.info.jobs.get("open_source")
        if self._opening is not None and status is not None and not status.running and status.error:
            self._failed(self._opening, status.error)

    def open(self, a: OpenFile) -> None:
        load = self.studio.ui.load
        problem = check_source(a.path)
        if problem:
            self._refuse(a.path, problem)
            return
        if self._opening is not None:  # one load at a time; the newest request waits for it
            self._next = a.path
            load.opening = a.path
            return
        path, device = a.path, self.studio.ui.device

        def work(ctx, gpu) -> str:
            ctx.progress(0.0, f"loading {Path(path).name}")
            return gpu.open_source(path, device)

        self._opening = path
        load.opening = path
        if not self.studio.jobs.start_on_worker("open_source", work, on_done=lambda kind: self._opened(path),
                                                output=path):
            self._opening = None
            load.opening = ""
            self.studio.say("still opening the previous file; try again in a moment", "warning")

    def _opened(self, path: str) -> None:
        load = self.studio.ui.load
        self._opening = None
        if self._start_next():
            return
        load.opening, load.error, load.error_details = "", "", ""
        load.path = path
        load.remember(path)
        write_recent(self.recent_path, load.recent)
        self.studio.say(f"opened {path}")
        self._change(path, opened=True)

    def _failed(self, path: str, error: str) -> None:
        self._opening = None
        if self._start_next():
            return
        self.studio.ui.load.opening = ""
        self._refuse(path, error.strip().splitlines()[-1], error)

    def _refuse(self, path: str, reason: str, details: str = "") -> None:
        """Say why ``path`` was not opened; nothing else changes."""
        load = self.studio.ui.load
        name = Path(path).name or path
        load.error = reason if name in reason else f"{name}: {reason}"
        load.error_details = details
        self.studio.say(f"could not open {path}: {reason}", "error")

    def _start_next(self) -> bool:
        """Start the load requested while another ran (True if there was one)."""
        nxt, self._next = self._next, None
        if nxt is None:
            return False
        self.open(OpenFile(nxt))
        return True

    def show(self, a: ShowSource) -> None:
        if a.latent is not None:
            self.studio.ui.request(SetLatent(a.latent))
        if a.source != self.studio.ui.load.current:
            self._change(a.source, opened=False)

    def empty_cache(self, a: EmptyCache) -> None:
        self.studio.worker.drop_caches()
        self.studio.picture.refresh()  # resubmit, so the worker loads again
        self.studio.say("render caches dropped")

    def _change(self, source: str, opened: bool) -> None:
        previous = self.studio.ui.load.current
        self.studio.ui.load.current = source
        self.studio.emit(SourceChanged(source, previous, opened))
