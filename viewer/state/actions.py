"""Compatibility alias for widgets/training.py, which still imports ``viewer.state.actions``; the actions live in
:mod:`ui_state.actions`. Removed when that file moves."""

from ui_state.actions import AttachRun, LoadSnapshot, StartTraining, StopTraining  # noqa: F401
