"""Files from the desktop: the native open dialog (imgui-bundle's portable file dialogs) and files dropped on the
window (glfw's drop callback). Both end as ``OpenFile`` actions. GUI thread."""

from __future__ import annotations

from pathlib import Path

from imgui_bundle import hello_imgui

from core.model_files import GENERATOR_SUFFIXES
from ui_state.actions import BrowseSource, OpenFile
from ui_state.ui import UiState
from viewer.features.base import Feature

FILTERS = ["Generators and scenes", " ".join(f"*{x}" for x in (*GENERATOR_SUFFIXES, ".ply")), "All files", "*"]


class FileDrops(Feature):
    """``BrowseSource`` opens the dialog; each frame, a chosen or dropped file is opened."""

    def __init__(self, ui: UiState) -> None:
        self.ui = ui
        self._dialog = None
        self._dropped: list[str] = []
        self._drop_cb = None
        self.glfw_window = None  # the window's glfw handle once hooked (the quit guard uses it)

    def handlers(self):
        return {BrowseSource: self.browse}

    def browse(self, a: BrowseSource) -> None:
        try:
            from imgui_bundle import portable_file_dialogs as pfd

            self._dialog = pfd.open_file("Open a generator or scene", str(Path.cwd()), FILTERS)
        except Exception as e:  # noqa: BLE001
            self.ui.info.say(f"no file dialog here ({e}); type the path instead", "warning")

    def hook_drops(self) -> None:
        """Register the drop callback (GL context current, after the window exists)."""
        try:
            import ctypes

            import glfw

            win = ctypes.cast(hello_imgui.get_glfw_window_address(), ctypes.POINTER(glfw._GLFWwindow))
            self.glfw_window = win
            self._drop_cb = lambda _w, paths: self._dropped.extend(str(p) for p in paths)
            glfw.set_drop_callback(win, self._drop_cb)
        except Exception as e:  # noqa: BLE001 - drag and drop is a convenience
            self.ui.info.say(f"drag and drop unavailable: {e}", "warning")

    def poll(self) -> None:
        if self._dialog is not None and self._dialog.ready(0):
            result, self._dialog = self._dialog.result(), None
            if result:
                self.ui.request(OpenFile(result[0]))
        for path in self._dropped:
            self.ui.request(OpenFile(path))
        self._dropped.clear()
