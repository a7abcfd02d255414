"""An "open file(s)" dialog that always appears: the desktop's own when it has one, else one drawn in the window.

- **native**: imgui-bundle's ``portable_file_dialogs`` (portable-file-dialogs): on Linux it runs ``zenity``,
  ``kdialog``, ``qarma`` or ``matedialog``; on macOS and Windows the system dialog. Without any of those
  programs it would silently return nothing, so on Linux they are looked up first.
- **in-app**: imgui-bundle's ``im_file_dialog`` (ImFileDialog, drawn with ImGui inside the studio window:
  folders, favourites, a file-name field, the extension filter). Used when there is no native dialog.

GUI thread only. Call :meth:`OpenDialog.chosen` every frame: it draws the in-app dialog while it is open and
returns the chosen paths once.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

LINUX_DIALOG_PROGRAMS = ("zenity", "kdialog", "qarma", "matedialog")  # what portable-file-dialogs runs


def native_available() -> bool:
    """The desktop has a dialog portable-file-dialogs can show."""
    if sys.platform.startswith("linux"):
        return any(shutil.which(p) for p in LINUX_DIALOG_PROGRAMS)
    return True


class OpenDialog:
    """One open dialog. ``key``: a unique name; ``filters``: ``((description, (".ext", ...)), ...)`` (the files
    shown; "All files" is added); ``multiselect``: allow several files; ``in_app``: None = native when available,
    True/False to force one (tests)."""

    def __init__(self, key: str, title: str, filters: tuple[tuple[str, tuple[str, ...]], ...],
                 multiselect: bool = False, in_app: bool | None = None) -> None:
        self.key, self.title, self.filters, self.multiselect = key, title, filters, multiselect
        self.in_app = (not native_available()) if in_app is None else in_app
        self._native = None
        self._open = False

    @property
    def kind(self) -> str:
        return "in-app" if self.in_app else "native"

    @property
    def is_open(self) -> bool:
        return self._open

    def open(self, start: str | Path | None = None) -> None:
        """Show the dialog in ``start`` (default: the working folder). Raises if it cannot be shown."""
        folder = str(Path(start) if start else Path.cwd())
        if self.in_app:
            from imgui_bundle import im_file_dialog as ifd

            flt = ",".join(f"{d} ({' '.join('*' + e for e in exts)}){{{','.join(exts)}}}" for d, exts in self.filters)
            ifd.FileDialog.instance().open(self.key, self.title, flt + ",.*", self.multiselect, folder)
        else:
            from imgui_bundle import portable_file_dialogs as pfd

            flt = [x for d, exts in self.filters for x in (d, " ".join("*" + e for e in exts))] + ["All files", "*"]
            self._native = pfd.open_file(self.title, folder, flt, pfd.opt.multiselect if self.multiselect
                                         else pfd.opt.none)
        self._open = True

    def chosen(self) -> list[str]:
        """The files chosen since the last call (draws the in-app dialog while it is open)."""
        if not self._open:
            return []
        if not self.in_app:
            if self._native is None or not self._native.ready(0):
                return []
            result, self._native, self._open = self._native.result(), None, False
            return list(result or [])
        from imgui_bundle import im_file_dialog as ifd

        from viewer.texture import clear_gl_errors

        d = ifd.FileDialog.instance()
        done = d.is_done(self.key)  # draws it
        clear_gl_errors()  # its icon textures can leave a GL error behind
        if not done:
            return []
        out = [p.path() for p in d.get_results()] if d.has_result() else []
        d.close()
        self._open = False
        return [p for p in out if p]

    def close(self) -> None:
        """Close it without a result (before the window closes: ImFileDialog must not outlive the GL context)."""
        if self._open and self.in_app:
            from imgui_bundle import im_file_dialog as ifd

            ifd.FileDialog.instance().close()
        if self._native is not None:
            self._native.kill()
        self._native, self._open = None, False
