"""What features announce to each other (any number of listeners; unlike actions, which have one handler)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SourceChanged:
    """The view now shows ``source`` (was ``previous``). ``opened``: the user opened it (Load panel, recent list,
    a dropped file, a training snapshot); False for a source a feature showed (``ShowSource``, e.g. an
    inversion's tuned generator)."""

    source: str
    previous: str
    opened: bool
