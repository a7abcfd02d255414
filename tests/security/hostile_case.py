"""What a case of the bad-input suite is: a loader (``action``, a public entry point the studio uses), a file,
and what must happen: ``Raises(classes, pattern)`` (one of the documented error types, with a message that
names the file and matches ``pattern``) or ``Returns(pattern)`` (a control that must still load, or a batch
API that reports the bad file as data, e.g. ``preprocess_photos``'s ``problems``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

CHECKPOINT = "core.checkpoint.CheckpointError"
PLY = "core.ply.PlyError"
DIRECTIONS = "core.editing.direction_file.DirectionsFileError"
MISMATCH = "core.editing.direction_file.DirectionsMismatchError"
LATENT = "core.editing.latent_file.LatentFileError"
LIBRARY = "core.editing.saved_latents.LatentsFileError"
PHOTO = "inversion.photos.PhotoError"
DATASET = "training.dataset_store.DatasetError"  # re-exported as training.dataset.DatasetError
FOLDER = "builtins.IsADirectoryError"
NOT_REGULAR = "core.regular_file.NotRegularFileError"


@dataclass(frozen=True)
class Raises:
    classes: tuple[str, ...]
    pattern: str = ""


@dataclass(frozen=True)
class Returns:
    pattern: str = ""


@dataclass(frozen=True)
class Case:
    name: str
    action: str
    path: str
    expect: Raises | Returns
    kwargs: dict = dataclasses.field(default_factory=dict)

    def plan(self) -> dict:
        return {"name": self.name, "action": self.action, "path": self.path, "kwargs": self.kwargs}
