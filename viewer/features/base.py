"""What every feature is given and what it offers the app.

A feature handles the action types it lists in :meth:`Feature.handlers` (each action type has exactly one
handler in the app), is polled once per frame on the GUI thread, hears :class:`~viewer.events.SourceChanged`,
and frees its GL objects in :meth:`Feature.release`. It reaches the rest of the studio only through
:class:`Studio`: the UI state, the jobs (threads and render-worker jobs), the worker's model slots, and a
read-only view of the picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol

import numpy as np

from ui_state.render import RenderResult
from ui_state.ui import UiState
from viewer.events import SourceChanged
from viewer.jobs import JobRunner

Handler = Callable[[Any], None]


class Picture(Protocol):
    """The view as features may read it (``viewer.viewport.display.Display``)."""

    @property
    def result(self) -> RenderResult | None:
        """The newest render result shown (its ``scene``, ``ws``, ``base_ws``), or None."""

    def current_image(self) -> np.ndarray | None:
        """The current view at full resolution, uint8 ``[H, W, 3]`` (GUI thread)."""

    def refresh(self) -> None:
        """Send the current request again next frame (after the worker dropped its caches)."""

    def new_texture(self) -> Any:
        """A GL texture with ``upload(uint8 [H, W, 3])``, ``texture_id``, ``size``, ``release()`` (GUI thread)."""


class ModelSlots(Protocol):
    """The render worker's thread-safe entry points a feature may call from the GUI thread."""

    def put_model(self, name: str, generator) -> str: ...

    def drop_model(self, name: str) -> None: ...

    def set_directions(self, source: str, version: int, directions) -> None: ...

    def drop_caches(self) -> None: ...


@dataclass
class Studio:
    """What features share. ``emit``: announce an event to every feature (the app's)."""

    ui: UiState
    jobs: JobRunner
    worker: ModelSlots
    picture: Picture
    emit: Callable[[SourceChanged], None]

    def say(self, text: str, level: str = "info") -> None:
        self.ui.info.say(text, level)


class Feature:
    """Base class with no-op hooks; see the module docstring."""

    def handlers(self) -> Mapping[type, Handler]:
        return {}

    def poll(self) -> None:
        pass

    def source_changed(self, event: SourceChanged) -> None:
        pass

    def release(self) -> None:
        pass
