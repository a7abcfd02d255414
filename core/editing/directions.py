"""Named directions in W space and the set of them that belongs to one model file.

A :class:`Direction` is a unit vector ``u [w_dim]`` plus a ``scale`` in W units: moving its slider to ``v``
adds ``v * scale * u`` to the w of every slot in ``slots`` (all slots when None). ``scale`` is the standard
deviation of generated w's along ``u`` (from the reference covariance), so for every kind of direction a
slider value of 1 means "one standard deviation of the model's own latents", as in GANSpace.

Kinds:
    ``"pca"``        principal components of sampled w (GANSpace); named ``PCA0``, ``PCA1``, ...
    ``"attribute"``  linear boundaries fitted to a classifier's labels of generated samples (InterFaceGAN),
                     orthogonalised against each other (see :mod:`core.editing.boundary`).
    ``"user"``       taught in the viewer from yes/no marks on generated samples.
    ``"measured"``   regression of a quantity read from the generated Gaussians (see
                     :mod:`core.editing.measured`); each :class:`~core.editing.measured.Measurement` lists
                     the directions that belong to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal, Sequence

import numpy as np

from core.editing.measured_spec import Measurement

DirectionKind = Literal["pca", "attribute", "user", "measured"]
DIRECTION_KINDS: tuple[str, ...] = ("pca", "attribute", "user", "measured")


def _frozen_array(x: np.ndarray | Sequence[float], shape: tuple[int, ...], name: str) -> np.ndarray:
    a = np.array(x, dtype=np.float64, copy=True)
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {list(shape)}, got {list(a.shape)}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds non-finite values")
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Direction:
    """One slider.

    Attributes:
        name: slider label, unique within a set (``"PCA3"``, ``"has_glasses"``, ``"skin_color"``).
        kind: see the module docstring.
        vector: ``[w_dim]`` float64, unit length (normalised on construction).
        scale: W units per slider unit (> 0): the std of generated w along ``vector``.
        slots: ``(start, stop)`` range of ws slots the offset is added to (GANSpace layer ranges); None = all.
        note: where it came from (e.g. ``"logistic boundary, 2000 samples, train acc 0.97"``).
    """

    name: str
    kind: DirectionKind
    vector: np.ndarray
    scale: float
    slots: tuple[int, int] | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"direction name must be a non-empty string, got {self.name!r}")
        if self.kind not in DIRECTION_KINDS:
            raise ValueError(f"direction kind must be one of {DIRECTION_KINDS}, got {self.kind!r}")
        v = np.array(self.vector, dtype=np.float64)
        if v.ndim != 1 or not np.isfinite(v).all() or np.linalg.norm(v) == 0:
            raise ValueError(f"direction {self.name!r}: vector must be a finite, non-zero [w_dim] array")
        norm = np.linalg.norm(v)
        if abs(norm - 1.0) > 1e-12:  # idempotent: a unit vector (e.g. read back from a file) is kept bit for bit
            v = v / norm
        object.__setattr__(self, "vector", _frozen_array(v, v.shape, "vector"))
        if not (isinstance(self.scale, (int, float)) and math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"direction {self.name!r}: scale must be a positive finite number, got {self.scale!r}")
        object.__setattr__(self, "scale", float(self.scale))
        if self.slots is not None:
            start, stop = (int(s) for s in self.slots)
            if not 0 <= start < stop:
                raise ValueError(f"direction {self.name!r}: slots must be (start, stop) with 0 <= start < stop")
            object.__setattr__(self, "slots", (start, stop))

    @property
    def w_dim(self) -> int:
        return int(self.vector.shape[0])

    def offset(self, value: float) -> np.ndarray:
        """``[w_dim]`` the W offset of slider value ``value`` (std units)."""
        return self.vector * (float(value) * self.scale)


@dataclass(frozen=True, eq=False)
class WStatistics:
    """Statistics of generated w (one slot; the mapping broadcasts the same w to every slot).

    Attributes:
        mean: ``[w_dim]`` mean of w (with psi = 1, close to the generator's ``w_avg``).
        cov: ``[w_dim, w_dim]`` covariance of w.
        num_samples: how many w they were computed from.
    """

    mean: np.ndarray
    cov: np.ndarray
    num_samples: int

    def __post_init__(self) -> None:
        d = int(np.asarray(self.mean).shape[-1])
        object.__setattr__(self, "mean", _frozen_array(self.mean, (d,), "mean"))
        object.__setattr__(self, "cov", _frozen_array(self.cov, (d, d), "cov"))

    @property
    def w_dim(self) -> int:
        return int(self.mean.shape[0])

    def std_along(self, unit: np.ndarray) -> float:
        """Standard deviation of generated w along the unit vector ``unit [w_dim]`` (W units)."""
        u = np.asarray(unit, dtype=np.float64)
        u = u / np.linalg.norm(u)
        return float(math.sqrt(max(float(u @ self.cov @ u), 1e-20)))


@dataclass(frozen=True, eq=False)
class DirectionSet:
    """Every slider of one model file, saved beside it (:mod:`core.editing.direction_file`).

    Attributes:
        model_sha256: SHA-256 (hex) of the model file these directions were computed for.
        num_ws: ws slots of the model (``G.config.num_ws``).
        stats: statistics of the model's w (define the slider units of new directions).
        directions: the sliders, in display order, names unique.
        measurements: the 3D-measured attributes (their directions are in ``directions``).
    """

    model_sha256: str
    num_ws: int
    stats: WStatistics
    directions: tuple[Direction, ...] = ()
    measurements: tuple[Measurement, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "directions", tuple(self.directions))
        object.__setattr__(self, "measurements", tuple(self.measurements))
        if self.num_ws < 1:
            raise ValueError(f"num_ws must be >= 1, got {self.num_ws}")
        names = [d.name for d in self.directions]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"direction names must be unique; repeated: {dupes}")
        for d in self.directions:
            if d.w_dim != self.w_dim:
                raise ValueError(f"direction {d.name!r} has w_dim {d.w_dim}, the set has {self.w_dim}")
            if d.slots is not None and d.slots[1] > self.num_ws:
                raise ValueError(f"direction {d.name!r}: slots {d.slots} exceed num_ws {self.num_ws}")
        for m in self.measurements:
            missing = [n for n in m.direction_names if n not in names]
            if missing:
                raise ValueError(f"measurement {m.name!r} names missing directions {missing}")

    @property
    def w_dim(self) -> int:
        return self.stats.w_dim

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.directions)

    def get(self, name: str) -> Direction:
        for d in self.directions:
            if d.name == name:
                return d
        raise KeyError(f"no direction named {name!r}; have {list(self.names)}")

    def of_kind(self, kind: DirectionKind) -> tuple[Direction, ...]:
        return tuple(d for d in self.directions if d.kind == kind)

    def measurement(self, name: str) -> Measurement:
        for m in self.measurements:
            if m.name == name:
                return m
        raise KeyError(f"no measurement named {name!r}; have {[m.name for m in self.measurements]}")

    def with_directions(self, directions: Sequence[Direction]) -> DirectionSet:
        """A copy where each of ``directions`` replaces the one of the same name (in place) or is appended."""
        new = {d.name: d for d in directions}
        kept = [new.pop(d.name, d) for d in self.directions]
        return replace(self, directions=tuple(kept) + tuple(new.values()))

    def with_measurement(self, measurement: Measurement, directions: Sequence[Direction]) -> DirectionSet:
        """Add (or replace) a measured attribute together with its directions."""
        out = self.with_directions(directions)
        others = tuple(m for m in self.measurements if m.name != measurement.name)
        return replace(out, measurements=others + (measurement,))

    def without(self, name: str) -> DirectionSet:
        """A copy without direction ``name`` (and without a measurement that uses it)."""
        self.get(name)
        return replace(self, directions=tuple(d for d in self.directions if d.name != name),
                       measurements=tuple(m for m in self.measurements if name not in m.direction_names))

    def make_direction(self, name: str, kind: DirectionKind, vector: np.ndarray, note: str = "",
                       slots: tuple[int, int] | None = None) -> Direction:
        """A :class:`Direction` along ``vector [w_dim]`` with this model's slider unit (std of w along it)."""
        return Direction(name, kind, vector, self.stats.std_along(vector), slots, note)
