"""The viewer's UI state: what every panel shows and edits, plus what the app publishes for the panels to read.

Mutable on purpose (the panels change it every frame), but typed: one dataclass per panel, no string-keyed
bags. The app rebuilds a frozen :class:`~viewer.state.render.RenderParams` from it each frame
(:func:`render_params`) and submits it only when it changed. Widgets write their own panel's dataclass and append
:mod:`viewer.state.actions` requests; everything under :class:`AppInfo` is written by the app only.

Like the rest of ``viewer.state`` this imports the standard library and numpy only.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from viewer.state.actions import Action
from viewer.state.training import TrainingInfo
from viewer.state.render import (
    CameraParams, EditSpec, EditValue, ImageMode, LatentParams, RenderParams, RenderStats,
)

DisplayPath = Literal["auto", "opengl", "image"]
HISTORY = 300  # samples kept in the Performance plots
MAX_RECENT = 12


@dataclass
class LoadPanel:
    """``path``: the text field; ``recent``: most recent first, at most ``MAX_RECENT``; ``current``: the open source."""

    path: str = ""
    recent: list[str] = field(default_factory=list)
    current: str = ""

    def remember(self, source: str) -> None:
        if source in self.recent:
            self.recent.remove(source)
        self.recent.insert(0, source)
        del self.recent[MAX_RECENT:]


@dataclass
class CameraPanel:
    """The camera and how input moves it (units: degrees, scene units, seconds).

    Attributes:
        camera: the current :class:`CameraParams` (replaced whole on every change).
        rotate_deg_per_px: orbit/look rotation per pixel of mouse drag.
        turn_deg_per_s: rotation speed of the arrow keys.
        move_units_per_s: fly speed of W/A/S/D/Q/E (orbit mode: how fast W/S dolly), scene units per second.
        zoom_factor: radius multiplier per mouse-wheel notch (> 1).
        invert_y: drag up looks down instead of up.
    """

    camera: CameraParams = field(default_factory=CameraParams)
    rotate_deg_per_px: float = 0.3
    turn_deg_per_s: float = 90.0
    move_units_per_s: float = 1.0
    zoom_factor: float = 1.1
    invert_y: bool = False


@dataclass
class RenderPanel:
    """Image settings. ``display``: "auto" = gsplat image on CUDA, OpenGL splats elsewhere; "opengl" or
    "image" force one path (the OpenGL path draws modes rgb and alpha; other modes always use images)."""

    width: int = 512
    height: int = 512
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    mode: ImageMode = "rgb"
    splat_scale: float = 1.0
    low_res_while_dragging: bool = True
    display: DisplayPath = "auto"


@dataclass(eq=False)
class SavedLatent:
    """A named checkpoint of the Latent panel. ``thumbnail``: ``[h, w, 3]`` uint8 or None; ``ws``: the
    ``[num_ws, w_dim]`` latent it made (for interpolation), or None when unknown (e.g. a .ply scene)."""

    name: str
    latent: LatentParams
    thumbnail: np.ndarray | None = None
    ws: np.ndarray | None = None
    sliders: dict[str, float] = field(default_factory=dict)


@dataclass
class LatentPanel:
    """Seed, truncation and the drag plot. ``use_grid``: the drag plot drives the latent (``latent.grid_xy``)."""

    latent: LatentParams = field(default_factory=LatentParams)
    use_grid: bool = False
    saved: list[SavedLatent] = field(default_factory=list)
    save_name: str = "latent 1"
    interp_a: int = 0
    interp_b: int = 1
    interp_t: float = 0.5
    sliders: dict[str, float] = field(default_factory=dict)  # direction name -> value (std units)
    pca_shown: int = 8
    teach_name: str = "my_attribute"
    color_targets: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    width_targets: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SliderInfo:
    """One slider of the open model's directions file. ``kind``: "pca", "attribute", "user" or "measured"."""

    name: str
    kind: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class MeasuredInfo:
    """A 3D-measured attribute: ``quantity`` "color" (RGB) or "width" (scene units); ``value``: measured on the
    head on screen (None until measured)."""

    name: str
    quantity: str
    value: tuple[float, ...] | None = None


@dataclass(frozen=True, slots=True)
class DirectionsInfo:
    """The open model's sliders (published by the app). ``status``: a line saying where they come from or why
    there are none; ``marks``: (yes, no) counts for the attribute being taught."""

    sliders: tuple[SliderInfo, ...] = ()
    measured: tuple[MeasuredInfo, ...] = ()
    status: str = ""
    can_compute: bool = False
    marks: tuple[int, int] = (0, 0)


@dataclass(frozen=True, slots=True)
class EditField:
    """One parameter of an edit op, for the Edit panel's form. ``kind``: "float", "int", "bool", "vec3" or
    "color" (RGB in [0, 1]); ``lo``/``hi``: slider range."""

    name: str
    kind: str
    default: EditValue
    lo: float = 0.0
    hi: float = 1.0
    help: str = ""


@dataclass(frozen=True, slots=True)
class EditOpInfo:
    """An edit op as the Edit panel lists it (published by the app from ``core.edit_ops``)."""

    name: str
    description: str
    fields: tuple[EditField, ...]

    def default_spec(self) -> EditSpec:
        return EditSpec(self.name, tuple((f.name, f.default) for f in self.fields))


@dataclass
class EditPanel:
    """``stack``: applied edits in order; ``redo``: undone ones (newest last); ``draft``: the form being edited."""

    selected: str = ""
    draft: EditSpec | None = None
    stack: list[EditSpec] = field(default_factory=list)
    redo: list[EditSpec] = field(default_factory=list)


@dataclass
class SavePanel:
    """Output folder and file stem; files are named ``<stem>_<n>.<ext>`` with the next free ``n``."""

    folder: str = "out/saved"
    stem: str = "head"
    latent_path: str = ""


@dataclass
class VideoPanel:
    path: str = "out/videos/orbit.mp4"
    frames: int = 120
    fps: int = 30
    radius: float = 2.7
    elevation_deg: float = 10.0
    resolution: int = 512
    turns: float = 1.0


@dataclass
class InspectPanel:
    auto: bool = True


@dataclass
class TrainingPanel:
    """The Training panel's form (see ``TrainingLaunch`` for the meaning) and follow settings."""

    data: str = ""
    outdir: str = "runs"
    preset: str = "cpu128"
    batch: int = 32
    batch_gpu: int = 8
    gpus: int = 1
    kimg: float = 1000.0
    resume: str = ""
    device: str = "auto"
    snap_kimg: float = 50.0
    image_snap_kimg: float = 10.0
    extra: str = ""
    attach_dir: str = ""
    follow: bool = False


@dataclass
class PerformancePanel:
    show_plot: bool = True


@dataclass(frozen=True, slots=True)
class JobStatus:
    """A background job as the panels see it. ``progress`` in [0, 1]; ``error``: formatted message or None."""

    name: str
    running: bool
    progress: float = 0.0
    message: str = ""
    error: str | None = None
    output: str = ""
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Message:
    """A line in the window's message area. ``level``: "info", "warning" or "error"."""

    text: str
    level: str = "info"
    when: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class Histogram:
    """Counts per bin (``counts [B]``) over ``edges [B + 1]``, plus summary numbers."""

    counts: np.ndarray
    edges: np.ndarray
    min: float
    max: float
    mean: float
    std: float


@dataclass(frozen=True, slots=True)
class InspectData:
    """Statistics of the Gaussians on screen. ``histograms``: ``((label, Histogram), ...)`` in display order."""

    count: int
    sh_degree: int
    non_finite: int
    histograms: tuple[tuple[str, Histogram], ...]


@dataclass
class AppInfo:
    """Written by the app every frame; panels only read it.

    Attributes:
        source_kind: "generator", "scene" or "" (nothing loaded or it failed).
        random_weights: the open generator is untrained (a banner says so).
        banner: text of the banner above the image ("" for none).
        device: the compute device in words; gl_renderer: the OpenGL renderer string.
        display_path: the path in use this frame: "opengl" or "image".
        stats: the newest render's :class:`RenderStats`; error: the newest render's error text or None.
        gui_ms / synth_ms / render_ms: recent frame times for the Performance plots, oldest first.
        edit_ops: the Edit panel's catalogue; inspect: the Inspect panel's data (None until computed).
        jobs: background jobs by name; messages: newest last.
        dragging: a mouse drag is moving the camera this frame.
        current_ws: ``[num_ws, w_dim]`` latent of the head on screen (None for .ply scenes).
        thumbnail: ``[64, 64, 3]`` uint8 of the current view (for saved latents).
        thumbnail_textures: GL texture id per saved latent, keyed by ``id(SavedLatent)``.
        training: the followed training run (Training panel).
    """

    source_kind: str = ""
    random_weights: bool = False
    banner: str = ""
    device: str = ""
    gl_renderer: str = ""
    display_path: str = "image"
    stats: RenderStats = field(default_factory=RenderStats)
    error: str | None = None
    gui_ms: deque = field(default_factory=lambda: deque(maxlen=HISTORY))
    synth_ms: deque = field(default_factory=lambda: deque(maxlen=HISTORY))
    render_ms: deque = field(default_factory=lambda: deque(maxlen=HISTORY))
    edit_ops: tuple[EditOpInfo, ...] = ()
    inspect: InspectData | None = None
    jobs: dict[str, JobStatus] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    dragging: bool = False
    current_ws: np.ndarray | None = None
    thumbnail: np.ndarray | None = None
    thumbnail_textures: dict[int, int] = field(default_factory=dict)
    training: TrainingInfo = field(default_factory=TrainingInfo)
    directions: DirectionsInfo = field(default_factory=DirectionsInfo)

    def say(self, text: str, level: str = "info") -> None:
        self.messages.append(Message(text, level))
        del self.messages[:-50]


@dataclass
class UiState:
    """Everything the window shows; see the module docstring."""

    load: LoadPanel = field(default_factory=LoadPanel)
    camera: CameraPanel = field(default_factory=CameraPanel)
    render: RenderPanel = field(default_factory=RenderPanel)
    latent: LatentPanel = field(default_factory=LatentPanel)
    edit: EditPanel = field(default_factory=EditPanel)
    save: SavePanel = field(default_factory=SavePanel)
    video: VideoPanel = field(default_factory=VideoPanel)
    inspect: InspectPanel = field(default_factory=InspectPanel)
    performance: PerformancePanel = field(default_factory=PerformancePanel)
    training: TrainingPanel = field(default_factory=TrainingPanel)
    info: AppInfo = field(default_factory=AppInfo)
    actions: list[Action] = field(default_factory=list)
    device: str = "cpu"

    def request(self, action: Action) -> None:
        self.actions.append(action)


def render_params(ui: UiState, *, output: str = "image", low_res: bool = False) -> RenderParams:
    """The frozen request for the current UI state (``output``/``low_res`` as the display path needs)."""
    r = ui.render
    latent = ui.latent.latent
    return RenderParams(
        source=ui.load.current or "random:tiny", camera=ui.camera.camera, latent=latent, width=r.width,
        height=r.height, background=r.background, mode=r.mode, splat_scale=r.splat_scale, device=ui.device,
        low_res=low_res, edits=tuple(ui.edit.stack), output=output,  # type: ignore[arg-type]
    )
