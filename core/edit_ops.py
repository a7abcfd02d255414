"""Named, typed edit operations on a :class:`~core.gaussians.GaussianSet` (never ``exec``).

An op is a frozen dataclass of plain parameters (floats, bools, 3-tuples) with a pure
``apply(gs) -> GaussianSet``: the input is never modified (untouched fields may share storage with it).
Ops compare by value, so a tuple of ops is a cheap, hashable part of a render state.

Registry: :data:`EDIT_OPS` maps each op's ``name`` to its class; :func:`op_infos` lists name, label,
description and parameter specs for a UI; :func:`op_to_dict` / :func:`op_from_dict` give JSON-able dicts
``{"op": name, "params": {...}}`` validated on load (:class:`EditOpError`, a ``ValueError``).

Conventions: positions and boxes are world space (+y up, the face toward +z, heads inside the unit cube
centred at the origin); colours are RGB in [0, 1]; opacity thresholds are *activated* opacities
``sigmoid(opacity_logits)``. Ops that change the Gaussian count (crop, threshold) need one scene
(batch shape ``[]``), since the scenes of a batch would keep different counts; the others accept any batch.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Mapping

import torch

from core.gaussians import GaussianSet, rgb_to_sh_dc

Vec3 = tuple[float, float, float]
ParamKind = Literal["float", "bool", "vec3", "rgb"]


class EditOpError(ValueError):
    """An invalid op parameter, an unknown op name or a malformed serialized op."""


@dataclass(frozen=True)
class ParamSpec:
    """How a UI should show one op parameter.

    Attributes:
        name: the dataclass field name (and the JSON key).
        kind: ``"float"``, ``"bool"``, ``"vec3"`` (xyz, scene units) or ``"rgb"`` (each in [0, 1]).
        default: the default value.
        low, high: suggested slider range (inclusive) for floats and vectors; ``None`` for bools.
        help: one line for a tooltip.
    """

    name: str
    kind: ParamKind
    default: Any
    low: float | None
    high: float | None
    help: str


def _param(default: Any, kind: ParamKind, low: float | None, high: float | None, help: str) -> Any:
    return field(default=default, metadata={"kind": kind, "low": low, "high": high, "help": help})


# ---------------------------------------------------------------------------------------- base class


@dataclass(frozen=True)
class EditOp:
    """Base of all ops. Subclasses set ``name`` (registry key), ``label`` and ``description`` and
    implement :meth:`_apply`; ``__post_init__`` checks and normalises every parameter by its ``kind``."""

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    description: ClassVar[str] = ""
    changes_count: ClassVar[bool] = False

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            where = f"{self.name}.{f.name}"
            kind = f.metadata["kind"]
            if kind == "bool":
                if not isinstance(value, bool):
                    raise EditOpError(f"{where} must be a bool, got {value!r}")
            elif kind == "float":
                object.__setattr__(self, f.name, _finite_float(value, where))
            else:
                object.__setattr__(self, f.name, _vec3(value, where, unit=kind == "rgb"))
        self._check()

    def _check(self) -> None:
        """Cross-field checks and ranges; raise :class:`EditOpError`."""

    def apply(self, gs: GaussianSet) -> GaussianSet:
        """Return a new :class:`GaussianSet` with this edit applied; ``gs`` is left unchanged."""
        if not isinstance(gs, GaussianSet):
            raise TypeError(f"{self.name}.apply needs a core.gaussians.GaussianSet, got {type(gs).__name__}")
        if self.changes_count and gs.batch_shape != ():
            raise ValueError(f"{self.name} changes the Gaussian count, so it needs one scene (batch shape []), "
                             f"got batch shape {list(gs.batch_shape)}; apply it to each scene")
        return self._apply(gs)

    def _apply(self, gs: GaussianSet) -> GaussianSet:
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        """Parameters as JSON-able values (vectors as lists)."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in dataclasses.fields(self)}


def _finite_float(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EditOpError(f"{where} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise EditOpError(f"{where} must be finite, got {value!r}")
    return float(value)


def _vec3(value: object, where: str, unit: bool = False) -> Vec3:
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)) or len(value) != 3:
        raise EditOpError(f"{where} must be 3 numbers, got {value!r}")
    out = tuple(_finite_float(v, f"{where}[{i}]") for i, v in enumerate(value))
    if unit and not all(0.0 <= v <= 1.0 for v in out):
        raise EditOpError(f"{where} must be RGB in [0, 1], got {out}")
    return out  # type: ignore[return-value]


def _check_box(op: EditOp, lo: Vec3, hi: Vec3) -> None:
    if any(a > b for a, b in zip(lo, hi)):
        raise EditOpError(f"{op.name}: box_min {lo} must be <= box_max {hi} on every axis")


def box_mask(means: torch.Tensor, box_min: Vec3, box_max: Vec3) -> torch.Tensor:
    """``[..., N]`` bool: the centre ``means [..., N, 3]`` lies in the closed axis-aligned box (world space)."""
    lo = torch.tensor(box_min, dtype=means.dtype, device=means.device)
    hi = torch.tensor(box_max, dtype=means.dtype, device=means.device)
    return ((means >= lo) & (means <= hi)).all(dim=-1)


_UNIT_BOX_MIN: Vec3 = (-0.5, -0.5, -0.5)
_UNIT_BOX_MAX: Vec3 = (0.5, 0.5, 0.5)


# ---------------------------------------------------------------------------------------- the ops


@dataclass(frozen=True)
class CropBox(EditOp):
    """Keep the Gaussians whose centre lies in an axis-aligned box (or, inverted, outside it)."""

    name: ClassVar[str] = "crop_box"
    label: ClassVar[str] = "Crop to box"
    description: ClassVar[str] = ("Keep Gaussians whose centre is inside the axis-aligned box [box_min, box_max] "
                                  "(world space, bounds inclusive); 'invert' keeps those outside instead.")
    changes_count: ClassVar[bool] = True

    box_min: Vec3 = _param(_UNIT_BOX_MIN, "vec3", -1.0, 1.0, "lower corner (x, y, z), world space")
    box_max: Vec3 = _param(_UNIT_BOX_MAX, "vec3", -1.0, 1.0, "upper corner (x, y, z), world space")
    invert: bool = _param(False, "bool", None, None, "keep the Gaussians outside the box instead")

    def _check(self) -> None:
        _check_box(self, self.box_min, self.box_max)

    def _apply(self, gs: GaussianSet) -> GaussianSet:
        inside = box_mask(gs.means, self.box_min, self.box_max)
        return gs.select(~inside if self.invert else inside)


@dataclass(frozen=True)
class OpacityThreshold(EditOp):
    """Drop Gaussians whose activated opacity is below ``min_opacity``."""

    name: ClassVar[str] = "opacity_threshold"
    label: ClassVar[str] = "Opacity threshold"
    description: ClassVar[str] = ("Remove Gaussians whose opacity sigmoid(logit) is below min_opacity "
                                  "(0 keeps all, 1 keeps only fully opaque ones).")
    changes_count: ClassVar[bool] = True

    min_opacity: float = _param(0.05, "float", 0.0, 1.0, "activated opacity a Gaussian needs to be kept")

    def _check(self) -> None:
        if not 0.0 <= self.min_opacity <= 1.0:
            raise EditOpError(f"{self.name}.min_opacity must be in [0, 1], got {self.min_opacity}")

    def _apply(self, gs: GaussianSet) -> GaussianSet:
        return gs.select(gs.opacities() >= self.min_opacity)


@dataclass(frozen=True)
class Recolor(EditOp):
    """Blend the base colour toward ``rgb``: ``rgb' = rgb + strength * (target - rgb)``.

    The DC term is rewritten so the view-independent colour is exactly the blend; the higher SH bands
    (view-dependent colour) are scaled by ``1 - strength``, so ``strength = 1`` gives a flat ``target``.
    """

    name: ClassVar[str] = "recolor"
    label: ClassVar[str] = "Recolor"
    description: ClassVar[str] = ("Blend each Gaussian's colour toward a target RGB by 'strength' (1 = exactly "
                                  "the target); optionally only Gaussians whose centre is inside a box.")

    rgb: Vec3 = _param((1.0, 0.0, 0.0), "rgb", 0.0, 1.0, "target colour, RGB in [0, 1]")
    strength: float = _param(0.5, "float", 0.0, 1.0, "0 = unchanged, 1 = exactly the target colour")
    only_in_box: bool = _param(False, "bool", None, None, "recolour only Gaussians whose centre is in the box")
    box_min: Vec3 = _param(_UNIT_BOX_MIN, "vec3", -1.0, 1.0, "lower corner of the box (used with only_in_box)")
    box_max: Vec3 = _param(_UNIT_BOX_MAX, "vec3", -1.0, 1.0, "upper corner of the box (used with only_in_box)")

    def _check(self) -> None:
        if not 0.0 <= self.strength <= 1.0:
            raise EditOpError(f"{self.name}.strength must be in [0, 1], got {self.strength}")
        _check_box(self, self.box_min, self.box_max)

    def _apply(self, gs: GaussianSet) -> GaussianSet:
        w = torch.full(gs.opacity_logits.shape, self.strength, dtype=gs.dtype, device=gs.device)  # [..., N]
        if self.only_in_box:
            w = w * box_mask(gs.means, self.box_min, self.box_max).to(gs.dtype)
        # rgb = 0.5 + C0 * dc is affine, so blending the DC terms blends the (unclamped) colours exactly.
        target_dc = rgb_to_sh_dc(torch.tensor(self.rgb, dtype=gs.dtype, device=gs.device))
        dc = gs.sh[..., 0, :]  # [..., N, 3]
        dc = dc + w[..., None] * (target_dc - dc)
        rest = gs.sh[..., 1:, :] * (1.0 - w)[..., None, None]
        return dataclasses.replace(gs, sh=torch.cat([dc[..., None, :], rest], dim=-2))


@dataclass(frozen=True)
class ScaleSplats(EditOp):
    """Multiply every Gaussian's size (all three axes) by ``factor``; centres stay put."""

    name: ClassVar[str] = "scale_splats"
    label: ClassVar[str] = "Scale splats"
    description: ClassVar[str] = ("Multiply each Gaussian's size by 'factor' (< 1 shrinks splats toward points, "
                                  "> 1 blurs); positions are unchanged.")

    factor: float = _param(0.5, "float", 0.01, 4.0, "size multiplier, > 0")

    def _check(self) -> None:
        if self.factor <= 0.0:
            raise EditOpError(f"{self.name}.factor must be > 0, got {self.factor}")

    def _apply(self, gs: GaussianSet) -> GaussianSet:
        return dataclasses.replace(gs, log_scales=gs.log_scales + math.log(self.factor))


@dataclass(frozen=True)
class Translate(EditOp):
    """Move the whole scene by ``offset`` (world space, scene units)."""

    name: ClassVar[str] = "translate"
    label: ClassVar[str] = "Translate scene"
    description: ClassVar[str] = "Move every Gaussian by 'offset' (x, y, z) in world space."

    offset: Vec3 = _param((0.0, 0.0, 0.0), "vec3", -1.0, 1.0, "displacement (x, y, z), scene units")

    def _apply(self, gs: GaussianSet) -> GaussianSet:
        offset = torch.tensor(self.offset, dtype=gs.dtype, device=gs.device)
        return dataclasses.replace(gs, means=gs.means + offset)


@dataclass(frozen=True)
class ScaleScene(EditOp):
    """Scale the whole scene about ``center``: positions and splat sizes both by ``factor``."""

    name: ClassVar[str] = "scale_scene"
    label: ClassVar[str] = "Scale scene"
    description: ClassVar[str] = ("Scale the scene about 'center' by 'factor': positions move away from (or "
                                  "toward) the centre and every splat grows (or shrinks) by the same factor.")

    factor: float = _param(1.0, "float", 0.1, 4.0, "scene scale multiplier, > 0")
    center: Vec3 = _param((0.0, 0.0, 0.0), "vec3", -1.0, 1.0, "fixed point of the scaling, world space")

    def _check(self) -> None:
        if self.factor <= 0.0:
            raise EditOpError(f"{self.name}.factor must be > 0, got {self.factor}")

    def _apply(self, gs: GaussianSet) -> GaussianSet:
        c = torch.tensor(self.center, dtype=gs.dtype, device=gs.device)
        return dataclasses.replace(gs, means=c + self.factor * (gs.means - c),
                                   log_scales=gs.log_scales + math.log(self.factor))


# ---------------------------------------------------------------------------------------- registry

EDIT_OPS: Mapping[str, type[EditOp]] = {
    cls.name: cls for cls in (CropBox, OpacityThreshold, Recolor, ScaleSplats, Translate, ScaleScene)
}


@dataclass(frozen=True)
class OpInfo:
    """One registry entry as a UI lists it: ``name`` (key), ``label``, ``description``, ``params``."""

    name: str
    label: str
    description: str
    params: tuple[ParamSpec, ...]


def param_specs(op_type: type[EditOp]) -> tuple[ParamSpec, ...]:
    """The parameters of an op class in declaration order, with kinds, defaults, ranges and help."""
    return tuple(ParamSpec(f.name, f.metadata["kind"], f.default, f.metadata["low"], f.metadata["high"],
                           f.metadata["help"]) for f in dataclasses.fields(op_type))


def op_infos() -> tuple[OpInfo, ...]:
    """Every registered op, in registry order."""
    return tuple(OpInfo(name, cls.label, cls.description, param_specs(cls)) for name, cls in EDIT_OPS.items())


def _lookup(name: object) -> type[EditOp]:
    if not isinstance(name, str) or name not in EDIT_OPS:
        raise EditOpError(f"unknown edit op {name!r}; known ops: {', '.join(EDIT_OPS)}")
    return EDIT_OPS[name]


def default_op(name: str) -> EditOp:
    """An instance of the op called ``name`` with default parameters (:class:`EditOpError` if unknown)."""
    return _lookup(name)()


def op_to_dict(op: EditOp) -> dict[str, Any]:
    """``{"op": name, "params": {field: value}}`` with vectors as lists (JSON-able)."""
    if not isinstance(op, EditOp) or op.name not in EDIT_OPS:
        raise TypeError(f"not a registered edit op: {op!r}")
    return {"op": op.name, "params": op.params()}


def op_from_dict(d: object) -> EditOp:
    """Inverse of :func:`op_to_dict`. Missing parameters take their defaults; unknown op names, unknown
    parameter names and wrongly typed or out-of-range values raise :class:`EditOpError`."""
    if not isinstance(d, Mapping) or set(d) - {"op", "params"} or "op" not in d:
        raise EditOpError(f"an edit op must be a dict {{'op': name, 'params': {{...}}}}, got {d!r}")
    cls = _lookup(d["op"])
    params = d.get("params", {})
    if not isinstance(params, Mapping):
        raise EditOpError(f"{cls.name}: 'params' must be a dict, got {params!r}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise EditOpError(f"{cls.name}: unknown parameter(s) {unknown}; expected some of {sorted(known)}")
    return cls(**params)
