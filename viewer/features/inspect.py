"""The Inspect panel's statistics of the Gaussians on screen (``core.scene_stats``), computed as a
render-worker job whenever a new scene is shown while the panel is open (when "update with the scene" is on),
or on Refresh. A closed panel computes nothing (no work beside every new seed)."""

from __future__ import annotations

import numpy as np

from ui_state.actions import RefreshInspect
from ui_state.info import Histogram, InspectData
from viewer.features.base import Feature, Studio
from viewer.jobs import JobContext

HISTOGRAM_LABELS = (("scale_log10", "scale (log10)"), ("opacity", "opacity"), ("r", "colour R"),
                    ("g", "colour G"), ("b", "colour B"), ("x", "position x"), ("y", "position y"),
                    ("z", "position z"))


def inspect_data(stats) -> InspectData:
    """``core.scene_stats.SceneStats`` -> the panel's plain :class:`InspectData`."""
    series = stats.series()
    hists = []
    for key, label in HISTOGRAM_LABELS:
        s = series.get(key)
        if s is None:
            continue
        hists.append((label, Histogram(np.asarray(s.histogram.counts, np.float32), np.asarray(s.histogram.edges),
                                       s.min, s.max, s.mean, s.std)))
    return InspectData(int(stats.num_gaussians), int(stats.sh_degree), int(stats.nonfinite_gaussians),
                       tuple(hists))


class Inspect(Feature):
    def __init__(self, studio: Studio) -> None:
        self.studio = studio
        self._inspected: object | None = None  # the scene the newest statistics describe

    def handlers(self):
        return {RefreshInspect: self.refresh}

    def poll(self) -> None:
        panel = self.studio.ui.inspect
        shown, panel.shown = panel.shown, False
        result = self.studio.picture.result
        if shown and panel.auto and result is not None and result.scene is not None \
                and result.scene is not self._inspected:
            self.start(result.scene)

    def refresh(self, a: RefreshInspect) -> None:
        result = self.studio.picture.result
        if result is not None and result.scene is not None:
            self.start(result.scene)

    def start(self, scene) -> None:
        def work(ctx: JobContext, gpu) -> InspectData:
            from core.scene_stats import scene_stats

            return inspect_data(scene_stats(scene.detach().to("cpu")))

        def done(data: InspectData) -> None:
            self.studio.ui.info.inspect = data

        if self.studio.jobs.start_on_worker("inspect", work, on_done=done):
            self._inspected = scene
