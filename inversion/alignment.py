"""FFHQ-style alignment: a similarity transform (rotation, uniform scale, shift) that puts the face where the
model's training images have it.

The FFHQ rule builds an oriented square ("quad") from the five landmarks:

    eye_avg = mean of the eyes, mouth_avg = mean of the mouth corners
    eye_to_eye = right eye - left eye, eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - rot90(eye_to_mouth), normalised, times max(2 |eye_to_eye|, 1.8 |eye_to_mouth|)
    centre = eye_avg + 0.1 eye_to_mouth

The same rule applied to the framing's template (:meth:`inversion.framing.FaceFraming.template`) gives the
quad the face must land on, so the transform is the one similarity that maps the photo's quad onto the
template's: rotation and scale from ``x``, shift from ``centre``. Roll is removed (eyes level up to the
head's yaw) and the face gets the training images' size and position.

Coordinates are continuous pixels, x right, y down, origin at the top-left corner of the image (pixel
``(i, j)`` covers ``[i, i+1] x [j, j+1]``). Transforms are ``[2, 3]`` float64 matrices ``A`` acting as
``p_aligned = A[:, :2] @ p_photo + A[:, 2]``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def ffhq_quad(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``landmarks [5, 2]`` -> ``(centre [2], x [2])``: the quad's centre and half-side vector (see above)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    eye_avg = (lm[0] + lm[1]) / 2
    mouth_avg = (lm[3] + lm[4]) / 2
    eye_to_eye = lm[1] - lm[0]
    eye_to_mouth = mouth_avg - eye_avg
    # eye_to_eye - flipud(eye_to_mouth) * [-1, 1]
    x = np.array([eye_to_eye[0] + eye_to_mouth[1], eye_to_eye[1] - eye_to_mouth[0]])
    norm = np.hypot(*x)
    if norm < 1e-9:
        raise ValueError("degenerate landmarks: the eyes and the mouth coincide")
    x = x / norm * max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    return eye_avg + eye_to_mouth * 0.1, x


def alignment_transform(landmarks: np.ndarray, template: np.ndarray, resolution: int) -> np.ndarray:
    """``[2, 3]`` similarity mapping photo pixels to aligned pixels.

    Args:
        landmarks: ``[5, 2]`` photo pixels (order of :mod:`inversion.framing`).
        template: ``[5, 2]`` normalised [0, 1] template positions (``FaceFraming.template()``).
        resolution: side of the aligned square image in pixels.
    """
    c_src, x_src = ffhq_quad(landmarks)
    c_dst, x_dst = ffhq_quad(np.asarray(template, dtype=np.float64) * resolution)
    # Complex ratio x_dst / x_src: scale * rotation.
    z = complex(*x_dst) / complex(*x_src)
    M = np.array([[z.real, -z.imag], [z.imag, z.real]])
    return np.concatenate([M, (c_dst - M @ c_src)[:, None]], axis=1)


def apply_transform(A: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``points [P, 2]`` -> ``A`` applied, ``[P, 2]``."""
    return np.asarray(points, dtype=np.float64) @ A[:, :2].T + A[:, 2]


def transform_scale(A: np.ndarray) -> float:
    """The uniform scale of a similarity (aligned px per photo px)."""
    return float(np.sqrt(abs(np.linalg.det(A[:, :2]))))


def warp_photo(pixels: np.ndarray, A: np.ndarray, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Resample ``pixels uint8 [H, W, 3]`` into the aligned ``resolution`` square.

    Shrinking by more than 2x first resizes the photo with a Lanczos filter (no aliasing); then bilinear
    sampling. Outside the photo is white.

    Returns:
        ``image uint8 [R, R, 3]`` and ``inside float32 [R, R]`` (1 where the aligned pixel came from the photo,
        0 outside, fractional at the border).
    """
    h, w = pixels.shape[:2]
    s = transform_scale(A)
    A = A.copy()
    if s < 0.5:
        r = min(1.0, 2.0 * s)
        nw, nh = max(1, round(w * r)), max(1, round(h * r))
        pixels = np.asarray(Image.fromarray(pixels).resize((nw, nh), Image.LANCZOS))
        A[:, :2] = A[:, :2] @ np.diag([w / nw, h / nh])
        h, w = nh, nw
    Ainv = np.linalg.inv(np.vstack([A, [0.0, 0.0, 1.0]]))[:2]
    ij = (np.arange(resolution) + 0.5)
    gx, gy = np.meshgrid(ij, ij, indexing="xy")
    src = apply_transform(Ainv, np.stack([gx.ravel(), gy.ravel()], -1)).reshape(resolution, resolution, 2)
    grid = torch.from_numpy(np.stack([src[..., 0] / w * 2 - 1, src[..., 1] / h * 2 - 1], -1)).float()[None]
    img = torch.from_numpy(np.array(pixels, dtype=np.uint8)).permute(2, 0, 1)[None].float() / 255.0
    ones = torch.ones_like(img[:, :1])
    out = F.grid_sample(torch.cat([img - 1.0, ones], 1), grid, mode="bilinear", padding_mode="zeros",
                        align_corners=False)[0]
    rgb = (out[:3] + 1.0).clamp(0, 1).permute(1, 2, 0).numpy()
    return (rgb * 255.0 + 0.5).astype(np.uint8), out[3].clamp(0, 1).numpy().astype(np.float32)
