"""The Training panel's actions, carried out by the run follower (``viewer/features/training/follow.py``): start a run,
attach to one, stop it, open its snapshots (as if the user opened the file)."""

from __future__ import annotations

from ui_state.actions import AttachRun, LoadSnapshot, OpenFile, StartTraining, StopTraining
from viewer.features.base import Feature, Studio
from viewer.features.training.follow import TrainingFollower


class Training(Feature):
    def __init__(self, studio: Studio) -> None:
        self.studio = studio
        self.follower = TrainingFollower(studio.ui, studio.jobs)

    def handlers(self):
        return {StartTraining: lambda a: self.follower.start(a.launch),
                AttachRun: lambda a: self.follower.attach(a.run_dir),
                StopTraining: lambda a: self.follower.stop(), LoadSnapshot: self.load_snapshot}

    def poll(self) -> None:
        snapshot = self.follower.poll()  # "follow training": the newest snapshot, once
        if snapshot is not None:
            self.studio.ui.request(OpenFile(snapshot))

    def load_snapshot(self, a: LoadSnapshot) -> None:
        path = self.follower.snapshot_path(a.name)
        if path is not None:
            self.studio.ui.request(OpenFile(path))

    @property
    def child_running(self) -> bool:
        """A run started from this window is still training."""
        return self.follower.child_running

    def release(self) -> None:
        self.follower.release()
