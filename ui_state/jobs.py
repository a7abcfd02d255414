"""Background jobs as the panels see them: the closed list of job names and a job's published status.

A job runs either on a job thread (file work) or as turns on the render worker (anything touching a model or
a tensor on the device); see docs/architecture.md, "Threads". One job per name runs at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

JobName = Literal[
    # Load panel (the file is loaded on the render worker before the view switches to it)
    "open_source",
    # Save panel and files
    "save_ply", "save_image", "save_latent", "load_latent",
    # Latent panel: the saved latents beside the model file
    "saved_latents", "write_latents",
    # Video, Inspect
    "video", "inspect",
    # Latent sliders
    "directions", "pca", "match", "measure", "save_directions",
    # Training panel
    "training_watch",
    # Inversion panel
    "inversion_preprocess", "inversion_latent", "inversion_tuning", "inversion_save", "inversion_webcam",
    "inversion_speed",
]
JOB_NAMES: tuple[str, ...] = get_args(JobName)


@dataclass(frozen=True, slots=True)
class JobStatus:
    """A background job as the panels see it. ``progress`` in [0, 1]; ``error``: formatted message,
    ``"cancelled"``, or None; ``output``: the file or folder it writes (for the panel's line)."""

    name: JobName
    running: bool
    progress: float = 0.0
    message: str = ""
    error: str | None = None
    output: str = ""
    seconds: float = 0.0
