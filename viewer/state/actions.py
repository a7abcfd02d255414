"""Requests from the panels to the app: small frozen dataclasses, one per thing a user can ask for.

A widget never does work itself (no torch, no file I/O, no threads): it appends one of these to
``UiState.actions`` and the app (``viewer/app.py``) carries it out on the render worker or a job thread in the
same frame. Paths are plain strings as typed by the user; the app validates them and reports problems in
``AppInfo.messages``.
"""

from __future__ import annotations

from dataclasses import dataclass

from viewer.state.render import EditSpec
from viewer.state.training import TrainingLaunch


@dataclass(frozen=True, slots=True)
class OpenFile:
    """Open a generator ``.pkl`` (ours or an official CGS-GAN pickle), a ``.ply`` scene or ``random:<preset>``."""

    path: str


@dataclass(frozen=True, slots=True)
class SavePly:
    """Write the edited Gaussians on screen as a standard 3DGS ``.ply``."""

    path: str


@dataclass(frozen=True, slots=True)
class SaveImage:
    """Write the current full-resolution view (what is shown, at the Render panel's size) as ``.png``."""

    path: str


@dataclass(frozen=True, slots=True)
class SaveLatent:
    """Write the current latent (``ws`` ``[num_ws, w_dim]``, plus seed, psi and source) as ``.npz``."""

    path: str


@dataclass(frozen=True, slots=True)
class LoadLatent:
    """Read a latent ``.npz`` written by :class:`SaveLatent` (or any ``.npz`` with ``w`` / ``ws``)."""

    path: str


@dataclass(frozen=True, slots=True)
class StartVideo:
    """Render an orbit video of the current head in the background.

    Attributes: path (``.mp4``); frames; fps; radius (scene units); elevation_deg (camera height as pitch,
    degrees, positive looks down); resolution (pixels, square); turns (full orbits).
    """

    path: str
    frames: int = 120
    fps: int = 30
    radius: float = 2.7
    elevation_deg: float = 10.0
    resolution: int = 512
    turns: float = 1.0


@dataclass(frozen=True, slots=True)
class CancelJob:
    """Ask the background job called ``name`` (e.g. ``"video"``) to stop at its next step."""

    name: str


@dataclass(frozen=True, slots=True)
class PushEdit:
    """Add one edit operation on top of the Edit panel's stack (clears the redo list)."""

    edit: EditSpec


@dataclass(frozen=True, slots=True)
class UndoEdit:
    pass


@dataclass(frozen=True, slots=True)
class RedoEdit:
    pass


@dataclass(frozen=True, slots=True)
class ClearEdits:
    pass


@dataclass(frozen=True, slots=True)
class RefreshInspect:
    """Recompute the Inspect panel's statistics of the Gaussians on screen."""


@dataclass(frozen=True, slots=True)
class EmptyCache:
    """Drop the render worker's caches (and CUDA's cached blocks)."""


@dataclass(frozen=True, slots=True)
class StartTraining:
    """Start ``python -m training`` (or torchrun) with these settings as a separate process and follow it."""

    launch: TrainingLaunch


@dataclass(frozen=True, slots=True)
class AttachRun:
    """Follow an existing run directory (started anywhere) through its files."""

    run_dir: str


@dataclass(frozen=True, slots=True)
class StopTraining:
    """Ask the followed run to write a snapshot and exit cleanly (a STOP file in its run directory)."""


@dataclass(frozen=True, slots=True)
class LoadSnapshot:
    """Open one of the followed run's snapshots in the viewer ("" = the newest)."""

    name: str = ""


@dataclass(frozen=True, slots=True)
class ComputeDirections:
    """Fit PCA sliders for the open generator now (and save them beside its file when it has one)."""


@dataclass(frozen=True, slots=True)
class MarkSample:
    """Mark the head on screen yes/no for the attribute ``name`` (teaching a slider)."""

    name: str
    yes: bool


@dataclass(frozen=True, slots=True)
class TeachSlider:
    """Turn the marks of ``name`` into a slider (saved with the model's directions)."""

    name: str


@dataclass(frozen=True, slots=True)
class MatchTarget:
    """Move the latent so the 3D-measured attribute ``name`` approaches ``target`` (RGB or width)."""

    name: str
    target: tuple[float, ...]


Action = (OpenFile | SavePly | SaveImage | SaveLatent | LoadLatent | StartVideo | CancelJob | PushEdit | UndoEdit
          | RedoEdit | ClearEdits | RefreshInspect | EmptyCache | StartTraining | AttachRun | StopTraining
          | LoadSnapshot | ComputeDirections | MarkSample | TeachSlider | MatchTarget)
