"""OpenGL splat renderer: the viewer's drawing path on machines without CUDA (OpenGL 3.3 core, llvmpipe included).

Split of the work:

1. Once per scene (render worker thread, numpy/torch): :func:`splat_arrays` turns a ``GaussianSet`` into plain
   arrays: centres, 3D covariances ``R S S^T R^T`` (6 numbers), activated opacities, SH coefficients.
2. Per frame (GUI thread, numpy, a few ms): :meth:`GLSplatRenderer.draw` sorts the splats back to front by camera
   depth, evaluates view-dependent colours when the SH degree is above 0, and writes one instance buffer.
3. Per frame (GL): one instanced draw of a quad per splat. The **vertex shader projects each Gaussian exactly as
   ``core.render_torch.project`` does**: EWA Jacobian with the 1.3x-frustum clamp of ``t``, ``+ 0.3 px^2``
   low-pass, opacity-aware footprint ``ceil(min(3.33, sqrt(2 ln(o / (1/255)))) * sigma)`` per axis, near/far and
   off-screen culling. The fragment shader evaluates ``alpha = min(0.999, o exp(-0.5 d^T conic d))`` at the pixel
   centre, discards below 1/255 and blends premultiplied "over" into an RGBA32F target cleared to the background
   (alpha 0, so alpha ends as the accumulated opacity ``1 - T``). A last pass resolves it into an RGBA8 texture
   (colour, or alpha as grey) for ImGui and screenshots.

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
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from OpenGL import GL

from viewer.state.render import CameraParams

ALPHA_THRESHOLD = 1.0 / 255.0  # the constants of core.render_torch
MAX_ALPHA = 0.999
MAX_EXTEND = 3.33
EPS2D = 0.3
NEAR_PLANE = 0.01
FAR_PLANE = 1e10
QUAD_MARGIN = 1.0  # px added to the footprint box (the shader's 1/255 test is what bounds the splat)
FLOATS_PER_SPLAT = 16  # vec4 (mean, opacity), vec4 (cov xx xy xz yy), vec4 (cov yz zz, -, -), vec4 (rgb, -)
SH_C0 = 0.28209479177387814

_VERTEX_SHADER = """
#version 330 core
layout(location = 0) in vec4 a_mean_op;   // world centre xyz, activated opacity
layout(location = 1) in vec4 a_cov0;      // 3D covariance xx, xy, xz, yy (world units^2)
layout(location = 2) in vec4 a_cov1;      // yz, zz, -, -
layout(location = 3) in vec4 a_color;     // rgb, -
uniform mat4 u_view;        // world-to-camera, OpenCV axes
uniform vec4 u_K;           // fx, fy, cx, cy in pixels
uniform vec2 u_size;        // framebuffer width, height (px)
uniform float u_scale2;     // splat scale squared (multiplies the covariance)
flat out vec2 v_mean;
flat out vec4 v_conic_op;
flat out vec3 v_color;
void cull() { gl_Position = vec4(2.0, 2.0, 2.0, 1.0); v_conic_op = vec4(0.0); }
void main() {
    vec3 mc = (u_view * vec4(a_mean_op.xyz, 1.0)).xyz;
    float z = mc.z;
    float op = a_mean_op.w;
    if (z < %(near)r || z > %(far)r || op < %(thr)r) { cull(); return; }
    float fx = u_K.x, fy = u_K.y, cx = u_K.z, cy = u_K.w;
    float tanx = 0.5 * u_size.x / fx, tany = 0.5 * u_size.y / fy;
    float tx = z * min(max(mc.x / z, -(cx / fx + 0.3 * tanx)), (u_size.x - cx) / fx + 0.3 * tanx);
    float ty = z * min(max(mc.y / z, -(cy / fy + 0.3 * tany)), (u_size.y - cy) / fy + 0.3 * tany);
    mat3 R = mat3(u_view);
    vec3 jr0 = transpose(R) * vec3(fx / z, 0.0, -fx * tx / (z * z));
    vec3 jr1 = transpose(R) * vec3(0.0, fy / z, -fy * ty / (z * z));
    mat3 S = mat3(a_cov0.x, a_cov0.y, a_cov0.z,
                  a_cov0.y, a_cov0.w, a_cov1.x,
                  a_cov0.z, a_cov1.x, a_cov1.y) * u_scale2;
    float a = dot(jr0, S * jr0) + %(eps)r;
    float b = dot(jr0, S * jr1);
    float c = dot(jr1, S * jr1) + %(eps)r;
    float det = a * c - b * b;
    vec2 mean2d = vec2(fx * mc.x / z + cx, fy * mc.y / z + cy);
    float extend = min(sqrt(2.0 * log(op / %(thr)r)), %(max_extend)r);
    vec2 radius = vec2(ceil(extend * sqrt(max(a, 0.0))), ceil(extend * sqrt(max(c, 0.0))));
    if (det <= 0.0 || (radius.x <= 0.0 && radius.y <= 0.0)
        || mean2d.x + radius.x <= 0.0 || mean2d.x - radius.x >= u_size.x
        || mean2d.y + radius.y <= 0.0 || mean2d.y - radius.y >= u_size.y) { cull(); return; }
    vec2 corner = vec2(float(gl_VertexID & 1), float((gl_VertexID >> 1) & 1)) * 2.0 - 1.0;  // strip order
    vec2 p = mean2d + corner * (radius + %(margin)r);   // pixel coordinates, y down = GL row index
    gl_Position = vec4(p / u_size * 2.0 - 1.0, 0.0, 1.0);
    v_mean = mean2d;
    v_conic_op = vec4(c / det, -b / det, a / det, op);
    v_color = a_color.rgb;
}
""" % {"near": NEAR_PLANE, "far": FAR_PLANE, "thr": ALPHA_THRESHOLD, "eps": EPS2D, "max_extend": MAX_EXTEND,
       "margin": QUAD_MARGIN}

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
    if (sigma < 0.0 || alpha < %(thr)r) discard;
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


@dataclass(frozen=True, eq=False)
class SplatArrays:
    """One scene as plain float32 arrays for the OpenGL path (N Gaussians).

    Attributes:
        means: ``[N, 3]`` world-space centres. cov3d: ``[N, 6]`` world covariance ``(xx, xy, xz, yy, yz, zz)``
        in scene units^2 (scale already activated). opacity: ``[N]`` activated, in [0, 1].
        sh: ``[N, K, 3]`` SH coefficients (K = 1, 4, 9 or 16). colors: ``[N, 3]`` degree-0 RGB (``0.5 + C0 *
        sh[:, 0]``, clamped at 0), used as is when K == 1.
    """

    means: np.ndarray
    cov3d: np.ndarray
    opacity: np.ndarray
    sh: np.ndarray
    colors: np.ndarray

    def __len__(self) -> int:
        return int(self.means.shape[0])


def splat_arrays(gaussians) -> SplatArrays:
    """Plain arrays for one scene (``core.gaussians.GaussianSet`` with batch shape ``[]``, any device)."""
    import torch

    from core.render_torch import quat_to_rotmat

    if gaussians.batch_shape != ():
        raise ValueError(f"one scene expected, got batch shape {list(gaussians.batch_shape)}")
    with torch.no_grad():
        g = gaussians.detach().to("cpu", torch.float32)
        M = quat_to_rotmat(g.quats) * g.scales()[:, None, :]  # R S, [N, 3, 3]
        cov = M @ M.transpose(1, 2)
        cov6 = torch.stack([cov[:, 0, 0], cov[:, 0, 1], cov[:, 0, 2], cov[:, 1, 1], cov[:, 1, 2], cov[:, 2, 2]], -1)
        colors = (SH_C0 * g.sh[:, 0, :] + 0.5).clamp_min(0.0)
        return SplatArrays(g.means.numpy().copy(), cov6.numpy(), g.opacities().numpy().copy(),
                           g.sh.numpy().copy(), colors.numpy())


def view_matrix(cam: CameraParams) -> np.ndarray:
    """``[4, 4]`` float64 world-to-camera (OpenCV axes) for ``cam``; matches ``viewer.render_worker.
    camera_from_params`` (``core.camera.look_at`` with world up +y)."""
    y, p = math.radians(cam.yaw_deg), math.radians(max(-89.9, min(89.9, cam.pitch_deg)))
    offset = np.array([math.cos(p) * math.sin(y), math.sin(p), math.cos(p) * math.cos(y)])
    if cam.mode == "orbit":
        target = np.asarray(cam.target, np.float64)
        position = target + cam.radius * offset
    else:
        position = np.asarray(cam.position, np.float64)
        target = position - offset
    forward = target - position
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    w2c = np.eye(4)
    w2c[0, :3], w2c[1, :3], w2c[2, :3] = right, down, forward
    w2c[:3, 3] = -w2c[:3, :3] @ position
    return w2c


def intrinsics(cam: CameraParams, width: int, height: int) -> tuple[float, float, float, float]:
    """``(fx, fy, cx, cy)`` in pixels: square pixels, ``fov_deg`` vertical, principal point at the centre."""
    f = 0.5 * height / math.tan(math.radians(cam.fov_deg) / 2.0)
    return f, f, 0.5 * width, 0.5 * height


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
        self._u = {name: GL.glGetUniformLocation(self.program, name)
                   for name in ("u_view", "u_K", "u_size", "u_scale2")}
        self._u_tex = GL.glGetUniformLocation(self.resolve_program, "u_tex")
        self._u_mode = GL.glGetUniformLocation(self.resolve_program, "u_mode")
        self.vao = GL.glGenVertexArrays(1)
        self.empty_vao = GL.glGenVertexArrays(1)
        self.vbo = GL.glGenBuffers(1)
        GL.glBindVertexArray(self.vao)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, self.vbo)
        stride = FLOATS_PER_SPLAT * 4
        for loc in range(4):
            GL.glEnableVertexAttribArray(loc)
            GL.glVertexAttribPointer(loc, 4, GL.GL_FLOAT, GL.GL_FALSE, stride, ctypes.c_void_p(16 * loc))
            GL.glVertexAttribDivisor(loc, 1)
        GL.glBindVertexArray(0)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, 0)
        self.count = 0  # splats in the instance buffer
        self._capacity = 0  # bytes allocated for it
        self._accum: _Target | None = None
        self._display: _Target | None = None
        self.size = (0, 0)
        self._scene: SplatArrays | None = None
        self._static: np.ndarray | None = None  # [N, 16] float32 in scene order

    @property
    def texture_id(self) -> int:
        """The RGBA8 texture of the last draw (0 before the first)."""
        return self._display.texture if self._display else 0

    # ------------------------------------------------------------------ data

    def set_scene(self, arrays: SplatArrays | None) -> None:
        """Keep ``arrays`` (see :func:`splat_arrays`) for the following draws; None shows only the background."""
        self._scene = arrays
        if arrays is None or len(arrays) == 0:
            self._static = None
            return
        n = len(arrays)
        static = np.zeros((n, FLOATS_PER_SPLAT), np.float32)
        static[:, 0:3] = arrays.means
        static[:, 3] = arrays.opacity
        static[:, 4:10] = arrays.cov3d
        static[:, 12:15] = arrays.colors
        self._static = static

    def _upload(self, view: np.ndarray) -> None:
        static = self._static
        if static is None:
            self.count = 0
            return
        depth = static[:, 0:3] @ view[2, :3].astype(np.float32) + np.float32(view[2, 3])
        order = np.argsort(depth, kind="stable")[::-1]  # back to front; ties as the reference, reversed
        data = static[order]
        if self._scene is not None and self._scene.sh.shape[1] > 1:
            campos = -view[:3, :3].T @ view[:3, 3]
            data[:, 12:15] = _sh_colors(self._scene.sh[order], self._scene.means[order] - campos)
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
        self._upload(view)
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
            GL.glUniformMatrix4fv(self._u["u_view"], 1, GL.GL_TRUE, view.astype(np.float32))
            GL.glUniform4f(self._u["u_K"], *(float(k) for k in K))
            GL.glUniform2f(self._u["u_size"], float(width), float(height))
            GL.glUniform1f(self._u["u_scale2"], float(splat_scale) ** 2)
            GL.glBindVertexArray(self.vao)
            GL.glDrawArraysInstanced(GL.GL_TRIANGLE_STRIP, 0, 4, self.count)
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
        if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
            raise ValueError(f"width and height must be positive ints, got {width!r} x {height!r}")
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


def _sh_colors(sh: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """View-dependent RGB ``[N, 3]`` from SH ``[N, K, 3]`` and directions ``[N, 3]`` (``core.sh.sh_to_rgb``)."""
    import torch

    from core.sh import sh_to_rgb

    with torch.no_grad():
        return sh_to_rgb(torch.from_numpy(sh), torch.from_numpy(dirs.astype(np.float32))).numpy()


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """float RGB -> uint8 with ``round(clip(x, 0, 1) * 255)``; the conversion used for reference images."""
    return np.rint(np.clip(np.asarray(rgb, np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)
