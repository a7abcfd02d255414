"""Compatibility alias for the Training files that still import ``viewer.state.ui`` (viewer/training_follow.py,
widgets/training.py); the UI state lives in :mod:`ui_state`. Removed when those files move."""

from ui_state.ui import UiState  # noqa: F401
