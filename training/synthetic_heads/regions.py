"""Where hair and beard grow on the head surface (soft masks in [0, 1], head units).

Both are functions of the base-surface point ``p [N, 3]`` and its direction ``d [N, 3]`` from the head centre,
so the scalp colour under the hair, the hair shell and the beard agree with each other.
"""

from __future__ import annotations

import numpy as np

from training.synthetic_heads.attributes import HeadAttributes
from training.synthetic_heads.skull import HeadGeometry, mouth_line_y
from training.synthetic_heads.surfaces import smoothstep


def hairline_y(g: HeadGeometry, a: HeadAttributes, u: np.ndarray) -> np.ndarray:
    """``[N]`` height of the hairline at azimuth ``u`` (rad from the front): forehead, temples, above the
    ears, nape. A fringe lowers the front; a buzz cut or bald head keeps it as is (bald has no hair)."""
    front = g.brow_y + (0.028 if a.fringe else 0.072)
    temple = g.eye_y + 0.05
    ear_top = g.ear_y + g.ear_h + 0.006
    nape = -0.1 if a.hair_style not in ("medium", "long", "curly") else -0.125
    knots_u = np.array([0.0, 0.38, 0.85, 1.2, 1.45, 1.75, 2.2, np.pi])
    knots_y = np.array([front, front, temple, g.eye_y + 0.015, ear_top, ear_top, nape, nape])
    ragged = 0.0025 * np.sin(31 * u + 0.5) + 0.0015 * np.sin(57 * u + 2.0)  # an uneven edge
    return np.interp(np.abs(u), knots_u, knots_y) + ragged


def hair_mask(g: HeadGeometry, a: HeadAttributes, p: np.ndarray, d: np.ndarray, soft: float = 0.008) -> np.ndarray:
    """``[N]`` 1 where the scalp is covered by hair, 0 elsewhere, with a soft edge ``soft`` wide."""
    if a.hair_style == "bald":
        return np.zeros(p.shape[0])
    u = np.arctan2(d[:, 0], d[:, 2])
    return smoothstep(-soft, soft, p[:, 1] - hairline_y(g, a, u))


def beard_mask(g: HeadGeometry, a: HeadAttributes, p: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``[N]`` where the beard of style ``a.beard`` covers the face (stubble uses the full-beard area)."""
    if a.beard == "none":
        return np.zeros(p.shape[0])
    x, y = p[:, 0], p[:, 1]
    ax = np.abs(x)
    front = smoothstep(-0.1, 0.15, d[:, 2])
    ml = mouth_line_y(g, x)
    lips = np.exp(-0.5 * ((ax / (g.mouth_half_w + 0.002)) ** 6 + ((y - ml) / 0.0095) ** 6))
    moustache = smoothstep(0.0, 0.004, y - (ml + 0.009)) * smoothstep(0.0, 0.004, (g.nose_tip_y - 0.006) - y)
    moustache *= smoothstep(0.004, 0.0, ax - (g.mouth_half_w + 0.004 - 0.15 * (y - ml)))
    if a.beard == "goatee":
        chin = smoothstep(0.0, 0.004, (ml - 0.01) - y) * smoothstep(0.006, 0.0, ax - 0.024)
        chin *= smoothstep(-0.01, 0.0, y - (g.chin_y - 0.006))
        return np.clip(np.maximum(chin, moustache) * (1 - lips) * front, 0, 1)
    # Full beard (and stubble): below a line from the sideburns across the cheeks, down under the jaw.
    cheek_line = np.interp(ax, [0.0, 0.03, 0.06, 0.1, 0.2],
                           [g.nose_tip_y - 0.008, g.mouth_y + 0.02, g.mouth_y + 0.032, g.eye_y - 0.03, g.eye_y - 0.005])
    below = smoothstep(0.0, 0.006, cheek_line - y)
    sides = smoothstep(-0.45, -0.2, d[:, 2])  # not the back of the neck
    m = np.maximum(below * sides, moustache * front)
    return np.clip(m * (1 - lips), 0, 1)
