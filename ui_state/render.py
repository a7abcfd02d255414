"""The viewer's typed render requests and results: pure, frozen, slotted dataclasses (docs/architecture.md,
"The path of one render request").

Like all of ``ui_state`` this imports the standard library and numpy only (never torch, never ``core``), so
widgets can build requests without touching the GPU.

Conventions (the same as ``core.camera``): world +y up, the head centred at the origin inside the unit cube and
facing +z; camera axes OpenCV (x right, y down, z forward). Angles here are in **degrees** (the core takes
radians); distances in scene units (the default head camera sits 2.7 from the origin).

Every field is a scalar, a string or a tuple, so ``==`` and ``hash`` are cheap and CPU-only and a misspelled
field fails at construction: ``RenderParams(width=256, camera=CameraParams(yaw_deg=20.0))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

CameraMode = Literal["orbit", "fly"]
LatentSpace = Literal["z", "w"]
ImageMode = Literal["rgb", "alpha", "depth", "centres"]
RenderOutputKind = Literal["image", "scene"]
EditValue = float | int | bool | str | tuple[float, ...]

DEFAULT_RADIUS = 2.7
DEFAULT_FOV_DEG = math.degrees(2.0 * math.atan(0.5 / 4.2647))  # core.camera.DEFAULT_FOCAL, ~13.37 deg


def _check_choice(name: str, value: object, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def _check_vec(name: str, value: object, n: int) -> None:
    if not isinstance(value, tuple) or len(value) != n:
        raise ValueError(f"{name} must be a tuple of {n} numbers, got {value!r}")


@dataclass(frozen=True, slots=True)
class CameraParams:
    """Where the virtual camera is.

    Attributes:
        mode: ``"orbit"``: on a sphere of ``radius`` around ``target`` at ``yaw_deg``/``pitch_deg``, looking at
            ``target``. ``"fly"``: at ``position``, looking the way an orbit camera with the same yaw/pitch
            would look (forward = -(cos p sin y, sin p, cos p cos y)); ``radius`` and ``target`` are unused.
        yaw_deg: degrees about +y; positive moves an orbit camera toward +x (the subject's left). 0 = frontal.
        pitch_deg: degrees of elevation, kept strictly inside (-90, 90) by the renderer; positive looks down.
        radius: orbit distance to ``target``, scene units, > 0.
        target: ``(x, y, z)`` world-space look-at point of the orbit.
        fov_deg: vertical field of view in degrees (0, 180); pixels are square, so wide images see more.
        position: ``(x, y, z)`` world-space camera centre in fly mode.
    """

    mode: CameraMode = "orbit"
    yaw_deg: float = 0.0
    pitch_deg: float = 0.0
    radius: float = DEFAULT_RADIUS
    target: tuple[float, float, float] = (0.0, 0.0, 0.0)
    fov_deg: float = DEFAULT_FOV_DEG
    position: tuple[float, float, float] = (0.0, 0.0, DEFAULT_RADIUS)

    def __post_init__(self) -> None:
        _check_choice("mode", self.mode, ("orbit", "fly"))
        _check_vec("target", self.target, 3)
        _check_vec("position", self.position, 3)
        if not self.radius > 0:
            raise ValueError(f"radius must be > 0, got {self.radius!r}")
        if not 0 < self.fov_deg < 180:
            raise ValueError(f"fov_deg must be in (0, 180), got {self.fov_deg!r}")


@dataclass(frozen=True, slots=True)
class LatentParams:
    """Which head a generator source makes (ignored for ``.ply`` scenes).

    Attributes:
        seed: z = standard normal ``[1, z_dim]`` from a CPU ``torch.Generator`` seeded with ``seed``.
        psi: truncation toward ``w_avg``: ``w_avg + psi (w - w_avg)``; 1 = none.
        cutoff: truncate only the first ``cutoff`` ws (None = all).
        space: the space of ``latent``: ``"z"`` (mapped, then truncated by psi/cutoff) or ``"w"`` (used as is).
        latent: an explicit latent replacing the seed, flattened: ``z_dim`` numbers for ``"z"``; ``w_dim`` or
            ``num_ws * w_dim`` numbers for ``"w"``. None = use ``seed``.
        grid_xy: the drag plot's point, in grid cells ``[0, grid_size - 1]^2`` (None = plain ``seed``): the
            latent is the bilinear blend of the 4 surrounding grid latents, grid cell ``(i, j)`` having seed
            ``seed + i + j * grid_size``; blended in ``space`` (z before mapping, or w after truncation).
        grid_size: cells per side of that grid.

    (The rule lives in ``core.latent``: ``seed_ws``, ``map_z``, ``ws_from_values``, ``seed_grid_ws``.)
    """

    seed: int = 0
    psi: float = 0.7
    cutoff: int | None = None
    space: LatentSpace = "z"
    latent: tuple[float, ...] | None = None
    grid_xy: tuple[float, float] | None = None
    grid_size: int = 8

    def __post_init__(self) -> None:
        _check_choice("space", self.space, ("z", "w"))
        if self.grid_xy is not None:
            _check_vec("grid_xy", self.grid_xy, 2)
        if not isinstance(self.grid_size, int) or self.grid_size < 2:
            raise ValueError(f"grid_size must be an int >= 2, got {self.grid_size!r}")
        if self.latent is not None and not isinstance(self.latent, tuple):
            raise ValueError(f"latent must be a tuple of floats or None, got {type(self.latent).__name__}")
        if self.cutoff is not None and self.cutoff < 0:
            raise ValueError(f"cutoff must be >= 0 or None, got {self.cutoff!r}")


@dataclass(frozen=True, slots=True)
class SliderParams:
    """The Latent panel's sliders as the worker applies them (``core.editing.apply_sliders``) on top of the
    base latent: ``ws = base + sum value * scale * unit``. The base is never modified, so all sliders at 0
    give it back exactly.

    Attributes:
        values: ``((name, value), ...)`` sorted by name, no zeros; value in std units along the direction.
        directions: version of the direction set the viewer handed the worker for this source (0 = none);
            part of the request so a recomputed set re-renders.
    """

    values: tuple[tuple[str, float], ...] = ()
    directions: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.values, tuple) or any(not (isinstance(v, tuple) and len(v) == 2) for v in self.values):
            raise ValueError(f"values must be a tuple of (name, value) pairs, got {self.values!r}")


@dataclass(frozen=True, slots=True)
class EditSpec:
    """One named edit operation with its parameters, as plain data (the worker builds the ``core.edit_ops``
    object from it; nothing is ever evaluated as code).

    Attributes:
        op: the registry name, e.g. ``"crop_box"``.
        params: ``((field, value), ...)`` in the op's field order.
    """

    op: str
    params: tuple[tuple[str, EditValue], ...] = ()

    def as_dict(self) -> dict[str, EditValue]:
        return dict(self.params)


@dataclass(frozen=True, slots=True)
class RenderParams:
    """One complete render request; the GUI rebuilds it every frame and submits it only when it changed.

    Attributes:
        source: what to show: a generator file (ours ``.safetensors``; ``.pkl``: official CGS-GAN, GGHead or our older format), a 3DGS ``.ply`` scene, or
            a built-in random-weight generator ``"random:tiny"`` / ``"random:cpu128"`` (core ``PRESETS``).
        camera: see :class:`CameraParams`.
        latent: see :class:`LatentParams`.
        sliders: see :class:`SliderParams` (applied after the latent).
        width, height: full-quality image size in pixels.
        background: RGB in [0, 1] behind the splats (rgb and centres modes).
        mode: ``"rgb"`` colour; ``"alpha"`` accumulated opacity as grey; ``"depth"`` camera-space depth
            normalised per image to [0, 1], near = white, empty pixels black; ``"centres"`` the Gaussian centres
            as dots coloured by their base colour.
        splat_scale: multiplies every Gaussian's scale at render time (1 = as stored).
        device: torch device string for the model and the rasterizer, e.g. ``"cpu"`` or ``"cuda"``.
        low_res: render at a quarter of ``width``/``height`` (progressive quality while dragging).
        edits: the Edit panel's stack, applied in order to the generated or loaded Gaussians.
        output: ``"image"``: rasterize (the result has an image); ``"scene"``: only generate, edit and prepare
            the Gaussians for the OpenGL splat renderer (``RenderResult.splats``); camera and size are unused.
    """

    source: str = "random:tiny"
    camera: CameraParams = field(default_factory=CameraParams)
    latent: LatentParams = field(default_factory=LatentParams)
    sliders: SliderParams = field(default_factory=SliderParams)
    width: int = 512
    height: int = 512
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    mode: ImageMode = "rgb"
    splat_scale: float = 1.0
    device: str = "cpu"
    low_res: bool = False
    edits: tuple[EditSpec, ...] = ()
    output: RenderOutputKind = "image"

    def __post_init__(self) -> None:
        _check_choice("mode", self.mode, ("rgb", "alpha", "depth", "centres"))
        _check_choice("output", self.output, ("image", "scene"))
        _check_vec("background", self.background, 3)
        for name, v in (("width", self.width), ("height", self.height)):
            if not isinstance(v, int) or v <= 0:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if not self.splat_scale > 0:
            raise ValueError(f"splat_scale must be > 0, got {self.splat_scale!r}")


@dataclass(frozen=True, slots=True)
class RenderStats:
    """Measurements of one render (milliseconds of wall time; CUDA work is synchronised before timing ends).

    Attributes:
        synthesis_ms: loading plus generating the Gaussians (0 when the cached scene was reused).
        render_ms: rasterizing and building the image.
        total_ms: the whole request, as the worker saw it.
        gaussians: number of Gaussians rendered.
        backend: the rasterizer used (``"torch"``, ``"gsplat"`` or ``"cpu-splats"``; ``""`` when it failed
            before rendering).
        width, height: the size actually rendered (a quarter of the request when ``low_res``; half on the
            CPU splat rasterizer).
        synthesized: whether this request ran the generator (False: the cached Gaussians were reused).
        synthesis_count: how many times this worker has run the generator so far.
        random_weights: the source is an untrained random-weight generator (show a banner).
        source_kind: ``"generator"``, ``"scene"`` (a .ply) or ``""`` when loading failed.
    """

    synthesis_ms: float = 0.0
    render_ms: float = 0.0
    total_ms: float = 0.0
    gaussians: int = 0
    backend: str = ""
    width: int = 0
    height: int = 0
    synthesized: bool = False
    synthesis_count: int = 0
    random_weights: bool = False
    source_kind: str = ""


@dataclass(frozen=True, slots=True, eq=False)
class RenderResult:
    """What the worker publishes for one request; errors travel as data, never as exceptions.

    Attributes:
        image: ``[H, W, 3]`` uint8 RGB at ``stats.width`` x ``stats.height`` (row 0 = top), or None on error.
        stats: see :class:`RenderStats`.
        error: the formatted traceback (or a short message) when the request failed, else None.
        generation: the value :meth:`RenderWorker.submit` returned for the request; compare with the newest
            generation submitted to tell whether the image is current.
        params: the request it answers.
        scene: the edited ``core.gaussians.GaussianSet`` (batch shape ``[]``) that was drawn, for saving and
            inspecting (typed ``object`` here: this module never imports torch).
        splats: ``viewer.viewport.gl_splats.SplatArrays`` (numpy) for the OpenGL renderer when ``output == "scene"``.
        ws: ``[num_ws, w_dim]`` float32, the latent that made ``scene``, sliders applied (None for ``.ply``).
        base_ws: ``[num_ws, w_dim]`` float32, the same before the sliders (None for ``.ply`` scenes).
    """

    image: np.ndarray | None
    stats: RenderStats
    error: str | None
    generation: int
    params: RenderParams | None = None
    scene: object | None = None
    splats: object | None = None
    ws: np.ndarray | None = None
    base_ws: np.ndarray | None = None

    @property
    def ok(self) -> bool:
        if self.error is not None:
            return False
        if self.params is not None and self.params.output == "scene":
            return self.splats is not None
        return self.image is not None
