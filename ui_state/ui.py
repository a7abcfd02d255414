"""The whole UI state: one typed field per panel (``ui_state.panels``), what the app publishes
(``ui_state.info``), and the queue of actions the panels made this frame (``ui_state.actions``).

Mutable on purpose (the panels change it every frame), but typed: no string-keyed bags, no attributes added
later. Each frame the app rebuilds a frozen :class:`~ui_state.render.RenderParams` from it
(:func:`render_params`) and submits it only when it changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ui_state.actions import Action
from ui_state.info import AppInfo
from ui_state.inversion import InversionUi
from ui_state.panels import (
    CameraPanel, EditPanel, InspectPanel, LatentPanel, LoadPanel, PerformancePanel, RenderPanel, SavePanel,
    VideoPanel,
)
from ui_state.training import TrainingForm
from ui_state.render import RenderOutputKind, RenderParams, SliderParams

DEFAULT_SOURCE = "random:tiny"  # what a request shows before anything was opened


@dataclass
class UiState:
    """Everything the window shows; see the module docstring. ``device``: the torch device string."""

    load: LoadPanel = field(default_factory=LoadPanel)
    camera: CameraPanel = field(default_factory=CameraPanel)
    render: RenderPanel = field(default_factory=RenderPanel)
    latent: LatentPanel = field(default_factory=LatentPanel)
    edit: EditPanel = field(default_factory=EditPanel)
    save: SavePanel = field(default_factory=SavePanel)
    video: VideoPanel = field(default_factory=VideoPanel)
    inspect: InspectPanel = field(default_factory=InspectPanel)
    performance: PerformancePanel = field(default_factory=PerformancePanel)
    training: TrainingForm = field(default_factory=TrainingForm)
    inversion: InversionUi = field(default_factory=InversionUi)
    info: AppInfo = field(default_factory=AppInfo)
    actions: list[Action] = field(default_factory=list)
    device: str = "cpu"

    def request(self, action: Action) -> None:
        self.actions.append(action)


def slider_params(ui: UiState) -> SliderParams:
    """The sliders of the request: non-zero values sorted by name, with the direction set's version."""
    values = tuple(sorted((k, float(v)) for k, v in ui.latent.sliders.items() if v != 0.0))
    return SliderParams(values, ui.info.directions.version if values else 0)


def render_params(ui: UiState, *, output: RenderOutputKind = "image", low_res: bool = False) -> RenderParams:
    """The frozen request for the current UI state (``output``/``low_res`` as the display path needs)."""
    r = ui.render
    return RenderParams(
        source=ui.load.current or DEFAULT_SOURCE, camera=ui.camera.camera, latent=ui.latent.latent,
        sliders=slider_params(ui), width=r.width, height=r.height, background=r.background, mode=r.mode,
        splat_scale=r.splat_scale, device=ui.device, low_res=low_res, edits=ui.info.edits.applied, output=output,
    )
