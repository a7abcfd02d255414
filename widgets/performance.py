"""Performance panel: frame-time plots for the GUI, synthesis and rendering, the device and renderer, and the
worker's cache."""

from __future__ import annotations

import numpy as np
from imgui_bundle import imgui, implot

from ui_state.actions import EmptyCache
from ui_state.ui import UiState

RECENT = 120  # newest samples of each series shown (a rolling window)


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
        series = [(label, np.asarray(values, np.float32)[-RECENT:]) for label, values in
                  (("GUI", gui), ("synthesis", info.synth_ms), ("render", info.render_ms))]
        top, peak = robust_top([v for _, v in series])
        if implot.begin_plot("frame times (ms)", imgui.ImVec2(-1, 160), implot.Flags_.no_menus):
            implot.setup_axes("frame", "ms", implot.AxisFlags_.auto_fit, 0)
            implot.setup_axis_limits(implot.ImAxis_.y1, 0.0, top, imgui.Cond_.always)
            for label, arr in series:
                if arr.size:
                    implot.plot_line(label, arr)
            implot.end_plot()
        if peak > top:
            imgui.text_disabled(f"(a few frames up to {peak:,.0f} ms are above the plot)")
    _, ui.performance.show_plot = imgui.checkbox("plot", ui.performance.show_plot)
    imgui.same_line()
    if imgui.button("Empty cache"):
        ui.request(EmptyCache())


def robust_top(series: list[np.ndarray]) -> tuple[float, float]:
    """``(y-axis top, highest value)`` for frame-time plots: the 95th percentile of the samples of every series,
    plus a third, so one slow frame (a model load, a 20 s CPU render) does not flatten the rest."""
    recent = [s for s in series if s.size]
    if not recent:
        return 10.0, 0.0
    values = np.concatenate(recent)
    values = values[np.isfinite(values)]
    if not values.size:
        return 10.0, 0.0
    return max(5.0, 1.33 * float(np.percentile(values, 95))), float(values.max())
