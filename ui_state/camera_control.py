"""Mouse and keyboard camera control: pure functions from a :class:`CameraParams` and an input to a new one.

No GUI and no torch here, so every rule is unit-tested. Conventions are those of :mod:`ui_state.render`:
world +y up, the head at the origin facing +z; yaw in degrees about +y (positive moves an orbit camera toward
+x); pitch in degrees, positive = camera above, looking down; screen pixels x right, y down.

Bindings (as in Blender / most DCC viewers; documented in docs/viewer.md):

- Orbit mode: left-drag orbits (turntable), right- or middle-drag pans the look-at point, the wheel zooms
  (radius), W/S dolly in/out, A/D/Q/E pan left/right/down/up, arrow keys orbit.
- Fly mode: left- or right-drag looks around, W/S/A/D move forward/back/left/right, Q/E move down/up along
  world y, the wheel moves forward/back, arrow keys turn.
- Shift makes keyboard motion 4x faster. Keyboard speeds are per second (frame-rate independent).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ui_state.render import DEFAULT_RADIUS, CameraParams

PITCH_LIMIT_DEG = 89.0
MIN_RADIUS = 0.05
FAST = 4.0
WHEEL_FLY_STEP = 0.1  # scene units per wheel notch in fly mode, times move speed


@dataclass(frozen=True, slots=True)
class Keys:
    """Which movement keys are held this frame."""

    forward: bool = False   # W
    back: bool = False      # S
    left: bool = False      # A
    right: bool = False     # D
    down: bool = False      # Q
    up: bool = False        # E
    turn_left: bool = False   # arrow left
    turn_right: bool = False  # arrow right
    turn_up: bool = False     # arrow up
    turn_down: bool = False   # arrow down
    fast: bool = False      # shift

    @property
    def any(self) -> bool:
        return any((self.forward, self.back, self.left, self.right, self.down, self.up, self.turn_left,
                    self.turn_right, self.turn_up, self.turn_down))


def forward(cam: CameraParams) -> tuple[float, float, float]:
    """Unit viewing direction: ``-(cos p sin y, sin p, cos p cos y)`` (the orbit camera looks at its target)."""
    y, p = math.radians(cam.yaw_deg), math.radians(cam.pitch_deg)
    return (-math.cos(p) * math.sin(y), -math.sin(p), -math.cos(p) * math.cos(y))


def basis(cam: CameraParams) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """``(right, up, forward)`` unit vectors of the camera in world space (up = screen up, not OpenCV's y)."""
    f = forward(cam)
    r = _normalize(_cross(f, (0.0, 1.0, 0.0)))
    u = _cross(r, f)
    return r, u, f


def eye(cam: CameraParams) -> tuple[float, float, float]:
    """The camera centre in world space."""
    if cam.mode == "fly":
        return cam.position
    f = forward(cam)
    return tuple(t - cam.radius * fi for t, fi in zip(cam.target, f))  # type: ignore[return-value]


def rotate(cam: CameraParams, dx_px: float, dy_px: float, deg_per_px: float, invert_y: bool = False
           ) -> CameraParams:
    """Mouse drag by ``(dx, dy)`` pixels: orbit around the target (orbit) or look around (fly).

    Dragging right turns the view to the right (yaw decreases); dragging down raises an orbit camera / looks down
    (pitch increases), reversed with ``invert_y``. Pitch stays within +-89 degrees.
    """
    sign = -1.0 if invert_y else 1.0
    yaw = wrap_deg(cam.yaw_deg - dx_px * deg_per_px)
    pitch = _clamp_pitch(cam.pitch_deg + sign * dy_px * deg_per_px)
    return replace(cam, yaw_deg=yaw, pitch_deg=pitch)


def pan(cam: CameraParams, dx_px: float, dy_px: float, viewport_height_px: float) -> CameraParams:
    """Drag the scene by ``(dx, dy)`` pixels in the image plane: the point under the cursor at the target's depth
    follows the mouse. Orbit: moves ``target``; fly: moves ``position``."""
    dist = cam.radius if cam.mode == "orbit" else DEFAULT_RADIUS
    units_per_px = 2.0 * dist * math.tan(math.radians(cam.fov_deg) / 2.0) / max(1.0, viewport_height_px)
    r, u, _ = basis(cam)
    delta = tuple(-dx_px * units_per_px * ri + dy_px * units_per_px * ui for ri, ui in zip(r, u))
    if cam.mode == "orbit":
        return replace(cam, target=_add(cam.target, delta))
    return replace(cam, position=_add(cam.position, delta))


def zoom(cam: CameraParams, notches: float, factor: float, move_units_per_s: float = 1.0) -> CameraParams:
    """Mouse wheel: positive ``notches`` (wheel up / away) zooms in. Orbit: radius divided by ``factor`` per
    notch; fly: moves forward by ``0.1 * move_units_per_s`` per notch."""
    if cam.mode == "orbit":
        return replace(cam, radius=max(MIN_RADIUS, cam.radius / factor ** notches))
    f = forward(cam)
    step = notches * WHEEL_FLY_STEP * move_units_per_s
    return replace(cam, position=_add(cam.position, tuple(step * fi for fi in f)))


def keyboard(cam: CameraParams, keys: Keys, dt_s: float, move_units_per_s: float, turn_deg_per_s: float
             ) -> CameraParams:
    """Apply held keys for ``dt_s`` seconds (see the module docstring for the bindings)."""
    if not keys.any or dt_s <= 0:
        return cam
    k = FAST if keys.fast else 1.0
    move, turn = move_units_per_s * dt_s * k, turn_deg_per_s * dt_s * k
    turn_x = (keys.turn_right - keys.turn_left) * turn
    turn_y = (keys.turn_down - keys.turn_up) * turn
    if turn_x or turn_y:
        cam = replace(cam, yaw_deg=wrap_deg(cam.yaw_deg - turn_x), pitch_deg=_clamp_pitch(cam.pitch_deg + turn_y))
    r, u, f = basis(cam)
    side = (keys.right - keys.left) * move
    vertical = (keys.up - keys.down) * move
    ahead = (keys.forward - keys.back) * move
    if cam.mode == "orbit":
        if ahead:
            cam = replace(cam, radius=max(MIN_RADIUS, cam.radius - ahead))
        delta = tuple(side * ri + vertical * ui for ri, ui in zip(r, u))
        return replace(cam, target=_add(cam.target, delta)) if side or vertical else cam
    delta = tuple(ahead * fi + side * ri for fi, ri in zip(f, r))
    delta = (delta[0], delta[1] + vertical, delta[2])
    return replace(cam, position=_add(cam.position, delta))


def set_mode(cam: CameraParams, mode: str) -> CameraParams:
    """Switch orbit <-> fly without moving the view: fly starts at the orbit eye; orbit targets the point
    ``radius`` ahead of the fly camera."""
    if mode == cam.mode:
        return cam
    if mode == "fly":
        return replace(cam, mode="fly", position=eye(cam))
    if mode != "orbit":
        raise ValueError(f"mode must be 'orbit' or 'fly', got {mode!r}")
    f = forward(cam)
    return replace(cam, mode="orbit", target=_add(cam.position, tuple(cam.radius * fi for fi in f)))


PRESETS: dict[str, tuple[float, float]] = {
    "front": (0.0, 0.0),
    "three-quarter": (40.0, 10.0),
    "left": (90.0, 0.0),
    "right": (-90.0, 0.0),
    "back": (180.0, 0.0),
    "top": (0.0, 80.0),
}
"""Named views as ``(yaw_deg, pitch_deg)``; "left" shows the subject's left side (camera toward +x)."""


def preset(cam: CameraParams, name: str) -> CameraParams:
    """An orbit camera around the current target at a named view (keeps radius and FOV)."""
    if name not in PRESETS:
        raise ValueError(f"unknown view {name!r}; choose from {sorted(PRESETS)}")
    yaw, pitch = PRESETS[name]
    cam = set_mode(cam, "orbit")
    return replace(cam, yaw_deg=yaw, pitch_deg=pitch)


def reset(cam: CameraParams | None = None) -> CameraParams:
    """The default head camera (orbit, frontal, radius 2.7, looking at the origin, the training FOV)."""
    return CameraParams()


def wrap_deg(deg: float) -> float:
    """``deg`` wrapped into [-180, 180)."""
    return (deg + 180.0) % 360.0 - 180.0


def _clamp_pitch(deg: float) -> float:
    return max(-PITCH_LIMIT_DEG, min(PITCH_LIMIT_DEG, deg))


def _cross(a, b) -> tuple[float, float, float]:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _normalize(v) -> tuple[float, float, float]:
    n = math.sqrt(sum(x * x for x in v)) or 1.0
    return (v[0] / n, v[1] / n, v[2] / n)


def _add(a, b) -> tuple[float, float, float]:
    return (float(a[0] + b[0]), float(a[1] + b[1]), float(a[2] + b[2]))
