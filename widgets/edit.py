"""Edit panel: named scene operations (crop box, opacity threshold, recolour, splat scale, move, scale) with
typed parameters and an undoable history. No typed code is ever executed."""

from __future__ import annotations

from imgui_bundle import imgui

from ui_state.actions import ClearEdits, PushEdit, RedoEdit, UndoEdit
from ui_state.render import EditSpec
from ui_state.info import EditField
from ui_state.ui import UiState
from widgets.layout import item_width


def draw(ui: UiState) -> None:
    s = ui.edit
    ops = ui.info.edit_ops
    if not ops:
        imgui.text_disabled("(edit operations not loaded yet)")
        return
    names = [op.name for op in ops]
    if s.selected not in names:
        s.selected = names[0]
        s.draft = None
    idx = names.index(s.selected)
    imgui.text("operation")
    for i, name in enumerate(names):
        if i % 3:
            imgui.same_line()
        if imgui.radio_button(f"{name}##op", i == idx):
            idx = i
    op = ops[idx]
    if s.draft is None or s.draft.op != op.name:
        s.selected, s.draft = op.name, op.default_spec()
    imgui.text_wrapped(op.description)
    values = dict(s.draft.params)
    for f in op.fields:
        values[f.name] = _field(f, values.get(f.name, f.default))
    s.draft = EditSpec(op.name, tuple((f.name, values[f.name]) for f in op.fields))
    if imgui.button("Apply##edit"):
        ui.request(PushEdit(s.draft))
    history = ui.info.edits
    imgui.same_line()
    imgui.begin_disabled(not history.applied)
    if imgui.button("Undo##edit"):
        ui.request(UndoEdit())
    imgui.end_disabled()
    imgui.same_line()
    imgui.begin_disabled(not history.redo)
    if imgui.button("Redo##edit"):
        ui.request(RedoEdit())
    imgui.end_disabled()
    imgui.same_line()
    imgui.begin_disabled(not history.applied)
    if imgui.button("Clear##edit"):
        ui.request(ClearEdits())
    imgui.end_disabled()
    imgui.text_disabled(f"history: {len(history.applied)} applied, {len(history.redo)} to redo")
    for i, spec in enumerate(history.applied):  # wrapped: a crop box's corners and "invert" are a long line
        imgui.bullet()
        imgui.text_wrapped(f"{i + 1}. {spec.op} " + ", ".join(f"{k}={_short(v)}" for k, v in spec.params))


def _field(f: EditField, value):
    item_width()
    if f.kind == "bool":
        _, v = imgui.checkbox(f.name, bool(value))
    elif f.kind == "vec3":
        _, v = imgui.drag_float3(f.name, list(value), 0.005, f.lo, f.hi)
        v = tuple(float(x) for x in v)
    elif f.kind == "color":
        _, v = imgui.color_edit3(f.name, list(value))
        v = tuple(float(x) for x in v)
    elif f.kind == "int":
        _, v = imgui.slider_int(f.name, int(value), int(f.lo), int(f.hi))
    else:
        _, v = imgui.slider_float(f.name, float(value), f.lo, f.hi, "%.3f")
    if f.help:
        imgui.set_item_tooltip(f.help)
    return v


def _short(v) -> str:
    if isinstance(v, tuple):
        return "(" + ", ".join(f"{x:.2f}" for x in v) + ")"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)
