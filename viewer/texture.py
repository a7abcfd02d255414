"""An RGB image shown through ImGui: a GL texture that is re-specified only when the size changes."""

from __future__ import annotations

import numpy as np
from OpenGL import GL


def clear_gl_errors() -> int:
    """Drain OpenGL's error flags (GUI thread) and return how many there were. C++ widgets that make their own GL
    calls (ImFileDialog's icon textures) can leave one set, and PyOpenGL would blame it on our next call."""
    n = 0
    while GL.glGetError() != GL.GL_NO_ERROR and n < 16:
        n += 1
    return n


class ImageTexture:
    """Upload ``uint8 [H, W, 3]`` images (row 0 = top) into one RGBA8 texture (alpha 1). GL context required."""

    def __init__(self) -> None:
        self.texture_id = int(GL.glGenTextures(1))
        self.size = (0, 0)
        GL.glBindTexture(GL.GL_TEXTURE_2D, self.texture_id)
        for p in (GL.GL_TEXTURE_MIN_FILTER, GL.GL_TEXTURE_MAG_FILTER):
            GL.glTexParameteri(GL.GL_TEXTURE_2D, p, GL.GL_LINEAR)
        for p in (GL.GL_TEXTURE_WRAP_S, GL.GL_TEXTURE_WRAP_T):
            GL.glTexParameteri(GL.GL_TEXTURE_2D, p, GL.GL_CLAMP_TO_EDGE)
        GL.glBindTexture(GL.GL_TEXTURE_2D, 0)

    def upload(self, image: np.ndarray) -> int:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected uint8 [H, W, 3], got {image.dtype} {list(image.shape)}")
        h, w = image.shape[:2]
        data = np.ascontiguousarray(image)
        GL.glBindTexture(GL.GL_TEXTURE_2D, self.texture_id)
        GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, 1)
        if (w, h) != self.size:
            GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, GL.GL_RGBA8, w, h, 0, GL.GL_RGB, GL.GL_UNSIGNED_BYTE, data)
            self.size = (w, h)
        else:
            GL.glTexSubImage2D(GL.GL_TEXTURE_2D, 0, 0, 0, w, h, GL.GL_RGB, GL.GL_UNSIGNED_BYTE, data)
        GL.glBindTexture(GL.GL_TEXTURE_2D, 0)
        return self.texture_id

    def release(self) -> None:
        if self.texture_id:
            GL.glDeleteTextures(1, [self.texture_id])
        self.texture_id, self.size = 0, (0, 0)
