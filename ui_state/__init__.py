"""The studio window's typed data, below both ``widgets`` and ``viewer`` (docs/architecture.md).

- :mod:`ui_state.render`: frozen render requests and results (``RenderParams``, ``RenderResult``, ...).
- :mod:`ui_state.camera_control`: pure mouse/keyboard camera rules.
- :mod:`ui_state.panels`: the panels' forms; :mod:`ui_state.inversion`: the Inversion panel's form and info.
- :mod:`ui_state.info`: what the app publishes for the panels (``AppInfo``); :mod:`ui_state.jobs`: job names
  and statuses.
- :mod:`ui_state.actions`: requests from the panels to the app (the ``Action`` union).
- :mod:`ui_state.ui`: ``UiState`` (one field per panel) and ``render_params``.

Imports the standard library and numpy only (never torch, never ``core``), so widgets stay GPU-free.
"""
