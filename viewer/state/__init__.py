"""The viewer's typed state, importable without torch or anything local (it sits below widgets and viewer).

- :mod:`viewer.state.render`: frozen render requests and results (``RenderParams``, ``RenderResult``, ...).
- :mod:`viewer.state.actions`: requests from the panels to the app (``OpenFile``, ``SavePly``, ...).
- :mod:`viewer.state.ui`: the mutable per-panel UI state and what the app publishes (``UiState``, ``AppInfo``).
"""

from viewer.state.render import (  # noqa: F401  (re-exports)
    DEFAULT_FOV_DEG, DEFAULT_RADIUS, RANDOM_SOURCES, CameraMode, CameraParams, EditSpec, EditValue, ImageMode,
    LatentParams, LatentSpace, RenderParams, RenderResult, RenderStats,
)
