"""The picture, GUI-thread side: what to ask the render worker for, what came back, and the texture to show.

Two display paths (``RenderPanel.display``; "auto" = images, drawn by gsplat on CUDA and by the CPU splat
rasterizer elsewhere; OpenGL splats when there is no CUDA and the CPU rasterizer cannot run):

- **image**: the request asks for an image at the Render panel's size (a quarter while dragging); the newest
  image is uploaded into a texture. The worker draws it with gsplat on CUDA, with
  :mod:`viewer.viewport.cpu_splats` on the CPU (RGB and alpha) and with the torch reference otherwise.
- **opengl**: the request asks only for the scene (``output="scene"``; camera and size do not matter, so
  camera moves never reach the worker), and the GUI thread draws the splats itself with
  :class:`~viewer.viewport.gl_splats.GLSplatRenderer`, progressively smaller while the camera moves.

Also what features may read (``viewer.features.base.Picture``): the newest result and the current image.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from ui_state.render import CameraParams, RenderParams, RenderResult
from ui_state.ui import UiState, render_params
from viewer.config import random_banner

GL_DRAG_DIVISORS = (2, 3, 4, 6)  # image size divisors the OpenGL path may use while the camera moves
GL_DRAG_BUDGET_MS = 22.0  # pick the smallest divisor whose last draw fit this (about 30 fps with the GUI)


class Display:
    """See the module docstring. ``worker``: a ``RenderWorker``. GL objects are made in :meth:`init_gl`."""

    def __init__(self, ui: UiState, worker) -> None:
        self.ui, self.worker = ui, worker
        self.gl = None  # GLSplatRenderer
        self.texture = None  # ImageTexture for the image path
        self.submitted: RenderParams | None = None
        self._result: RenderResult | None = None
        self._seen = 0  # newest result generation handled
        self._full_image: np.ndarray | None = None  # newest full-resolution image-path image
        self._gl_key = None  # what the OpenGL texture currently shows
        self._gl_scene = None  # SplatArrays on the GL renderer
        self._gl_full = False  # the last GL draw was at full resolution
        self._gl_ms: dict[tuple[int, int, int], float] = {}  # last draw ms per (divisor, width, height)
        self._display_tex = 0
        self._display_size = (0, 0)
        self._gl_scene_generation = 0  # result generation of the splats on the GL renderer
        self._stamp = 0  # counts GL draws and image uploads, so the newer of the two pictures is known
        self._gl_stamp = 0
        self._image_stamp = 0
        self._image_generation = 0
        self._gl_generation = 0  # result generation the GL texture shows
        self.shown_generation = 0  # result generation of the picture presented this frame (benchmarks)
        self.presented: tuple[int, tuple[int, int]] = (0, (0, 0))  # (texture, size) presented this frame
        self.gl_draws = 0
        self.pictures = 0  # new pictures made for the screen: GL draws plus image uploads (benchmarks)
        self.first_result = False
        self._cpu_images: bool | None = None

    # ------------------------------------------------------------------ set-up (GL context current)

    def init_gl(self) -> None:
        from OpenGL import GL

        from viewer.texture import ImageTexture

        info = self.ui.info
        try:
            info.gl_renderer = f"{GL.glGetString(GL.GL_RENDERER).decode()}, " \
                               f"OpenGL {GL.glGetString(GL.GL_VERSION).decode()}"
        except Exception as e:  # noqa: BLE001
            info.gl_renderer = f"unavailable ({e})"
        self.texture = ImageTexture()
        try:
            from viewer.viewport.gl_splats import GLSplatRenderer

            self.gl = GLSplatRenderer()
        except Exception as e:  # noqa: BLE001 - no GL 3.3: images only
            info.say(f"OpenGL splat renderer unavailable ({type(e).__name__}: {e}); using images", "warning")

    def release(self) -> None:
        if self.gl is not None:
            self.gl.release()
        if self.texture is not None:
            self.texture.release()

    # ------------------------------------------------------------------ what features read

    @property
    def result(self) -> RenderResult | None:
        return self._result

    @property
    def settled(self) -> bool:
        """The worker answered the newest request, and on the OpenGL path the texture shows it."""
        r = self._result
        return r is not None and r.params == self.submitted and (not self.use_gl() or self._gl_key is not None)

    @property
    def drawn_divisors(self) -> list[int]:
        return sorted({k[0] for k in self._gl_ms})

    def new_texture(self):
        from viewer.texture import ImageTexture

        return ImageTexture()

    def refresh(self) -> None:
        self.submitted = None

    def current_image(self) -> np.ndarray | None:
        """The current view at full resolution, uint8 ``[H, W, 3]`` (GL readback or the worker's image)."""
        if self.use_gl() and self._gl_scene is not None:
            r = self.ui.render
            if not self._gl_full:
                self.gl.draw_camera(self.ui.camera.camera, r.width, r.height, r.background, r.splat_scale, r.mode)
                self._gl_key = None
            return self.gl.read_rgb()
        return self._full_image

    # ------------------------------------------------------------------ per frame

    def take_result(self) -> None:
        """Take the worker's newest result, if new: stats, errors, the image or the splats (start of a frame)."""
        res = self.worker.latest()
        if res is None or res.generation <= self._seen:
            return
        self._seen = res.generation
        self._result = res
        info, st = self.ui.info, res.stats
        if st.source_kind:
            info.source_kind, info.random_weights = st.source_kind, st.random_weights
        info.banner = random_banner(res.params.source if res.params else "") if st.random_weights else ""
        if res.error is not None:
            info.error = res.error
            return
        info.error = None
        self.first_result = True
        info.stats = st
        if st.synthesized:
            info.synth_ms.append(st.synthesis_ms)
        info.current_ws = res.ws
        if res.image is not None:
            info.render_ms.append(st.render_ms)
            self.texture.upload(res.image)
            self.pictures += 1
            self._image_stamp, self._image_generation = self._next_stamp(), res.generation
            if res.params is not None and not res.params.low_res:
                self._full_image = res.image
        if res.splats is not None and res.splats is not self._gl_scene and self.gl is not None:
            self.gl.set_scene(res.splats)
            self._gl_scene, self._gl_scene_generation = res.splats, res.generation
            self._gl_key = None

    def _next_stamp(self) -> int:
        self._stamp += 1
        return self._stamp

    def use_gl(self) -> bool:
        r = self.ui.render
        if self.gl is None or r.mode not in ("rgb", "alpha"):
            return False
        if r.display != "auto":
            return r.display == "opengl"
        return not self.ui.device.startswith("cuda") and not self.cpu_images()

    def cpu_images(self) -> bool:
        """Whether "auto" shows the render worker's images on a machine without CUDA: its CPU splat rasterizer
        can run (numba is installed, and the worker has not found the kernels failing)."""
        if self._cpu_images is None:
            from importlib.util import find_spec

            self._cpu_images = find_spec("numba") is not None
            if not self._cpu_images:
                self.ui.info.say("numba is not installed: the OpenGL path draws the splats (run make setup)",
                                 "warning")
        error = self.worker.cpu_splats_error
        if error and self._cpu_images:
            self._cpu_images = False
            self.ui.info.say(f"{error}; the OpenGL path draws the splats", "warning")
        return self._cpu_images

    def show(self) -> tuple[int, tuple[int, int]]:
        """Submit what changed and return ``(texture id, (w, h))`` to draw this frame.

        The picture never blanks while the other path catches up: switching to a mode only the worker's images
        show (depth, centres) keeps presenting the last OpenGL picture until the first image arrives, and back
        on the OpenGL path the last image stays until the splats are drawn."""
        ui = self.ui
        low = ui.info.dragging and ui.render.low_res_while_dragging
        tex = self.texture
        image = ((tex.texture_id, tex.size), self._image_stamp, self._image_generation) \
            if tex is not None and tex.size[0] else None
        if self.use_gl():
            ui.info.display_path = "opengl"
            scene_req = replace(render_params(ui, output="scene"), camera=CameraParams(), width=64, height=64,
                                background=(1.0, 1.0, 1.0), mode="rgb", splat_scale=1.0)
            self._submit(scene_req)
            drawn = self._draw_gl(low)
            own = (drawn, self._gl_stamp, self._gl_generation) if drawn[0] else None
            return self._present(own, image)
        ui.info.display_path = "image"
        self._submit(render_params(ui, output="image", low_res=low))
        gl = ((self._display_tex, self._display_size), self._gl_stamp, self._gl_generation) \
            if self._display_tex else None
        return self._present(image if image is not None and (gl is None or image[1] > gl[1]) else None, gl)

    def _present(self, own, previous) -> tuple[int, tuple[int, int]]:
        """This path's picture when it has one, else the other path's last picture (or nothing)."""
        chosen = own or previous
        self.presented = chosen[0] if chosen is not None else (0, (0, 0))
        if chosen is not None:
            self.shown_generation = chosen[2]
        return self.presented

    @property
    def busy(self) -> bool:
        """The view is not yet what the UI asks for."""
        r = self._result
        return r is None or (self.submitted is not None and r.params != self.submitted
                             and r.generation < self.worker.generation)

    def picture_fps(self) -> float | None:
        """While the picture comes from the worker (image path) and a newer one is on its way: the worker's
        pictures per second by its last result (its render alone when it also synthesized); None otherwise
        (see ``FramePacer.frame``)."""
        r = self._result
        if self.ui.info.display_path != "image" or r is None or not self.busy:
            return None
        ms = r.stats.render_ms if r.stats.synthesized else r.stats.total_ms  # a new seed's synthesis: not
        return 1000.0 / ms if ms > 0 else None  # what the next camera-only picture will cost

    def _submit(self, params: RenderParams) -> None:
        if params != self.submitted:
            self.worker.submit(params)
            self.submitted = params

    def _draw_gl(self, low: bool) -> tuple[int, tuple[int, int]]:
        r = self.ui.render
        if self._gl_scene is None:
            return self._display_tex, self._display_size
        w, h = r.width, r.height
        divisor = 1
        if low:  # progressive: the largest size whose last draw kept the frame rate up
            divisor = next((d for d in GL_DRAG_DIVISORS if self._gl_ms.get((d, w, h), 0.0) <= GL_DRAG_BUDGET_MS),
                           GL_DRAG_DIVISORS[-1])
            w, h = max(1, w // divisor), max(1, h // divisor)
        cam = self.ui.camera.camera
        key = (id(self._gl_scene), cam, w, h, r.background, r.splat_scale, r.mode)
        if key != self._gl_key:
            from OpenGL import GL

            t0 = time.perf_counter()
            self._display_tex = self.gl.draw_camera(cam, w, h, r.background, r.splat_scale, r.mode)
            GL.glFinish()
            ms = 1000.0 * (time.perf_counter() - t0)
            self._gl_ms[(divisor, r.width, r.height)] = ms
            info = self.ui.info
            info.render_ms.append(ms)
            info.stats = replace(info.stats, render_ms=ms, width=w, height=h, backend="opengl")
            self._gl_key, self._gl_full, self._display_size = key, not low, (w, h)
            self._gl_stamp, self._gl_generation = self._next_stamp(), self._gl_scene_generation
            self.gl_draws += 1
            self.pictures += 1
        return self._display_tex, self._display_size

    @property
    def gl_background(self):
        """The background colour the OpenGL texture was drawn with (None before the first draw)."""
        return self._gl_key[4] if self._gl_key is not None else None
