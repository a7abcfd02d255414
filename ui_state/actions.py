"""Requests from the panels to the app: small frozen dataclasses, one per thing a user can ask for.

A widget never does work itself (no torch, no file I/O, no threads): it appends one of these to
``UiState.actions`` and the app (``viewer/app.py``) hands it to the one feature that handles its type, which
carries it out on the render worker or a job thread. :data:`Action` is the union of every action; the app
checks at start-up that each has exactly one handler. Paths are plain strings as typed by the user; the
features validate them and report problems in ``AppInfo.messages``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ui_state.jobs import JobName
from ui_state.render import EditSpec, LatentParams
from ui_state.training import TrainingLaunch


@dataclass(frozen=True, slots=True)
class OpenFile:
    """Open a generator file (ours, an official CGS-GAN pickle or a GGHead checkpoint), a ``.ply`` scene or
    ``random:<preset>``."""

    path: str


@dataclass(frozen=True, slots=True)
class BrowseSource:
    """Choose a file to open with the desktop's file dialog."""


@dataclass(frozen=True, slots=True)
class ShowSource:
    """Show ``source`` without it counting as the user opening a file (no recent-list entry, edits kept), e.g.
    an inversion's tuned generator ``memory:tuned`` and back; ``latent``: show this latent with it."""

    source: str
    latent: LatentParams | None = None


@dataclass(frozen=True, slots=True)
class SetLatent:
    """Show ``latent`` (the Latent panel's base latent; the sliders stay as they are unless ``sliders``)."""

    latent: LatentParams
    sliders: tuple[tuple[str, float], ...] | None = None


@dataclass(frozen=True, slots=True)
class SaveCurrentLatent:
    """Keep the head on screen (base latent, slider values, thumbnail) in the saved latents as ``name``."""

    name: str


@dataclass(frozen=True, slots=True)
class RestoreLatent:
    """Show the saved latent ``name`` again (its base latent and sliders)."""

    name: str


@dataclass(frozen=True, slots=True)
class DeleteLatent:
    name: str


@dataclass(frozen=True, slots=True)
class InterpolateLatents:
    """Show ``(1 - t) a + t b`` of two saved latents (bases and slider values blended linearly)."""

    a: str
    b: str
    t: float


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
    """Write the head on screen (base latent, slider values, thumbnail) as a saved-latents file
    (``core.editing.saved_latents``, the one latent file format)."""

    path: str


@dataclass(frozen=True, slots=True)
class LoadLatent:
    """Read a saved-latents file (:class:`SaveLatent`, or ``<model>.latents.npz``) into the saved latents and
    show its first entry; an inversion's ``pivot.npz`` is read with ``inversion.outputs``."""

    path: str


@dataclass(frozen=True, slots=True)
class StartVideo:
    """Render an orbit video of the current head in the background.

    Attributes: path (``.mp4``); frames; fps; radius (scene units); elevation_deg (camera height as pitch,
    degrees, positive looks down); resolution (pixels, square); turns (full orbits). The defaults here are
    placeholders: the app starts the Video panel from ``core.orbit_video.OrbitVideoSettings`` (the CLI's).
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

    name: JobName


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


# ---------------------------------------------------------------------------------------------- inversion


@dataclass(frozen=True, slots=True)
class LoadPhotos:
    """Add these photo files to the inputs (missing files are reported and left out)."""

    paths: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BrowsePhotos:
    """Choose photo files with the desktop's file dialog (several at once)."""


@dataclass(frozen=True, slots=True)
class ClearPhotos:
    """Forget every input photo (and the preprocessed targets and results that came from them)."""


@dataclass(frozen=True, slots=True)
class TakeWebcamPicture:
    """Add the webcam's newest frame as an input photo."""


@dataclass(frozen=True, slots=True)
class Preprocess:
    """Detect, align and estimate a camera for every input photo (in the background)."""


@dataclass(frozen=True, slots=True)
class StartLatentSearch:
    """Stage 1: optimise a latent against the preprocessed photos with the panel's settings."""


@dataclass(frozen=True, slots=True)
class StopLatentSearch:
    """Stop stage 1 after its current step (the latent so far is kept)."""


@dataclass(frozen=True, slots=True)
class StartTuning:
    """Stage 2: tune a copy of the generator around stage 1's latent."""


@dataclass(frozen=True, slots=True)
class StopTuning:
    """Stop stage 2 after its current step (the tuned copy so far is kept and shown)."""


@dataclass(frozen=True, slots=True)
class SaveInversion:
    """Write every output (aligned photos, cameras, pivot, tuned generator, .ply, renders, video, report)."""


@dataclass(frozen=True, slots=True)
class ResetModel:
    """Show the original generator again and drop the tuned copy."""


@dataclass(frozen=True, slots=True)
class ChoosePreset:
    """Fill the whole Inversion form from the preset ``name`` (``inversion.config.PRESET_NAMES``): steps, lr,
    batch size and loss weights of both stages, space, locality."""

    name: str


InversionAction = (LoadPhotos | BrowsePhotos | ClearPhotos | TakeWebcamPicture | Preprocess
                   | StartLatentSearch | StopLatentSearch | StartTuning | StopTuning | SaveInversion
                   | ResetModel | ChoosePreset)

Action = (OpenFile | BrowseSource | ShowSource | SetLatent | SaveCurrentLatent | RestoreLatent | DeleteLatent | InterpolateLatents
          | SavePly | SaveImage | SaveLatent | LoadLatent | StartVideo | CancelJob | PushEdit | UndoEdit
          | RedoEdit | ClearEdits | RefreshInspect | EmptyCache | StartTraining | AttachRun | StopTraining
          | LoadSnapshot | ComputeDirections | MarkSample | TeachSlider | MatchTarget | InversionAction)
"""Every request a panel can make; each type has exactly one handler in the viewer."""
