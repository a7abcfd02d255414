"""Inspect panel: what is on screen, measured: Gaussian count, SH degree, non-finite values, and histograms of
scale, opacity, colour and position. (splatviz's Eval, without evaluating typed code.)"""

from __future__ import annotations

import numpy as np
from imgui_bundle import imgui

from ui_state.actions import RefreshInspect
from ui_state.ui import UiState

HIST_HEIGHT = 46.0


def draw(ui: UiState) -> None:
    ui.inspect.shown = True
    _, ui.inspect.auto = imgui.checkbox("update with the scene", ui.inspect.auto)
    imgui.same_line()
    if imgui.button("Refresh##inspect"):
        ui.request(RefreshInspect())
    data = ui.info.inspect
    if data is None:
        imgui.text_disabled("(no statistics yet)")
        return
    imgui.text(f"{data.count:,} Gaussians, SH degree {data.sh_degree}")
    if data.non_finite:
        imgui.text_colored(imgui.ImVec4(1.0, 0.45, 0.4, 1.0), f"{data.non_finite} Gaussians with NaN/Inf values")
    for label, h in data.histograms:
        overlay = f"{label}: {h.min:.3g}..{h.max:.3g}, mean {h.mean:.3g}, std {h.std:.3g}"
        imgui.plot_histogram(f"##{label}", np.asarray(h.counts, np.float32), overlay_text=overlay,
                             graph_size=imgui.ImVec2(-1, HIST_HEIGHT))
