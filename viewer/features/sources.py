"""What the view shows: opening files and built-in sources (Load panel, drops, snapshots), showing a feature's
source (an inversion's tuned generator), the recent-files list, and dropping the worker's caches.

The only writer of ``ui.load.current``; every change is announced as :class:`~viewer.events.SourceChanged`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

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
        return f"{path} is a folder; choose a .pkl or .ply file"
    return ""


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

    def handlers(self):
        return {OpenFile: self.open, ShowSource: self.show, EmptyCache: self.empty_cache}

    def poll(self) -> None:
        if not self._announced:  # the first frame: every feature hears what is shown
            self._announced = True
            self.studio.emit(SourceChanged(self.studio.ui.load.current, "", opened=True))

    def open(self, a: OpenFile) -> None:
        ui = self.studio.ui
        problem = check_source(a.path)
        if problem:
            self.studio.say(problem, "error")
            return
        ui.load.path = a.path
        ui.load.remember(a.path)
        write_recent(self.recent_path, ui.load.recent)
        self.studio.say(f"opening {a.path}")
        self._change(a.path, opened=True)

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
