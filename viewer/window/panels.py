"""The side column: every panel's collapsing header in order, and the newest messages under them."""

from __future__ import annotations

from typing import Callable

from imgui_bundle import imgui

from ui_state.ui import UiState
from widgets import camera, edit, inspect, inversion, latent, load, performance, render, save, training, video
from widgets.layout import ERROR_RGBA, WARNING_RGBA, colored_text

PANELS: tuple[tuple[str, bool, Callable[[UiState], None]], ...] = (
    ("Load", True, load.draw), ("Camera", True, camera.draw), ("Render", False, render.draw),
    ("Latent", True, latent.draw), ("Inversion", False, inversion.draw), ("Edit", False, edit.draw),
    ("Save", False, save.draw), ("Video", False, video.draw), ("Training", False, training.draw),
    ("Performance", False, performance.draw), ("Inspect", False, inspect.draw),
)
"""(header, open at start, draw) in the order shown; each header is an ImGui id scope (``Panels/<header>/...``)."""
MESSAGES_SHOWN = 6


def draw_panels(ui: UiState) -> None:
    for name, default_open, draw in PANELS:
        flags = imgui.TreeNodeFlags_.default_open if default_open else 0
        if imgui.collapsing_header(name, flags):
            imgui.push_id(name)
            draw(ui)
            imgui.pop_id()
    if ui.info.messages:
        imgui.separator_text("Messages")
        for m in ui.info.messages[-MESSAGES_SHOWN:]:  # wrapped: a long path must not run off the panel
            color = {"error": ERROR_RGBA, "warning": WARNING_RGBA}.get(m.level)
            if color:
                colored_text(color, m.text)
            else:
                imgui.text_wrapped(m.text)
