"""Closing the window while a training run started here is training: ask (keep it, stop it, or stay)."""

from __future__ import annotations

from imgui_bundle import hello_imgui, imgui

from viewer.config import APP_NAME

QUIT_POPUP = "Training is running"


class QuitGuard:
    """``training``: the Training feature (``child_running``, ``follower``); ``drops``: gives the glfw window."""

    def __init__(self, training, drops) -> None:
        self.training, self.drops = training, drops
        self._confirmed = False
        self._after_stop = False

    def frame(self) -> None:
        rp = hello_imgui.get_runner_params()
        running = self.training.child_running
        if self._after_stop:
            if not running:
                rp.app_shall_exit = True
                return
            rp.app_shall_exit = False
        if rp.app_shall_exit and running and not self._confirmed:
            rp.app_shall_exit = False
            self._cancel_window_close()
            imgui.open_popup(QUIT_POPUP)
        if imgui.begin_popup_modal(QUIT_POPUP, None, imgui.WindowFlags_.always_auto_resize)[0]:
            if self._after_stop:
                imgui.text("Waiting for the run to write its snapshot and exit...")
            else:
                imgui.text("A training run started from this window is still running.")
                if imgui.button("Keep it running and quit"):
                    self._confirmed = True
                    rp.app_shall_exit = True
                    imgui.close_current_popup()
                imgui.same_line()
                if imgui.button("Stop it (snapshot) and quit"):
                    self.training.follower.stop()
                    self._after_stop = True
                imgui.same_line()
                if imgui.button("Cancel"):
                    imgui.close_current_popup()
            imgui.end_popup()

    def _cancel_window_close(self) -> None:
        """Clear glfw's should-close flag (else the backend asks to exit again every frame)."""
        try:
            import glfw

            glfw.set_window_should_close(self.drops.glfw_window, False)
        except Exception:  # noqa: BLE001 - no glfw window handle: the popup still appears every frame
            pass

    def goodbye(self) -> None:
        """At exit: say where a run started here keeps going."""
        f = self.training.follower
        if f.child_running:
            print(f"{APP_NAME}: the training run started here keeps running in the background "
                  f"(pid {f.process.proc.pid}; run directory {f.run_dir}); stop it with "
                  f"'touch <run dir>/STOP' or from the Training panel after attaching to it")
