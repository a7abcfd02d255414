"""The Edit panel's logic: an undoable history of named scene operations (``core.edit_history.EditHistory``).

Each ``PushEdit`` is turned into a ``core.edit_ops`` op first, so a bad parameter is refused with a message and
never reaches the render worker. The history is published as plain ``EditSpec`` tuples
(``AppInfo.edits``), which the render request carries; the worker rebuilds the ops from them. Opening another
file clears the history (a feature showing a source, e.g. an inversion result, keeps it).
"""

from __future__ import annotations

from ui_state.actions import ClearEdits, PushEdit, RedoEdit, UndoEdit
from ui_state.info import EditsInfo
from viewer.events import SourceChanged
from viewer.features.base import Feature, Studio
from viewer.features.edit_catalog import edit_catalog, edit_from_spec, spec_from_op


class Edits(Feature):
    def __init__(self, studio: Studio) -> None:
        from core.edit_history import EditHistory

        self.studio = studio
        self.history = EditHistory()

    def load_catalog(self) -> None:
        """List the registered ops for the panel (once, at start-up)."""
        try:
            self.studio.ui.info.edit_ops = edit_catalog()
        except Exception as e:  # noqa: BLE001 - the panel says so; the rest of the studio works
            self.studio.say(f"edit operations unavailable: {e}", "error")

    def handlers(self):
        return {PushEdit: self.push, UndoEdit: self.undo, RedoEdit: self.redo, ClearEdits: self.clear}

    def push(self, a: PushEdit) -> None:
        from core.edit_ops import EditOpError

        try:
            op = edit_from_spec(a.edit)
        except EditOpError as e:
            self.studio.say(f"edit not applied: {e}", "error")
            return
        self._set(self.history.push(op))

    def undo(self, a: UndoEdit) -> None:
        if self.history.can_undo:
            self._set(self.history.undo())

    def redo(self, a: RedoEdit) -> None:
        if self.history.can_redo:
            self._set(self.history.redo())

    def clear(self, a: ClearEdits | None = None) -> None:
        self._set(self.history.clear())

    def source_changed(self, event: SourceChanged) -> None:
        if event.opened:
            self.clear()

    def _set(self, history) -> None:
        self.history = history
        self.studio.ui.info.edits = EditsInfo(tuple(spec_from_op(op) for op in history.ops),
                                              tuple(spec_from_op(op) for op in history.redo_stack))
