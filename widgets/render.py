"""Render panel: image size, background colour, image mode, splat scale, progressive quality, display path."""

from __future__ import annotations

from imgui_bundle import imgui

from ui_state.ui import UiState
from widgets.layout import item_width, radio_row

MODES = ("rgb", "alpha", "depth", "centres")
MODE_LABELS = ("RGB", "alpha", "depth", "Gaussian centres")
DISPLAYS = ("auto", "opengl", "image")
SIZES = (128, 256, 512, 768, 1024, 2048)
MAX_SIZE = 4096


def draw(ui: UiState) -> None:
    s = ui.render
    item_width()
    changed, wh = imgui.input_int2("size (px)", [s.width, s.height])
    if changed:
        s.width, s.height = (min(MAX_SIZE, max(16, int(v))) for v in wh)
    for i, n in enumerate(SIZES):
        if i:
            imgui.same_line()
        if imgui.small_button(f"{n}##size"):
            s.width = s.height = n
    item_width()
    _, bg = imgui.color_edit3("background", list(s.background))
    s.background = tuple(float(min(1.0, max(0.0, v))) for v in bg)
    s.mode = radio_row("mode", MODES, s.mode, MODE_LABELS)
    item_width()
    _, scale = imgui.slider_float("splat scale", s.splat_scale, 0.05, 4.0, "%.2f", imgui.SliderFlags_.logarithmic)
    s.splat_scale = max(0.01, scale)
    _, s.low_res_while_dragging = imgui.checkbox("low resolution while dragging", s.low_res_while_dragging)
    s.display = radio_row("display", DISPLAYS, s.display)
    imgui.set_item_tooltip("auto: images from the render worker (gsplat on CUDA, the CPU splat rasterizer "
                           "elsewhere; OpenGL splats if that cannot run). The OpenGL path draws RGB and "
                           "alpha; depth and centres always come from the render worker as images.")
    imgui.text_disabled(f"showing: {ui.info.display_path}")

