"""The Video panel: an orbit ``.mp4`` of the head on screen, rendered as a render-worker job one frame per turn
(``core.orbit_video``: the cameras, the renderer and the atomic :class:`~core.orbit_video.VideoFile`), with
progress and Cancel; a cancelled or failed video leaves no file."""

from __future__ import annotations

from ui_state.actions import StartVideo
from viewer.features.base import Feature, Studio
from viewer.features.exports import free_path
from viewer.jobs import JobContext


def video_defaults(path: str) -> StartVideo:
    """The Video panel's first request: ``core.orbit_video.OrbitVideoSettings``' defaults (the CLI's), to ``path``."""
    from core.orbit_video import OrbitVideoSettings

    d = OrbitVideoSettings()
    return StartVideo(path, frames=d.frames, fps=round(d.fps), radius=d.radius, elevation_deg=d.elevation_deg,
                      resolution=d.resolution, turns=d.turns)

class Video(Feature):
    def __init__(self, studio: Studio) -> None:
        self.studio = studio

    def handlers(self):
        return {StartVideo: self.start}

    def start(self, a: StartVideo) -> None:
        ui = self.studio.ui
        result = self.studio.picture.result
        scene = result.scene if result is not None else None
        if scene is None:
            self.studio.say("nothing to film yet: no Gaussians on screen", "warning")
            return
        from core.orbit_video import OrbitVideoSettings, check_video_name

        try:
            check_video_name(a.path)
            settings = OrbitVideoSettings(frames=a.frames, fps=a.fps, radius=a.radius, elevation_deg=a.elevation_deg,
                                          resolution=a.resolution, fov_deg=ui.camera.camera.fov_deg,
                                          background=ui.render.background, turns=a.turns)
        except ValueError as e:
            self.studio.say(str(e), "error")
            return
        target = free_path(a.path)
        device = ui.device

        def work(ctx: JobContext, gpu):
            from core.orbit_video import VideoFile, orbit_frames

            target.parent.mkdir(parents=True, exist_ok=True)
            with VideoFile(target, settings.fps) as video:  # a cancel closes this generator: the file is removed
                for i, frame in enumerate(orbit_frames(scene, settings, device)):
                    video.append(frame)
                    ctx.progress((i + 1) / settings.frames, f"frame {i + 1}/{settings.frames}")
                    yield  # one frame per worker turn
                return video.finish()

        if not self.studio.jobs.start_on_worker("video", work, on_done=lambda p: self.studio.say(f"saved {p}"),
                                                output=str(target)):
            self.studio.say("video is still running; wait for it to finish", "warning")
