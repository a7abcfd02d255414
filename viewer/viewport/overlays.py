"""What is drawn over the picture: the random-weights banner, the newest error (last line, details folded),
and the status line (Gaussians, size, display path, "working..."). GUI thread."""

from __future__ import annotations

from imgui_bundle import imgui

from ui_state.info import AppInfo
from widgets.layout import BANNER_RGB, ERROR_RGBA


def draw_overlays(info: AppInfo, p0, avail, busy: bool) -> None:
    """Draw over the image item whose top-left is ``p0`` and size ``avail`` (ImVec2s)."""
    imgui.set_cursor_screen_pos(imgui.ImVec2(p0.x + 8, p0.y + 8))
    if info.banner:
        r, g, b = BANNER_RGB
        imgui.push_style_color(imgui.Col_.child_bg, imgui.ImVec4(r / 255, g / 255, b / 255, 1.0))
        imgui.push_style_color(imgui.Col_.text, imgui.ImVec4(0.08, 0.08, 0.08, 1.0))
        imgui.begin_child("banner", imgui.ImVec2(avail.x - 16, 0),
                          imgui.ChildFlags_.always_use_window_padding | imgui.ChildFlags_.auto_resize_y)
        imgui.text_wrapped(info.banner)
        imgui.end_child()
        imgui.pop_style_color(2)
    if info.error:
        lines = info.error.strip().splitlines()
        imgui.push_style_color(imgui.Col_.child_bg, imgui.ImVec4(0.15, 0.02, 0.02, 0.9))
        imgui.begin_child("error", imgui.ImVec2(avail.x - 16, 0),
                          imgui.ChildFlags_.always_use_window_padding | imgui.ChildFlags_.auto_resize_y)
        imgui.push_style_color(imgui.Col_.text, imgui.ImVec4(*ERROR_RGBA))
        imgui.text_wrapped(lines[-1] if lines else "error")  # wrapped: a long message must not run off the view
        imgui.pop_style_color()
        if len(lines) > 1 and imgui.tree_node("details##error"):
            imgui.text_wrapped("\n".join(lines[-30:]))
            imgui.tree_pop()
        imgui.end_child()
        imgui.pop_style_color()
    st = info.stats
    # who drew it: "opengl" (the window), else the worker's rasterizer ("cpu-splats", "gsplat", "torch")
    drawn_by = st.backend if info.display_path == "image" and st.backend else info.display_path
    text = f"{st.gaussians:,} Gaussians  {st.width}x{st.height}  {drawn_by}"
    if busy:
        text += "  (working...)"
    pos = imgui.ImVec2(p0.x + 8, p0.y + avail.y - 26)
    size = imgui.calc_text_size(text)
    imgui.get_window_draw_list().add_rect_filled(
        imgui.ImVec2(pos.x - 4, pos.y - 2), imgui.ImVec2(pos.x + size.x + 4, pos.y + size.y + 2),
        imgui.get_color_u32(imgui.ImVec4(0.0, 0.0, 0.0, 0.55)), 3.0)
    imgui.set_cursor_screen_pos(pos)
    imgui.text(text)
