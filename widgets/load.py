"""Load panel: open a generator file, a .ply scene or a built-in random generator; recent files; drop files on
the window to open them."""

from __future__ import annotations

from imgui_bundle import imgui

from ui_state.actions import BrowseSource, OpenFile
from ui_state.ui import UiState
from widgets.layout import ERROR_RGBA, colored_text, item_width


def draw(ui: UiState) -> None:
    s = ui.load
    default_source = ui.info.default_source
    imgui.text_wrapped(f"Open: {s.current or '(nothing)'}")
    if s.opening:  # a negative fraction draws an indeterminate (moving) bar
        imgui.progress_bar(-1.0 * imgui.get_time(), imgui.ImVec2(-1, 0), f"opening {s.opening}...")
    if s.error:
        colored_text(ERROR_RGBA, s.error)
        if s.error_details and imgui.tree_node("details##load_error"):
            imgui.text_unformatted(s.error_details)
            imgui.tree_pop()
    item_width()
    entered, s.path = imgui.input_text("path##load", s.path, imgui.InputTextFlags_.enter_returns_true)
    imgui.same_line()
    if imgui.button("Open##load") or entered:
        if s.path.strip():
            ui.request(OpenFile(s.path.strip()))
    imgui.set_item_tooltip("A generator (.safetensors, a snapshot's .index.json, an older .pkl, an official "
                           "CGS-GAN pickle or a GGHead checkpoint) or a 3DGS .ply. "
                           "You can also drop files on the window.")
    if imgui.button("Browse...##load"):
        ui.request(BrowseSource())
    imgui.same_line()
    for source in dict.fromkeys((default_source, *ui.info.builtin_sources)):
        if not source:
            continue
        label = "default model" if source == default_source else source
        if imgui.small_button(f"{label}##builtin"):
            ui.request(OpenFile(source))
        imgui.same_line()
    imgui.new_line()
    if s.recent:
        imgui.text_disabled("Recent")
        for i, path in enumerate(s.recent):
            if imgui.selectable(f"{path}##recent{i}", path == s.current)[0]:
                ui.request(OpenFile(path))
