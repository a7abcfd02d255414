"""OpenGL splat renderer: the viewer's drawing path on machines without CUDA (OpenGL 3.3 core, llvmpipe included).

Split of the work:

1. Once per scene (render worker thread, numpy/torch): :func:`splat_arrays` turns a ``GaussianSet`` into plain
   arrays: centres, 3D covariances ``R S S^T R^T`` (6 numbers), activated opacities, SH coefficients.
2. Per frame (GUI thread, vectorised numpy, a few ms for 20k splats): :func:`project` projects every Gaussian
   **exactly as ``core.render_torch.project`` does** (EWA Jacobian with the 1.3x-frustum clamp of ``t``,
   ``+ 0.3 px^2`` low-pass, opacity-aware footprint ``ceil(min(3.33, sqrt(2 ln(o / (1/255)))) * sigma)`` per axis,
   near/far and off-screen culling), evaluates view-dependent colours when the SH degree is above 0, sorts the
   visible splats back to front and writes one instance buffer. (Projecting in the vertex shader instead runs
   the maths 4x per splat in Mesa's single-threaded vertex stage: about 3x slower on llvmpipe.)
3. Per frame (GL): one instanced draw of a screen-space quad per splat. The fragment shader evaluates
   ``alpha = min(0.999, o exp(-0.5 d^T conic d))`` at the pixel centre, discards below 1/255 and blends
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
FLOATS_PER_SPLAT = 12  # vec4 (mean2d.xy, half-size.xy), vec4 (conic a, b, c, opacity), vec4 (rgb, -)
SH_C0 = 0.28209479177387814

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
        self._u_size = GL.glGetUniformLocation(self.program, "u_size")
        self._u_tex = GL.glGetUniformLocation(self.resolve_program, "u_tex")
        self._u_mode = GL.glGetUniformLocation(self.resolve_program, "u_mode")
        self.vao = GL.glGenVertexArrays(1)
        self.empty_vao = GL.glGenVertexArrays(1)
        self.vbo = GL.glGenBuffers(1)
        GL.glBindVertexArray(self.vao)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, self.vbo)
        stride = FLOATS_PER_SPLAT * 4
        for loc in range(3):
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

    @property
    def texture_id(self) -> int:
        """The RGBA8 texture of the last draw (0 before the first)."""
        return self._display.texture if self._display else 0

    # ------------------------------------------------------------------ data

    def set_scene(self, arrays: SplatArrays | None) -> None:
        """Keep ``arrays`` (see :func:`splat_arrays`) for the following draws; None shows only the background."""
        self._scene = arrays if arrays is not None and len(arrays) else None

    def _upload(self, view: np.ndarray, K: Sequence[float], width: int, height: int, splat_scale: float) -> None:
        if self._scene is None:
            self.count = 0
            return
        data = project(self._scene, view, K, width, height, splat_scale)
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


def project(arrays: SplatArrays, view: np.ndarray, K: Sequence[float], width: int, height: int,
            splat_scale: float = 1.0) -> np.ndarray:
    """The visible splats of ``arrays`` for world-to-camera ``view [4, 4]`` and ``K = (fx, fy, cx, cy)``, as the
    instance buffer ``[V, 12]`` float32 sorted back to front: ``(mean2d.xy, half-size.xy + margin, conic a b c,
    opacity, rgb, 0)``. The maths (float32) of ``core.render_torch.project``."""
    f32 = np.float32
    R = np.asarray(view[:3, :3], f32)
    t = np.asarray(view[:3, 3], f32)
    fx, fy, cx, cy = (f32(k) for k in K)
    mc = arrays.means @ R.T + t
    z = mc[:, 2]
    keep = (z >= NEAR_PLANE) & (z <= FAR_PLANE) & (arrays.opacity >= ALPHA_THRESHOLD)
    idx = np.nonzero(keep)[0]
    mc, z = mc[idx], z[idx]
    x, y = mc[:, 0], mc[:, 1]
    tanx, tany = f32(0.5 * width) / fx, f32(0.5 * height) / fy
    tx = z * np.minimum(np.maximum(x / z, -(cx / fx + f32(0.3) * tanx)), (f32(width) - cx) / fx + f32(0.3) * tanx)
    ty = z * np.minimum(np.maximum(y / z, -(cy / fy + f32(0.3) * tany)), (f32(height) - cy) / fy + f32(0.3) * tany)
    # Rows of J R (J the EWA Jacobian, R the view rotation), then Sigma_2d = (J R) Sigma_3d (J R)^T.
    z2 = z * z
    j0 = (fx / z)[:, None] * R[0] - (fx * tx / z2)[:, None] * R[2]
    j1 = (fy / z)[:, None] * R[1] - (fy * ty / z2)[:, None] * R[2]
    c = arrays.cov3d[idx] * f32(splat_scale * splat_scale)
    xx, xy, xz, yy, yz, zz = (c[:, i] for i in range(6))

    def quad(u, v):  # u^T Sigma v for rows u, v
        return (u[:, 0] * (xx * v[:, 0] + xy * v[:, 1] + xz * v[:, 2])
                + u[:, 1] * (xy * v[:, 0] + yy * v[:, 1] + yz * v[:, 2])
                + u[:, 2] * (xz * v[:, 0] + yz * v[:, 1] + zz * v[:, 2]))

    a = quad(j0, j0) + f32(EPS2D)
    b = quad(j0, j1)
    cc = quad(j1, j1) + f32(EPS2D)
    det = a * cc - b * b
    mx, my = fx * x / z + cx, fy * y / z + cy
    op = arrays.opacity[idx]
    extend = np.minimum(np.sqrt(f32(2.0) * np.log(np.maximum(op, f32(ALPHA_THRESHOLD)) / f32(ALPHA_THRESHOLD))),
                        f32(MAX_EXTEND))
    rx = np.ceil(extend * np.sqrt(np.maximum(a, 0)))
    ry = np.ceil(extend * np.sqrt(np.maximum(cc, 0)))
    ok = (det > 0) & ((rx > 0) | (ry > 0))
    ok &= (mx + rx > 0) & (mx - rx < width) & (my + ry > 0) & (my - ry < height)
    sel = np.nonzero(ok)[0]
    order = sel[np.argsort(z[sel], kind="stable")[::-1]]  # back to front; ties as the reference, reversed
    out = np.empty((len(order), FLOATS_PER_SPLAT), f32)
    inv = f32(1.0) / det[order]
    out[:, 0], out[:, 1] = mx[order], my[order]
    out[:, 2], out[:, 3] = rx[order] + f32(QUAD_MARGIN), ry[order] + f32(QUAD_MARGIN)
    out[:, 4], out[:, 5], out[:, 6] = cc[order] * inv, -b[order] * inv, a[order] * inv
    out[:, 7] = op[order]
    gid = idx[order]
    if arrays.sh.shape[1] > 1:
        campos = -(view[:3, :3].T @ view[:3, 3])
        out[:, 8:11] = _sh_colors(arrays.sh[gid], arrays.means[gid] - campos.astype(f32))
    else:
        out[:, 8:11] = arrays.colors[gid]
    out[:, 11] = 0.0
    return out


def _sh_colors(sh: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """View-dependent RGB ``[N, 3]`` from SH ``[N, K, 3]`` and directions ``[N, 3]`` (``core.sh.sh_to_rgb``)."""
    import torch

    from core.sh import sh_to_rgb

    with torch.no_grad():
        return sh_to_rgb(torch.from_numpy(sh), torch.from_numpy(dirs.astype(np.float32))).numpy()


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """float RGB -> uint8 with ``round(clip(x, 0, 1) * 255)``; the conversion used for reference images."""
    return np.rint(np.clip(np.asarray(rgb, np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)
