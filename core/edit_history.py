"""An undoable stack of :mod:`core.edit_ops` applied in order to a base scene.

:class:`EditHistory` is an immutable value: ``push``, ``amend``, ``undo``, ``redo`` and ``clear`` return a
new history, so the viewer can keep it in its render state and compare it cheaply (ops compare by value).
The base scene is never stored or modified; :meth:`EditHistory.apply` recomputes the edited scene from it.

JSON form (:meth:`EditHistory.to_dict`)::

    {"format": "splathead-edit-history", "version": 1,
     "ops": [{"op": "crop_box", "params": {...}}, ...],   # applied, oldest first
     "redo": [...]}                                       # undone, next to redo first
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from core.edit_ops import EditOp, EditOpError, op_from_dict, op_to_dict
from core.gaussians import GaussianSet

HISTORY_FORMAT = "splathead-edit-history"
HISTORY_VERSION = 1


@dataclass(frozen=True)
class EditHistory:
    """Attributes:
        ops: the applied ops, oldest first (the order :meth:`apply` runs them).
        redo_stack: undone ops, the next one to redo first; cleared by :meth:`push` and :meth:`amend`.
    """

    ops: tuple[EditOp, ...] = ()
    redo_stack: tuple[EditOp, ...] = ()

    def __post_init__(self) -> None:
        for name in ("ops", "redo_stack"):
            value = getattr(self, name)
            if not isinstance(value, tuple) or not all(isinstance(op, EditOp) for op in value):
                raise TypeError(f"EditHistory.{name} must be a tuple of EditOp, got {value!r}")

    @property
    def can_undo(self) -> bool:
        return bool(self.ops)

    @property
    def can_redo(self) -> bool:
        return bool(self.redo_stack)

    def push(self, op: EditOp) -> EditHistory:
        """Append ``op`` (it runs after the others) and forget the redo stack."""
        if not isinstance(op, EditOp):
            raise TypeError(f"push needs an EditOp, got {type(op).__name__}")
        return EditHistory(self.ops + (op,), ())

    def amend(self, op: EditOp) -> EditHistory:
        """Replace the newest op by ``op`` (a slider drag re-tuning it without one entry per frame);
        pushes when the history is empty. Forgets the redo stack."""
        if not isinstance(op, EditOp):
            raise TypeError(f"amend needs an EditOp, got {type(op).__name__}")
        return EditHistory(self.ops[:-1] + (op,), ())

    def undo(self) -> EditHistory:
        """Move the newest op to the redo stack; ``IndexError`` if there is none (see :attr:`can_undo`)."""
        if not self.ops:
            raise IndexError("nothing to undo")
        return EditHistory(self.ops[:-1], (self.ops[-1],) + self.redo_stack)

    def redo(self) -> EditHistory:
        """Re-apply the most recently undone op; ``IndexError`` if there is none (see :attr:`can_redo`)."""
        if not self.redo_stack:
            raise IndexError("nothing to redo")
        return EditHistory(self.ops + (self.redo_stack[0],), self.redo_stack[1:])

    def clear(self) -> EditHistory:
        """An empty history (no ops, nothing to redo)."""
        return EditHistory()

    def apply(self, base: GaussianSet) -> GaussianSet:
        """The base scene with every op applied in order; ``base`` is not modified (pure)."""
        gs = base
        for op in self.ops:
            gs = op.apply(gs)
        return gs

    # ------------------------------------------------------------------ serialisation

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (see the module docstring)."""
        return {"format": HISTORY_FORMAT, "version": HISTORY_VERSION,
                "ops": [op_to_dict(op) for op in self.ops], "redo": [op_to_dict(op) for op in self.redo_stack]}

    @classmethod
    def from_dict(cls, d: object) -> EditHistory:
        """Inverse of :meth:`to_dict`; raises :class:`~core.edit_ops.EditOpError` naming the bad entry."""
        if not isinstance(d, Mapping):
            raise EditOpError(f"an edit history must be a dict, got {type(d).__name__}")
        if d.get("format") != HISTORY_FORMAT:
            raise EditOpError(f"not an edit history: format is {d.get('format')!r}, expected {HISTORY_FORMAT!r}")
        if d.get("version") != HISTORY_VERSION:
            raise EditOpError(f"edit history version {d.get('version')!r} is not supported "
                              f"(expected {HISTORY_VERSION})")
        unknown = sorted(set(d) - {"format", "version", "ops", "redo"})
        if unknown:
            raise EditOpError(f"edit history has unknown key(s) {unknown}")
        lists = []
        for key in ("ops", "redo"):
            items = d.get(key, [])
            if not isinstance(items, list):
                raise EditOpError(f"edit history '{key}' must be a list, got {type(items).__name__}")
            ops = []
            for i, item in enumerate(items):
                try:
                    ops.append(op_from_dict(item))
                except EditOpError as exc:
                    raise EditOpError(f"edit history '{key}'[{i}]: {exc}") from None
            lists.append(tuple(ops))
        return cls(lists[0], lists[1])
