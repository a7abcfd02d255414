"""Shared look of the panels: label width, colours and two tiny helpers (no logic, no state)."""

from __future__ import annotations

from imgui_bundle import imgui

LABEL_WIDTH = 150.0  # px of the right-hand labels; item widths are the panel width minus this
ERROR_RGBA = (1.0, 0.45, 0.4, 1.0)
WARNING_RGBA = (1.0, 0.8, 0.35, 1.0)
OK_RGBA = (0.55, 0.9, 0.55, 1.0)
BANNER_RGB = (240, 190, 60)  # opaque amber; tests look for these exact pixels


def item_width() -> None:
    """Make the next items fill the panel but leave room for their labels."""
    imgui.set_next_item_width(max(60.0, imgui.get_content_region_avail().x - LABEL_WIDTH))


def colored_text(rgba: tuple[float, float, float, float], text: str) -> None:
    imgui.push_style_color(imgui.Col_.text, imgui.ImVec4(*rgba))
    imgui.text_wrapped(text)
    imgui.pop_style_color()


def disabled_text(text: str) -> None:
    """Greyed-out, wrapped text (a hint, an estimate)."""
    imgui.push_style_color(imgui.Col_.text, imgui.get_style().color_(imgui.Col_.text_disabled))
    imgui.text_wrapped(text)
    imgui.pop_style_color()


def job_line(status, idle_text: str = "") -> None:
    """A job's progress bar (running), or its last outcome; ``status`` is a ``JobStatus`` or None."""
    if status is None:
        if idle_text:
            imgui.text_disabled(idle_text)
        return
    if status.running:
        imgui.progress_bar(status.progress, imgui.ImVec2(-1, 0), f"{status.message} {100 * status.progress:.0f}%")
    elif status.error:
        colored_text(ERROR_RGBA, f"{status.name}: {status.error.strip().splitlines()[-1]}")
    else:
        colored_text(OK_RGBA, f"{status.name}: done in {status.seconds:.1f} s {status.output}")


def radio_row(label: str, values: tuple, current, labels: tuple | None = None, per_line: int = 0):
    """Radio buttons choosing one of ``values`` (shown as ``labels``, default the values), under the id scope
    ``label`` so each is its own clickable item ``<label>/<text>``. ``per_line`` 0: all on the label's line;
    n > 0: on the following lines, n per line. Returns the chosen value."""
    imgui.text(label)
    imgui.push_id(label)
    for i, (value, text) in enumerate(zip(values, labels or values)):
        if per_line == 0 or i % per_line:
            imgui.same_line()
        if imgui.radio_button(str(text), current == value):
            current = value
    imgui.pop_id()
    return current
