"""The panels' forms: one mutable dataclass per panel, written by that panel's widget every frame.

Widgets write only their own panel's dataclass (and queue actions); what the app publishes for them to read is
in :mod:`ui_state.info`. Standard library and numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ui_state.actions import StartVideo
from ui_state.render import CameraParams, EditSpec, ImageMode, LatentParams

DisplayPath = Literal["auto", "opengl", "image"]
MAX_RECENT = 12


@dataclass
class LoadPanel:
    """``path``: the text field; ``recent``: most recent first, at most ``MAX_RECENT``; ``current``: the open source.
    Written by the sources feature: ``opening``: the file being loaded ("" when none; the view keeps ``current``
    until it loaded); ``error``: why the last open failed ("" after a success), ``error_details`` its traceback."""

    path: str = ""
    recent: list[str] = field(default_factory=list)
    current: str = ""
    opening: str = ""
    error: str = ""
    error_details: str = ""

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
    """Image settings. ``display``: "auto" = the render worker's images (gsplat on CUDA, the CPU splat
    rasterizer elsewhere; OpenGL splats when that cannot run); "opengl" or "image" force one path (the OpenGL
    path draws modes rgb and alpha; other modes always use images)."""

    width: int = 512
    height: int = 512
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    mode: ImageMode = "rgb"
    splat_scale: float = 1.0
    low_res_while_dragging: bool = True
    display: DisplayPath = "auto"


@dataclass
class LatentPanel:
    """Seed, truncation, the drag plot and the sliders. ``use_grid``: the drag plot drives the latent
    (``latent.grid_xy``). ``interp_a`` / ``interp_b``: names of the saved latents to blend."""

    latent: LatentParams = field(default_factory=LatentParams)
    use_grid: bool = False
    save_name: str = "latent 1"
    interp_a: str = ""
    interp_b: str = ""
    interp_t: float = 0.5
    sliders: dict[str, float] = field(default_factory=dict)  # direction name -> value (std units)
    pca_shown: int = 8
    teach_name: str = "my_attribute"
    color_targets: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    width_targets: dict[str, float] = field(default_factory=dict)


@dataclass
class EditPanel:
    """The form being edited: ``selected`` op and its ``draft`` parameters (the applied edits are published in
    ``AppInfo.edits`` by the edit feature, which keeps the undoable history)."""

    selected: str = ""
    draft: EditSpec | None = None


@dataclass
class SavePanel:
    """Output folder and file stem; files are named ``<stem>_<n>.<ext>`` with the next free ``n``."""

    folder: str = "out/saved"
    stem: str = "head"
    latent_path: str = ""


@dataclass
class VideoPanel:
    """The video the panel will ask for: the ``StartVideo`` action itself (replaced whole on every edit)."""

    request: StartVideo = field(default_factory=lambda: StartVideo("out/videos/orbit.mp4"))


@dataclass
class InspectPanel:
    """``auto``: recompute for every new scene while the panel is open; ``shown``: the panel was drawn open this
    frame (the widget sets it, the inspect feature reads and clears it: a closed panel costs nothing)."""

    auto: bool = True
    shown: bool = False


@dataclass
class PerformancePanel:
    show_plot: bool = True
