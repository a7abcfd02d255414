"""What the app publishes for the panels to read (widgets never write these): ``AppInfo`` and the records
it holds. Each field has one writer in the viewer (docs/architecture.md, "Actions, events and features").
Standard library and numpy only.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ui_state.jobs import JobName, JobStatus
from ui_state.render import EditSpec, EditValue, RenderStats
from ui_state.training import TrainingInfo

HISTORY = 300  # samples kept in the Performance plots


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
    """The open model's sliders (published by the sliders feature). ``status``: a line saying where they come
    from or why there are none; ``marks``: (yes, no) counts for the attribute being taught; ``version``: of the
    direction set handed to the render worker (goes into ``SliderParams.directions``; 0 = none)."""

    sliders: tuple[SliderInfo, ...] = ()
    measured: tuple[MeasuredInfo, ...] = ()
    status: str = ""
    can_compute: bool = False
    marks: tuple[int, int] = (0, 0)
    version: int = 0


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


@dataclass(frozen=True, slots=True)
class EditsInfo:
    """The Edit panel's history as the edit feature publishes it: ``applied`` in order (the render request
    carries them), ``redo`` ops that Redo would re-apply (next first)."""

    applied: tuple[EditSpec, ...] = ()
    redo: tuple[EditSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class SavedLatentInfo:
    """A saved latent as the Latent panel lists it: its ``name``, its thumbnail's GL texture (0 = none) and
    the names of the sliders it sets."""

    name: str
    texture: int = 0
    sliders: tuple[str, ...] = ()


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
        current_ws: ``[num_ws, w_dim]`` latent of the head on screen, sliders applied (None for .ply scenes).
        saved_latents: the saved latents (Latent panel), in the order saved.
        edits: the applied edits and how many can be redone (Edit panel).
        builtin_sources: the built-in random-weight sources; default_source: the model ``make run`` opens.
        generator_presets: the generator presets a training run can use (``core.generator.PRESETS``).
        training: the followed training run (Training panel). directions: the open model's sliders.
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
    jobs: dict[JobName, JobStatus] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    dragging: bool = False
    current_ws: np.ndarray | None = None
    saved_latents: tuple[SavedLatentInfo, ...] = ()
    edits: EditsInfo = field(default_factory=lambda: EditsInfo())
    builtin_sources: tuple[str, ...] = ()
    generator_presets: tuple[str, ...] = ()
    default_source: str = ""
    training: TrainingInfo = field(default_factory=TrainingInfo)
    directions: DirectionsInfo = field(default_factory=DirectionsInfo)

    def say(self, text: str, level: str = "info") -> None:
        self.messages.append(Message(text, level))
        del self.messages[:-50]


