"""Performance panel: frame-time plots for the GUI, synthesis and rendering, the device and renderer, and the
worker's cache."""

from __future__ import annotations

import numpy as np
from imgui_bundle import imgui, implot

from ui_state.actions import EmptyCache
from ui_state.ui import UiState


def draw(ui: UiState) -> None:
    info = ui.info
    gui = np.asarray(info.gui_ms, np.float32)
    fps = 1000.0 / max(1e-3, float(np.median(gui[-30:]))) if gui.size else 0.0
    imgui.text(f"GUI: {fps:.0f} fps")
    st = info.stats
    imgui.text(f"last render: {st.render_ms:.1f} ms ({st.backend or '-'}), synthesis {st.synthesis_ms:.1f} ms")
    imgui.text(f"{st.gaussians:,} Gaussians at {st.width}x{st.height}; generator runs: {st.synthesis_count}")
    imgui.text_wrapped(f"device: {info.device}")
    imgui.text_wrapped(f"OpenGL: {info.gl_renderer}")
    imgui.text(f"display path: {info.display_path}")
    if ui.performance.show_plot and gui.size:
        if implot.begin_plot("frame times (ms)", imgui.ImVec2(-1, 160), implot.Flags_.no_menus):
            implot.setup_axes("frame", "ms", implot.AxisFlags_.auto_fit, implot.AxisFlags_.auto_fit)
            for label, values in (("GUI", gui), ("synthesis", info.synth_ms), ("render", info.render_ms)):
                arr = np.asarray(values, np.float32)
                if arr.size:
                    implot.plot_line(label, arr)
            implot.end_plot()
    _, ui.performance.show_plot = imgui.checkbox("plot", ui.performance.show_plot)
    imgui.same_line()
    if imgui.button("Empty cache"):
        ui.request(EmptyCache())
