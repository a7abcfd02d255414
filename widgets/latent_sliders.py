"""The Latent panel's sliders: PCA components, attributes, user-taught and 3D-measured directions of the open
model (``<model>.directions.npz``), each in units of the model's std along it; teach a new one from yes/no
marks; move a measured attribute to a picked colour or width."""

from __future__ import annotations

import math

from imgui_bundle import imgui

from ui_state.actions import ComputeDirections, MarkSample, MatchTarget, TeachSlider
from ui_state.ui import UiState
from widgets.layout import item_width, job_line

RANGE = 3.0
FALLBACK_COLOR = (0.5, 0.5, 0.5)  # a target before the head on screen was measured
FALLBACK_WIDTH = 0.3
KIND_TITLES = (("pca", "PCA"), ("attribute", "Attributes"), ("measured", "Measured in 3D"), ("user", "Taught"))


def draw(ui: UiState) -> None:
    info = ui.info.directions
    s = ui.latent
    imgui.separator_text("Sliders")
    imgui.text_wrapped(info.status or "(no model directions)")
    if info.can_compute and not info.sliders:
        if imgui.button("Compute PCA sliders"):
            ui.request(ComputeDirections())
        imgui.set_item_tooltip("GANSpace: principal components of 4096 sampled w (saved beside the model file)")
    if not info.sliders:
        return
    item_width()
    _, s.pca_shown = imgui.slider_int("PCA sliders shown", s.pca_shown, 0, 20)
    if imgui.button("Reset all sliders"):
        s.sliders.clear()
    for kind, title in KIND_TITLES:
        group = [d for d in info.sliders if d.kind == kind]
        if kind == "pca":
            group = group[: s.pca_shown]
        if not group:
            continue
        imgui.text_disabled(title)
        for d in group:
            _slider(s, d.name, d.note)
    _measured(ui)
    _teach(ui)


def _slider(s, name: str, note: str) -> None:
    imgui.push_id(f"slider_{name}")
    item_width()
    v = s.sliders.get(name, 0.0)
    changed, v = imgui.slider_float(name, v, -RANGE, RANGE, "%.2f")
    if note:
        imgui.set_item_tooltip(note)
    imgui.same_line()
    if imgui.small_button("0"):
        v = 0.0
    if v == 0.0:
        s.sliders.pop(name, None)
    else:
        s.sliders[name] = float(v)
    imgui.pop_id()


def _measured(ui: UiState) -> None:
    """Each measured attribute: its target (starting at the head's own measured value until the user changes
    it), *Match*, and the match job's progress."""
    s = ui.latent
    measured = ui.info.directions.measured
    if not measured:
        return
    imgui.text_disabled("Match a target (the head's own value until you change it)")
    for m in measured:
        imgui.push_id(f"measured_{m.name}")
        now = m.value if m.value is not None and all(math.isfinite(v) for v in m.value) else None
        imgui.text(m.name)
        if now is not None:
            imgui.same_line()
            imgui.text_disabled("now " + ", ".join(f"{v:.2f}" for v in now))
        button_w = imgui.calc_text_size("Match").x + 2 * imgui.get_style().frame_padding.x
        imgui.set_next_item_width(max(60.0, imgui.get_content_region_avail().x - button_w
                                      - imgui.get_style().item_spacing.x))
        if m.quantity == "color":
            target = s.color_targets.get(m.name, now or FALLBACK_COLOR)
            changed, rgb = imgui.color_edit3("##target", list(target))
            if changed:
                s.color_targets[m.name] = tuple(float(c) for c in rgb)
            value = tuple(float(c) for c in (s.color_targets.get(m.name) or target))
        else:
            target = s.width_targets.get(m.name, now[0] if now else FALLBACK_WIDTH)
            changed, w = imgui.slider_float("##target", target, 0.05, 1.0, "%.3f")
            if changed:
                s.width_targets[m.name] = float(w)
            value = (float(s.width_targets.get(m.name, target)),)
        imgui.same_line()
        imgui.begin_disabled(ui.info.jobs.get("match") is not None and ui.info.jobs["match"].running)
        if imgui.button("Match"):
            ui.request(MatchTarget(m.name, value))
        imgui.end_disabled()
        imgui.pop_id()
    job_line(ui.info.jobs.get("match"))


def _teach(ui: UiState) -> None:
    s = ui.latent
    if not imgui.tree_node("Teach a slider"):
        return
    item_width()
    _, s.teach_name = imgui.input_text("attribute", s.teach_name)
    name = s.teach_name.strip()
    yes, no = ui.info.directions.marks
    imgui.text(f"marked: {yes} yes, {no} no (browse seeds and mark the head on screen)")
    if imgui.button("Yes##mark") and name:
        ui.request(MarkSample(name, True))
    imgui.same_line()
    if imgui.button("No##mark") and name:
        ui.request(MarkSample(name, False))
    imgui.same_line()
    imgui.begin_disabled(not (yes and no))
    if imgui.button("Make slider") and name:
        ui.request(TeachSlider(name))
    imgui.end_disabled()
    imgui.tree_pop()
