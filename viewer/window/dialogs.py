"""Files from the desktop: the open dialog (the desktop's own, or the in-app one when it has none; see
``viewer.window.file_dialog``) and files dropped on the window (glfw's drop callback). Both end as ``OpenFile``
actions. GUI thread."""

from __future__ import annotations

from pathlib import Path

from imgui_bundle import hello_imgui

from core.model_files import GENERATOR_DIALOG_SUFFIXES
from ui_state.actions import BrowseSource, OpenFile
from ui_state.ui import UiState
from viewer.features.base import Feature
from viewer.window.file_dialog import OpenDialog

FILTERS = (("Generators and scenes", (*GENERATOR_DIALOG_SUFFIXES, ".ply")),)


class FileDrops(Feature):
    """``BrowseSource`` opens the dialog; each frame, a chosen or dropped file is opened."""

    def __init__(self, ui: UiState, in_app_dialog: bool | None = None) -> None:
        self.ui = ui
        self.dialog = OpenDialog("open_source", "Open a generator or scene", FILTERS, in_app=in_app_dialog)
        self._dropped: list[str] = []
        self._drop_cb = None
        self.glfw_window = None  # the window's glfw handle once hooked (the quit guard uses it)

    def handlers(self):
        return {BrowseSource: self.browse}

    def browse(self, a: BrowseSource) -> None:
        current = Path(self.ui.load.current)
        try:
            self.dialog.open(current.parent if current.is_file() else None)
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
        for path in self.dialog.chosen()[:1]:
            self.ui.request(OpenFile(path))
        for path in self._dropped:
            self.ui.request(OpenFile(path))
        self._dropped.clear()

    def release(self) -> None:
        self.dialog.close()
