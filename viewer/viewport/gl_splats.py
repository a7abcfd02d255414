"""OpenGL splat renderer: the viewer's drawing path on machines without CUDA (OpenGL 3.3 core, llvmpipe included).

Split of the work:

1. Once per scene (render worker thread, numpy/torch): :func:`splat_arrays` turns a ``GaussianSet`` into plain
   arrays: centres, 3D covariances ``R S S^T R^T`` (6 numbers), activated opacities, SH coefficients.
2. Per frame (GUI thread, vectorised numpy, a few ms for 20k splats): :func:`project` projects every Gaussian
   **exactly as ``core.render_torch.project`` does** (EWA Jacobian with the 1.3x-frustum clamp of ``t``,
   ``+ 0.3 px^2`` low-pass, opacity-aware footprint ``ceil(min(3.33, sqrt(2 ln(o / (1/255)))) * sigma)`` per axis,
   near/far and off-screen culling), evaluates view-dependent colours when the SH degree is above 0, sorts the
   visible splats back to front and writes one instance buffer. Each quad is the exact box of the splat's
   ``alpha >= 1/255`` ellipse (``extend * sigma`` per axis + 1/64 px; the reference's integer box only culls),
   since every fragment outside that ellipse adds nothing. (Projecting in the vertex shader instead runs
   the maths 4x per splat in Mesa's single-threaded vertex stage: about 3x slower on llvmpipe.)
3. Per frame (GL): instanced draws of a screen-space quad per splat, in :data:`DRAW_CHUNKS` consecutive runs of
   the sorted list with a ``glFlush`` after each, so that llvmpipe's raster threads fill one run while the
   calling thread shades and bins the vertices of the next (same order, same pixels). The fragment shader evaluates
   ``alpha = min(0.999, o exp(-0.5 d^T conic d))`` at the pixel centre, zero below 1/255 (no contribution), and blends
   premultiplied "over" into an RGBA32F target cleared to the background (alpha 0, so alpha ends as the
   accumulated opacity ``1 - T``). A last pass resolves it into an RGBA8 texture (colour, or alpha as grey) for
   ImGui and screenshots.

Back-to-front blending has no early termination; it differs from the reference only where transmittance has
already fallen below 1e-4. Float32 shader maths vs torch: tests/viewer/test_gl_splats.py measures the PSNR.

Image orientation: image row ``y`` (0 = top, OpenCV) is GL framebuffer row ``y`` (GL counts from the bottom),
so ``glReadPixels`` returns rows top first and ImGui, which puts texture ``v = 0`` at the top, shows the texture
upright with the default ``uv0=(0, 0), uv1=(1, 1)``. No flips anywhere.

Usage (inside the caller's current GL 3.3 core context)::

    r = GLSplatRenderer()
    r.set_scene(splat_arrays(gaussians))          # GaussianSet, batch shape []
    tex = r.draw(view, intrinsics, 512, 512, background=(1, 1, 1))
    imgui.image(imgui.ImTextureRef(tex), (512, 512))
    rgb = r.read_rgb()                            # uint8 [512, 512, 3]
    r.release()
"""

from __future__ import annotations

import ctypes
from typing import Sequence

import numpy as np
from OpenGL import GL

from ui_state.render import CameraParams
from viewer.viewport.splats import (  # noqa: F401  (re-exported for callers of the GL path)
    ALPHA_THRESHOLD, FLOATS_PER_SPLAT, MAX_ALPHA, SplatArrays, check_size, intrinsics, project, splat_arrays,
    to_uint8, view_matrix,
)

DRAW_CHUNKS = 4  # runs of the sorted splats per draw, each flushed (llvmpipe, 2 cores: ~6 % faster than one)

_VERTEX_SHADER = """
#version 330 core
layout(location = 0) in vec4 a_mean_half;    // pixel centre x, y; box half-size x, y (px)
layout(location = 1) in vec4 a_conic_op;     // conic a, b, c (px^-2); opacity
layout(location = 2) in vec4 a_color;        // rgb, unused
uniform vec2 u_size;                          // framebuffer width, height (px)
flat out vec2 v_mean;
flat out vec4 v_conic_op;
flat out vec3 v_color;
void main() {
    vec2 corner = vec2(float(gl_VertexID & 1), float((gl_VertexID >> 1) & 1)) * 2.0 - 1.0;  // strip order
    vec2 p = a_mean_half.xy + corner * a_mean_half.zw;   // pixel coordinates, y down = GL row index
    gl_Position = vec4(p / u_size * 2.0 - 1.0, 0.0, 1.0);
    v_mean = a_mean_half.xy;
    v_conic_op = a_conic_op;
    v_color = a_color.rgb;
}
"""

_FRAGMENT_SHADER = """
#version 330 core
flat in vec2 v_mean;
flat in vec4 v_conic_op;
flat in vec3 v_color;
out vec4 frag;
void main() {
    vec2 d = gl_FragCoord.xy - v_mean;                 // pixel centre (i + 0.5, j + 0.5) minus splat centre
    float sigma = 0.5 * (v_conic_op.x * d.x * d.x + v_conic_op.z * d.y * d.y) + v_conic_op.y * d.x * d.y;
    float alpha = min(%(max_alpha)r, v_conic_op.w * exp(-sigma));
    // Below the threshold the splat adds exactly nothing: (0, 0) blended "over" leaves the target unchanged.
    // (Writing zero instead of discarding is ~13%% faster on llvmpipe and gives the same pixels.)
    alpha = (sigma < 0.0 || alpha < %(thr)r) ? 0.0 : alpha;
    frag = vec4(v_color * alpha, alpha);               // premultiplied; blended with (ONE, ONE_MINUS_SRC_ALPHA)
}
""" % {"max_alpha": MAX_ALPHA, "thr": ALPHA_THRESHOLD}

_RESOLVE_VS = """
#version 330 core
out vec2 v_uv;
void main() {
    vec2 p = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));   // full-screen triangle
    v_uv = p;
    gl_Position = vec4(p * 2.0 - 1.0, 0.0, 1.0);
}
"""

_RESOLVE_FS = """
#version 330 core
in vec2 v_uv;
uniform sampler2D u_tex;
uniform int u_mode;   // 0: colour, 1: alpha as grey
out vec4 frag;
void main() {
    vec4 c = texelFetch(u_tex, ivec2(gl_FragCoord.xy), 0);
    vec3 rgb = u_mode == 1 ? vec3(c.a) : c.rgb;
    frag = vec4(clamp(rgb, 0.0, 1.0), 1.0);
}
"""


def _compile(kind: int, source: str) -> int:
    shader = GL.glCreateShader(kind)
    GL.glShaderSource(shader, source)
    GL.glCompileShader(shader)
    if not GL.glGetShaderiv(shader, GL.GL_COMPILE_STATUS):
        raise RuntimeError(f"shader compile failed: {GL.glGetShaderInfoLog(shader).decode(errors='replace')}")
    return shader


def _program(vs_source: str, fs_source: str) -> int:
    vs, fs = _compile(GL.GL_VERTEX_SHADER, vs_source), _compile(GL.GL_FRAGMENT_SHADER, fs_source)
    program = GL.glCreateProgram()
    GL.glAttachShader(program, vs)
    GL.glAttachShader(program, fs)
    GL.glLinkProgram(program)
    if not GL.glGetProgramiv(program, GL.GL_LINK_STATUS):
        raise RuntimeError(f"program link failed: {GL.glGetProgramInfoLog(program).decode(errors='replace')}")
    GL.glDeleteShader(vs)
    GL.glDeleteShader(fs)
    return program


class _Target:
    """A texture with its framebuffer."""

    def __init__(self, internal_format: int, fmt: int, kind: int, width: int, height: int) -> None:
        self.texture = int(GL.glGenTextures(1))
        GL.glBindTexture(GL.GL_TEXTURE_2D, self.texture)
        GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, internal_format, width, height, 0, fmt, kind, None)
        for p in (GL.GL_TEXTURE_MIN_FILTER, GL.GL_TEXTURE_MAG_FILTER):
            GL.glTexParameteri(GL.GL_TEXTURE_2D, p, GL.GL_LINEAR)
        for p in (GL.GL_TEXTURE_WRAP_S, GL.GL_TEXTURE_WRAP_T):
            GL.glTexParameteri(GL.GL_TEXTURE_2D, p, GL.GL_CLAMP_TO_EDGE)
        GL.glBindTexture(GL.GL_TEXTURE_2D, 0)
        prev = GL.glGetIntegerv(GL.GL_FRAMEBUFFER_BINDING)
        self.fbo = int(GL.glGenFramebuffers(1))
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self.fbo)
        GL.glFramebufferTexture2D(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_TEXTURE_2D, self.texture, 0)
        status = GL.glCheckFramebufferStatus(GL.GL_FRAMEBUFFER)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, int(prev))
        if status != GL.GL_FRAMEBUFFER_COMPLETE:
            self.release()
            raise RuntimeError(f"framebuffer incomplete (status 0x{int(status):x})")

    def release(self) -> None:
        if self.fbo:
            GL.glDeleteFramebuffers(1, [self.fbo])
        if self.texture:
            GL.glDeleteTextures(1, [self.texture])
        self.fbo = self.texture = 0


class GLSplatRenderer:
    """Instanced-quad Gaussian splatting into an offscreen texture (see the module docstring).

    Create, use and :meth:`release` it while the caller's OpenGL 3.3 core context is current. The targets are
    (re)allocated when :meth:`draw` is asked for a new size. The caller's framebuffer binding, viewport and
    blend state are restored after each draw.
    """

    def __init__(self) -> None:
        self.program = _program(_VERTEX_SHADER, _FRAGMENT_SHADER)
        self.resolve_program = _program(_RESOLVE_VS, _RESOLVE_FS)
        self._u_size = GL.glGetUniformLocation(self.program, "u_size")
        self._u_tex = GL.glGetUniformLocation(self.resolve_program, "u_tex")
        self._u_mode = GL.glGetUniformLocation(self.resolve_program, "u_mode")
        self.vao = GL.glGenVertexArrays(1)
        self.empty_vao = GL.glGenVertexArrays(1)
        self.vbo = GL.glGenBuffers(1)
        GL.glBindVertexArray(self.vao)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, self.vbo)
        for loc in range(3):
            GL.glEnableVertexAttribArray(loc)
            GL.glVertexAttribDivisor(loc, 1)
        self._point_attributes_at(0)
        GL.glBindVertexArray(0)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, 0)
        self.count = 0  # splats in the instance buffer
        self._capacity = 0  # bytes allocated for it
        self._accum: _Target | None = None
        self._display: _Target | None = None
        self.size = (0, 0)
        self._scene: SplatArrays | None = None

    def _point_attributes_at(self, first: int) -> None:
        """Point the instance attributes at splat ``first`` of the buffer (the VAO and VBO bound): OpenGL 3.3
        has no base instance, so every run of the list, the first included, starts by moving the pointers."""
        stride = FLOATS_PER_SPLAT * 4
        for loc in range(3):
            GL.glVertexAttribPointer(loc, 4, GL.GL_FLOAT, GL.GL_FALSE, stride,
                                     ctypes.c_void_p(first * stride + 16 * loc))

    @property
    def texture_id(self) -> int:
        """The RGBA8 texture of the last draw (0 before the first)."""
        return self._display.texture if self._display else 0

    # ------------------------------------------------------------------ data

    def set_scene(self, arrays: SplatArrays | None) -> None:
        """Keep ``arrays`` (see :func:`splat_arrays`) for the following draws; None shows only the background."""
        self._scene = arrays if arrays is not None and len(arrays) else None

    def _instances(self, scene: SplatArrays, view: np.ndarray, K: Sequence[float], width: int, height: int,
                   splat_scale: float) -> np.ndarray:
        """The per-splat instance data of one draw, sorted (:func:`project`); bench.gl_draw overrides it to
        draw the same splats as one-pixel quads (the draw without the fill)."""
        return project(scene, view, K, width, height, splat_scale)

    def _upload(self, view: np.ndarray, K: Sequence[float], width: int, height: int, splat_scale: float) -> None:
        if self._scene is None:
            self.count = 0
            return
        data = self._instances(self._scene, view, K, width, height, splat_scale)
        if len(data):
            GL.glBindBuffer(GL.GL_ARRAY_BUFFER, self.vbo)
            if data.nbytes > self._capacity:
                self._capacity = max(data.nbytes, 2 * self._capacity)
                GL.glBufferData(GL.GL_ARRAY_BUFFER, self._capacity, None, GL.GL_DYNAMIC_DRAW)
            GL.glBufferSubData(GL.GL_ARRAY_BUFFER, 0, data.nbytes, data)
            GL.glBindBuffer(GL.GL_ARRAY_BUFFER, 0)
        self.count = len(data)

    # ------------------------------------------------------------------ drawing

    def draw(self, view: np.ndarray, K: Sequence[float], width: int, height: int,
             background: Sequence[float] = (0.0, 0.0, 0.0), splat_scale: float = 1.0, mode: str = "rgb") -> int:
        """Draw the scene for world-to-camera ``view [4, 4]`` and pixel intrinsics ``K = (fx, fy, cx, cy)`` into
        a ``width x height`` image over ``background`` (RGB); ``mode`` "rgb" or "alpha". Returns the RGBA8
        texture id. Colour ends as ``sum_i alpha_i T_i c_i + T bg``, alpha as ``1 - T``."""
        if mode not in ("rgb", "alpha"):
            raise ValueError(f"the OpenGL path draws modes 'rgb' and 'alpha', not {mode!r}")
        self._ensure_targets(width, height)
        view = np.asarray(view, np.float64)
        self._upload(view, K, width, height, splat_scale)
        prev_fbo = GL.glGetIntegerv(GL.GL_FRAMEBUFFER_BINDING)
        prev_viewport = GL.glGetIntegerv(GL.GL_VIEWPORT)
        blend_was_on = GL.glIsEnabled(GL.GL_BLEND)
        depth_was_on = GL.glIsEnabled(GL.GL_DEPTH_TEST)
        scissor_was_on = GL.glIsEnabled(GL.GL_SCISSOR_TEST)
        GL.glDisable(GL.GL_SCISSOR_TEST)
        GL.glDisable(GL.GL_DEPTH_TEST)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self._accum.fbo)
        GL.glViewport(0, 0, width, height)
        r, g, b = (float(v) for v in background)
        GL.glClearColor(r, g, b, 0.0)
        GL.glClear(GL.GL_COLOR_BUFFER_BIT)
        if self.count:
            GL.glEnable(GL.GL_BLEND)
            GL.glBlendEquation(GL.GL_FUNC_ADD)
            GL.glBlendFunc(GL.GL_ONE, GL.GL_ONE_MINUS_SRC_ALPHA)
            GL.glUseProgram(self.program)
            GL.glUniform2f(self._u_size, float(width), float(height))
            GL.glBindVertexArray(self.vao)
            GL.glBindBuffer(GL.GL_ARRAY_BUFFER, self.vbo)
            bounds = np.linspace(0, self.count, min(DRAW_CHUNKS, self.count) + 1).astype(int)
            for first, end in zip(bounds[:-1], bounds[1:]):
                self._point_attributes_at(int(first))
                GL.glDrawArraysInstanced(GL.GL_TRIANGLE_STRIP, 0, 4, int(end - first))
                GL.glFlush()
            GL.glBindBuffer(GL.GL_ARRAY_BUFFER, 0)
        GL.glDisable(GL.GL_BLEND)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self._display.fbo)
        GL.glUseProgram(self.resolve_program)
        GL.glActiveTexture(GL.GL_TEXTURE0)
        GL.glBindTexture(GL.GL_TEXTURE_2D, self._accum.texture)
        GL.glUniform1i(self._u_tex, 0)
        GL.glUniform1i(self._u_mode, 1 if mode == "alpha" else 0)
        GL.glBindVertexArray(self.empty_vao)
        GL.glDrawArrays(GL.GL_TRIANGLES, 0, 3)
        GL.glBindVertexArray(0)
        GL.glBindTexture(GL.GL_TEXTURE_2D, 0)
        GL.glUseProgram(0)
        (GL.glEnable if blend_was_on else GL.glDisable)(GL.GL_BLEND)
        (GL.glEnable if depth_was_on else GL.glDisable)(GL.GL_DEPTH_TEST)
        (GL.glEnable if scissor_was_on else GL.glDisable)(GL.GL_SCISSOR_TEST)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, int(prev_fbo))
        GL.glViewport(*(int(v) for v in prev_viewport))
        return self.texture_id

    def draw_camera(self, cam: CameraParams, width: int, height: int, background: Sequence[float] = (0, 0, 0),
                    splat_scale: float = 1.0, mode: str = "rgb") -> int:
        """:meth:`draw` for a :class:`CameraParams`."""
        return self.draw(view_matrix(cam), intrinsics(cam, width, height), width, height, background,
                         splat_scale, mode)

    def read_rgba(self) -> np.ndarray:
        """The last draw before resolving, float32 ``[H, W, 4]`` (row 0 = top): RGB over the background and
        alpha = 1 - T."""
        return self._read(self._accum.fbo, GL.GL_FLOAT, np.float32, 4)

    def read_rgb(self) -> np.ndarray:
        """The last draw as shown, uint8 ``[H, W, 3]`` (row 0 = top)."""
        return self._read(self._display.fbo, GL.GL_UNSIGNED_BYTE, np.uint8, 4)[..., :3].copy()

    def _read(self, fbo: int, kind: int, dtype, channels: int) -> np.ndarray:
        w, h = self.size
        prev_fbo = GL.glGetIntegerv(GL.GL_READ_FRAMEBUFFER_BINDING)
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, fbo)
        GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 1)
        raw = GL.glReadPixels(0, 0, w, h, GL.GL_RGBA, kind)
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, int(prev_fbo))
        return np.frombuffer(raw, dtype).reshape(h, w, channels).copy()

    def _ensure_targets(self, width: int, height: int) -> None:
        check_size(width, height)
        if self.size == (width, height) and self._accum is not None:
            return
        self._release_targets()
        self._accum = _Target(GL.GL_RGBA32F, GL.GL_RGBA, GL.GL_FLOAT, width, height)
        self._display = _Target(GL.GL_RGBA8, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE, width, height)
        self.size = (width, height)

    def _release_targets(self) -> None:
        for t in (self._accum, self._display):
            if t is not None:
                t.release()
        self._accum = self._display = None
        self.size = (0, 0)

    def release(self) -> None:
        """Free the GL objects (context must be current). Safe to call twice."""
        self._release_targets()
        if self.vbo:
            GL.glDeleteBuffers(1, [self.vbo])
            GL.glDeleteVertexArrays(2, [self.vao, self.empty_vao])
            GL.glDeleteProgram(self.program)
            GL.glDeleteProgram(self.resolve_program)
        self.vbo = self.vao = self.empty_vao = self.program = self.resolve_program = 0
        self.count = 0
