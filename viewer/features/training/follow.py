"""The app's side of the Training panel: one followed run (started here or attached), refreshed about once a
second on a job thread, its newest image grid as a GL texture, "follow training", stop, and what happens to a
run the viewer started when the window closes.

GUI thread only (it owns a GL texture); file reading and PNG decoding run on the job thread.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from core.runs import is_run_dir, request_stop
from viewer.jobs import JobContext, JobRunner
from ui_state.training import TrainingInfo, TrainingLaunch
from ui_state.ui import UiState
from viewer.features.training.runs import RunView, TrainingProcess, read_run

REFRESH_S = 1.0
MAX_GRID_PIXELS = 4096 * 4096


class TrainingFollower:
    def __init__(self, ui: UiState, jobs: JobRunner) -> None:
        self.ui, self.jobs = ui, jobs
        self.process: TrainingProcess | None = None
        self.run_dir: Path | None = None
        self._last_refresh = 0.0
        self._texture = None  # viewer.texture.ImageTexture, created on first grid
        self._grid_key: tuple | None = None
        self._followed_snapshot: str | None = None
        self._view: RunView | None = None

    # ------------------------------------------------------------------ actions

    def start(self, launch: TrainingLaunch) -> None:
        if self.process is not None and self.process.running:
            self.ui.info.say("a training run started here is still running; stop it first", "warning")
            return
        data = Path(launch.data).expanduser()
        if not data.exists():
            self.ui.info.say(f"dataset not found: {launch.data}", "error")
            return
        try:
            self.process = TrainingProcess(launch)
        except OSError as exc:  # an output folder that cannot be created or written, no python, ...
            self.ui.info.say(f"cannot start training: {exc}", "error")
            return
        self.run_dir = None
        self._view = None
        self._followed_snapshot = None
        self._last_refresh = 0.0
        self.ui.info.training = TrainingInfo(status="starting", launched=True)
        self.ui.info.say(f"started: {' '.join(self.process.command[1:])} (console: {self.process.console})")

    def attach(self, run_dir: str) -> None:
        p = Path(run_dir).expanduser()
        if not p.is_dir():
            self.ui.info.say(f"not a run directory: {run_dir}", "error")
            return
        if not is_run_dir(p):
            self.ui.info.say(f"{run_dir} has no options.json or status.json: not a training run directory",
                             "error")
            return
        self.process = None if self.process is None or not self.process.running else self.process
        self.run_dir = p
        self._view = None
        self._followed_snapshot = None
        self.ui.info.training = TrainingInfo(run_dir=str(p), status="unknown")
        self._last_refresh = 0.0

    def stop(self) -> None:
        if self.run_dir is None:
            if self.process is not None and self.process.running:
                self.process.terminate()  # before the run has its folder: SIGTERM (it exits cleanly)
            return
        request_stop(self.run_dir, by="the viewer")
        self.ui.info.training = replace(self.ui.info.training, stop_requested=True)
        self.ui.info.say(f"asked the run to stop (STOP file in {self.run_dir})")

    def snapshot_path(self, name: str) -> str | None:
        """The path of snapshot ``name`` ("" = newest) of the followed run, or None."""
        view = self._view
        if view is None or not view.snapshots:
            self.ui.info.say("the run has no snapshot yet", "warning")
            return None
        if not name:
            return str(view.snapshots[-1])
        for p in view.snapshots:
            if p.name == name:
                return str(p)
        return None

    def handle(self, action) -> bool:
        return False  # the app routes the Training actions itself

    @property
    def child_running(self) -> bool:
        return self.process is not None and self.process.running

    # ------------------------------------------------------------------ per frame

    def poll(self) -> str | None:
        """Refresh (at most once a second, off the GUI thread); returns a snapshot to open when following."""
        now = time.monotonic()
        if self.process is not None and self.run_dir is None:
            if now - self._last_refresh < REFRESH_S:
                return None
            self._last_refresh = now
            exited = not self.process.running  # before looking: a run that wrote its status and exited counts
            self.run_dir = self.process.run_dir
            if self.run_dir is None and exited:
                tail = self.process.console_tail(15)
                self.ui.info.training = replace(self.ui.info.training, status="failed", error=tail or
                                                f"the training process exited with status {self.process.returncode}")
                self.process = None
                return None
            if self.run_dir is not None:
                self._last_refresh = 0.0  # read it right away
        if self.run_dir is None or now - self._last_refresh < REFRESH_S or self.jobs.running("training_watch"):
            return None
        self._last_refresh = now
        run_dir = self.run_dir
        alive = self.process.running if self.process is not None else None
        grid_key = self._grid_key

        def work(ctx: JobContext):
            view = read_run(run_dir, alive)
            grid = None
            if view.grid is not None:
                key = (str(view.grid), view.grid.stat().st_mtime_ns)
                if key != grid_key:
                    grid = (key, _read_png(view.grid))
            return view, grid

        self.jobs.start("training_watch", work, on_done=self._apply)
        return self._follow()

    def _apply(self, result) -> None:
        view, grid = result
        self._view = view
        if grid is not None and grid[1] is not None:
            from viewer.texture import ImageTexture

            if self._texture is None:
                self._texture = ImageTexture()
            self._texture.upload(grid[1])
            self._grid_key = grid[0]
        info = self.ui.info.training
        self.ui.info.training = TrainingInfo(
            run_dir=str(view.run_dir), status=view.status, launched=self.process is not None, kimg=view.kimg,
            total_kimg=view.total_kimg, sec_per_kimg=view.sec_per_kimg, eta_s=view.eta_s, series=view.series,
            grid_texture=self._texture.texture_id if self._texture is not None else 0,
            grid_size=self._texture.size if self._texture is not None else (0, 0),
            grid_name=view.grid.name if view.grid is not None else "",
            snapshots=tuple(p.name for p in view.snapshots), error=view.error, log_tail=view.log_tail,
            stop_requested=view.stop_requested or (info.stop_requested and view.status == "running"))

    def _follow(self) -> str | None:
        view = self._view
        if not self.ui.training.follow or view is None or not view.snapshots:
            return None
        newest = str(view.snapshots[-1])
        if newest == self._followed_snapshot:
            return None
        self._followed_snapshot = newest
        return newest

    def release(self) -> None:
        if self._texture is not None:
            self._texture.release()
            self._texture = None


def _read_png(path: Path) -> np.ndarray | None:
    """RGB uint8 of an image grid, or None if it cannot be read (half-written files are atomic, but be safe)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_GRID_PIXELS:
                return None
            return np.asarray(im.convert("RGB"))
    except Exception:  # noqa: BLE001
        return None
