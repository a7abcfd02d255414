"""OpenGL splat renderer: the viewer's drawing path on machines without CUDA (OpenGL 3.3 core).

Split of the work, per frame:

1. CPU (torch, no GPU): :func:`core.render_torch.project` projects the scene exactly as ``core.render`` does
   (EWA with the 0.3 px^2 low-pass, opacity-aware 3.33-sigma footprint boxes, near/far and off-screen
   culling); colours come from ``core.sh.sh_to_rgb`` (degree 0, or evaluated for this view's directions).
   :func:`project_view` returns them as numpy arrays.
2. CPU (numpy): :meth:`GLSplatRenderer.upload` sorts the splats back to front by camera depth and writes
   one instance buffer (3 x vec4 per splat).
3. GPU (any GL 3.3 driver, llvmpipe included): one instanced draw of a quad per splat covering its footprint
   box (+1 px margin); the fragment shader evaluates ``alpha = min(0.999, o * exp(-0.5 d^T conic d))`` at
   the pixel centre (``gl_FragCoord``, i.e. ``(i + 0.5, j + 0.5)`` as in ``core.render``), discards below
   1/255 and blends premultiplied "over" (``GL_ONE, GL_ONE_MINUS_SRC_ALPHA``) into an RGBA32F FBO cleared
   to the background colour (alpha channel 0, so it ends as the accumulated opacity ``1 - T``).

Back-to-front blending has no early termination: it differs from the reference only where transmittance
has already fallen below 1e-4, which is invisible.

Image orientation: image row ``y`` (0 = top, OpenCV) is GL framebuffer row ``y`` (GL counts from the
bottom), so ``glReadPixels`` returns rows top first and ImGui, which puts texture ``v = 0`` at the top,
shows the texture upright with the default ``uv0=(0, 0), uv1=(1, 1)``. No flips anywhere.

Usage (inside the caller's current GL 3.3 core context)::

    r = GLSplatRenderer()
    r.set_scene(gaussians)                  # GaussianSet, batch shape []
    r.render(camera, 512, 512, (1, 1, 1))   # Cameras, batch shape []
    rgb = r.read_rgb()                      # uint8 [512, 512, 3]
    imgui.image(imgui.ImTextureRef(r.texture_id), (512, 512))
    r.release()

Torch and ``core`` are imported inside functions, so importing this module is cheap.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from OpenGL import GL

ALPHA_THRESHOLD = 1.0 / 255.0  # same as core.render_torch
MAX_ALPHA = 0.999
QUAD_MARGIN = 1.0  # px added to the footprint box (the shader's 1/255 test is what bounds the splat)
FLOATS_PER_SPLAT = 12  # vec4 (mean.xy, half-size.xy), vec4 (conic a, b, c, opacity), vec4 (rgb, unused)

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
    if (sigma < 0.0 || alpha < %(threshold)r) discard;
    frag = vec4(v_color * alpha, alpha);               // premultiplied; blended with (ONE, ONE_MINUS_SRC_ALPHA)
}
""" % {"max_alpha": MAX_ALPHA, "threshold": ALPHA_THRESHOLD}


@dataclass(frozen=True)
class ProjectedSplats:
    """One view's visible splats (V of them), numpy float32, any order.

    Attributes:
        mean2d: ``[V, 2]`` pixel coordinates (x right, y down). conic: ``[V, 3]`` ``(a, b, c)`` of the inverse
        2D covariance. radius: ``[V, 2]`` footprint half-size (px). depth: ``[V]`` camera z.
        opacity: ``[V]`` activated. color: ``[V, 3]`` RGB (>= 0, not clamped above).
    """

    mean2d: np.ndarray
    conic: np.ndarray
    radius: np.ndarray
    depth: np.ndarray
    opacity: np.ndarray
    color: np.ndarray

    def __len__(self) -> int:
        return int(self.depth.shape[0])


def project_view(gaussians, camera, width: int, height: int) -> ProjectedSplats:
    """Project one scene (``GaussianSet``, batch shape ``[]``) for one camera (``Cameras``, batch shape ``[]``)
    on the CPU with :func:`core.render_torch.project`, the same maths as ``core.render``."""
    import torch

    from core.render_torch import project
    from core.sh import sh_to_rgb

    with torch.no_grad():
        g = gaussians.detach().to("cpu", torch.float32)
        cam = camera.to("cpu", torch.float32) if hasattr(camera, "to") else camera
        viewmat = cam.world_to_camera().reshape(1, 4, 4).float().cpu()
        K = cam.pixel_intrinsics(width, height).reshape(1, 3, 3).float().cpu()
        means = g.means[None]
        s = project(means, g.quats[None], g.scales()[None], g.opacities()[None],
                    torch.zeros(1, dtype=torch.long), viewmat, K, width, height)
        sh = g.sh[s.gid]
        if sh.shape[-2] == 1:
            color = sh_to_rgb(sh, None)
        else:
            campos = torch.linalg.inv(viewmat)[0, :3, 3]
            color = sh_to_rgb(sh, g.means[s.gid] - campos)
        return ProjectedSplats(s.mean2d.numpy(), s.conic.numpy(), s.radius.float().numpy(), s.depth.numpy(),
                               s.opacity.numpy(), color.numpy())


def _compile(kind: int, source: str) -> int:
    shader = GL.glCreateShader(kind)
    GL.glShaderSource(shader, source)
    GL.glCompileShader(shader)
    if not GL.glGetShaderiv(shader, GL.GL_COMPILE_STATUS):
        raise RuntimeError(f"shader compile failed: {GL.glGetShaderInfoLog(shader).decode(errors='replace')}")
    return shader


class GLSplatRenderer:
    """Instanced-quad Gaussian splatting into an offscreen RGBA32F texture (see the module docstring).

    Create, use and :meth:`release` it while the caller's OpenGL 3.3 core context is current. The FBO is
    (re)allocated when :meth:`draw` is asked for a new size. The caller's framebuffer binding, viewport and
    blend state are restored after each draw.
    """

    def __init__(self) -> None:
        vs, fs = _compile(GL.GL_VERTEX_SHADER, _VERTEX_SHADER), _compile(GL.GL_FRAGMENT_SHADER, _FRAGMENT_SHADER)
        self.program = GL.glCreateProgram()
        GL.glAttachShader(self.program, vs)
        GL.glAttachShader(self.program, fs)
        GL.glLinkProgram(self.program)
        if not GL.glGetProgramiv(self.program, GL.GL_LINK_STATUS):
            raise RuntimeError(f"program link failed: {GL.glGetProgramInfoLog(self.program).decode(errors='replace')}")
        GL.glDeleteShader(vs)
        GL.glDeleteShader(fs)
        self._u_size = GL.glGetUniformLocation(self.program, "u_size")
        self.vao = GL.glGenVertexArrays(1)
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
        self.fbo = 0
        self.texture_id = 0  # RGBA32F colour texture of the last draw (for imgui.image)
        self.size = (0, 0)  # (width, height) of the FBO
        self._scene = None

    # ------------------------------------------------------------------ data

    def set_scene(self, gaussians) -> None:
        """Keep one scene (``GaussianSet``, batch shape ``[]``, any device) for :meth:`render`; a CPU float32 copy."""
        import torch

        if gaussians.batch_shape != ():
            raise ValueError(f"one scene expected, got batch shape {list(gaussians.batch_shape)}")
        self._scene = gaussians.detach().to("cpu", torch.float32)

    def upload(self, splats: ProjectedSplats) -> None:
        """Sort ``splats`` back to front by depth and write them to the instance buffer.

        Ties keep the reference's front-to-back order reversed (a stable ascending sort, reversed), so equal
        depths composite in the same order as ``core.render``.
        """
        n = len(splats)
        data = np.zeros((n, FLOATS_PER_SPLAT), np.float32)
        if n:
            order = np.argsort(splats.depth, kind="stable")[::-1]
            data[:, 0:2] = splats.mean2d[order]
            data[:, 2:4] = splats.radius[order] + QUAD_MARGIN
            data[:, 4:7] = splats.conic[order]
            data[:, 7] = splats.opacity[order]
            data[:, 8:11] = splats.color[order]
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, self.vbo)
        if data.nbytes > self._capacity:
            self._capacity = max(data.nbytes, 2 * self._capacity)
            GL.glBufferData(GL.GL_ARRAY_BUFFER, self._capacity, None, GL.GL_DYNAMIC_DRAW)
        if n:
            GL.glBufferSubData(GL.GL_ARRAY_BUFFER, 0, data.nbytes, data)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, 0)
        self.count = n

    # ------------------------------------------------------------------ drawing

    def render(self, camera, width: int, height: int, background: Sequence[float] = (0.0, 0.0, 0.0)) -> int:
        """Project the scene from :meth:`set_scene` for ``camera``, upload and draw; returns the texture id."""
        if self._scene is None:
            self.count = 0
        else:
            self.upload(project_view(self._scene, camera, width, height))
        return self.draw(width, height, background)

    def draw(self, width: int, height: int, background: Sequence[float] = (0.0, 0.0, 0.0)) -> int:
        """Draw the uploaded splats into the ``width x height`` FBO over ``background`` (RGB); returns the
        texture id. Colour ends as ``sum_i alpha_i T_i c_i + T bg``, alpha as ``1 - T``."""
        self._ensure_fbo(width, height)
        prev_fbo = GL.glGetIntegerv(GL.GL_FRAMEBUFFER_BINDING)
        prev_viewport = GL.glGetIntegerv(GL.GL_VIEWPORT)
        blend_was_on = GL.glIsEnabled(GL.GL_BLEND)
        depth_was_on = GL.glIsEnabled(GL.GL_DEPTH_TEST)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self.fbo)
        GL.glViewport(0, 0, width, height)
        r, g, b = (float(v) for v in background)
        GL.glClearColor(r, g, b, 0.0)
        GL.glClear(GL.GL_COLOR_BUFFER_BIT)
        if self.count:
            GL.glDisable(GL.GL_DEPTH_TEST)
            GL.glEnable(GL.GL_BLEND)
            GL.glBlendEquation(GL.GL_FUNC_ADD)
            GL.glBlendFunc(GL.GL_ONE, GL.GL_ONE_MINUS_SRC_ALPHA)
            GL.glUseProgram(self.program)
            GL.glUniform2f(self._u_size, float(width), float(height))
            GL.glBindVertexArray(self.vao)
            GL.glDrawArraysInstanced(GL.GL_TRIANGLE_STRIP, 0, 4, self.count)
            GL.glBindVertexArray(0)
            GL.glUseProgram(0)
        (GL.glEnable if blend_was_on else GL.glDisable)(GL.GL_BLEND)
        (GL.glEnable if depth_was_on else GL.glDisable)(GL.GL_DEPTH_TEST)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, int(prev_fbo))
        GL.glViewport(*(int(v) for v in prev_viewport))
        return self.texture_id

    def read_rgba(self) -> np.ndarray:
        """The last draw as float32 ``[H, W, 4]`` (row 0 = top): RGB with background, alpha = 1 - T."""
        w, h = self.size
        prev_fbo = GL.glGetIntegerv(GL.GL_READ_FRAMEBUFFER_BINDING)
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, self.fbo)
        GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 1)
        raw = GL.glReadPixels(0, 0, w, h, GL.GL_RGBA, GL.GL_FLOAT)
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, int(prev_fbo))
        return np.frombuffer(raw, np.float32).reshape(h, w, 4).copy()

    def read_rgb(self) -> np.ndarray:
        """The last draw as uint8 ``[H, W, 3]`` (row 0 = top), ``round(clip(rgb, 0, 1) * 255)``."""
        return to_uint8(self.read_rgba()[..., :3])

    def _ensure_fbo(self, width: int, height: int) -> None:
        if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
            raise ValueError(f"width and height must be positive ints, got {width!r} x {height!r}")
        if self.size == (width, height) and self.fbo:
            return
        self._delete_fbo()
        self.texture_id = int(GL.glGenTextures(1))
        GL.glBindTexture(GL.GL_TEXTURE_2D, self.texture_id)
        GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, GL.GL_RGBA32F, width, height, 0, GL.GL_RGBA, GL.GL_FLOAT, None)
        for p in (GL.GL_TEXTURE_MIN_FILTER, GL.GL_TEXTURE_MAG_FILTER):
            GL.glTexParameteri(GL.GL_TEXTURE_2D, p, GL.GL_LINEAR)
        for p in (GL.GL_TEXTURE_WRAP_S, GL.GL_TEXTURE_WRAP_T):
            GL.glTexParameteri(GL.GL_TEXTURE_2D, p, GL.GL_CLAMP_TO_EDGE)
        GL.glBindTexture(GL.GL_TEXTURE_2D, 0)
        prev_fbo = GL.glGetIntegerv(GL.GL_FRAMEBUFFER_BINDING)
        self.fbo = int(GL.glGenFramebuffers(1))
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self.fbo)
        GL.glFramebufferTexture2D(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_TEXTURE_2D, self.texture_id, 0)
        status = GL.glCheckFramebufferStatus(GL.GL_FRAMEBUFFER)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, int(prev_fbo))
        if status != GL.GL_FRAMEBUFFER_COMPLETE:
            self._delete_fbo()
            raise RuntimeError(f"framebuffer incomplete (status 0x{int(status):x})")
        self.size = (width, height)

    def _delete_fbo(self) -> None:
        if self.fbo:
            GL.glDeleteFramebuffers(1, [self.fbo])
        if self.texture_id:
            GL.glDeleteTextures(1, [self.texture_id])
        self.fbo, self.texture_id, self.size = 0, 0, (0, 0)

    def release(self) -> None:
        """Free the GL objects (context must be current). Safe to call twice."""
        self._delete_fbo()
        if self.vbo:
            GL.glDeleteBuffers(1, [self.vbo])
            GL.glDeleteVertexArrays(1, [self.vao])
            GL.glDeleteProgram(self.program)
        self.vbo = self.vao = self.program = 0
        self.count = 0


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """float RGB -> uint8 with ``round(clip(x, 0, 1) * 255)``; the conversion used for GL and reference images."""
    return np.rint(np.clip(np.asarray(rgb, np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)
