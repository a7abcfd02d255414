"""What a 3D-measured attribute measures: a quantity of the Gaussians inside a box of the head.

World space as in :mod:`core.gaussians`: scene units, +y up, the face looking toward +z; the synthetic
heads (and a generator trained on them) are about 0.29 wide (ears included) and 0.42 from chin to crown,
eyes at y ~ 0.02 and z ~ 0.11, the crown at y ~ 0.25. The default boxes below are placed for that layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Quantity = Literal["color", "width"]
QUANTITIES: tuple[str, ...] = ("color", "width")
# Names of the extra directions of a colour measurement "name": name (lightness), name.warmth, name.tint.
COLOR_AXES: tuple[str, ...] = ("", ".warmth", ".tint")


@dataclass(frozen=True)
class Box:
    """Axis-aligned box in world space (scene units).

    Attributes:
        center: ``(x, y, z)`` centre.
        half_size: ``(x, y, z)`` half extents (> 0).
    """

    center: tuple[float, float, float]
    half_size: tuple[float, float, float]

    def __post_init__(self) -> None:
        c, h = tuple(float(v) for v in self.center), tuple(float(v) for v in self.half_size)
        if len(c) != 3 or len(h) != 3 or min(h) <= 0:
            raise ValueError(f"Box needs a 3-vector center and 3 positive half sizes, got {self.center}, "
                             f"{self.half_size}")
        object.__setattr__(self, "center", c)
        object.__setattr__(self, "half_size", h)


@dataclass(frozen=True)
class Measurement:
    """A named attribute read from the generated Gaussians.

    Attributes:
        name: slider name (``"skin_color"``, ``"hair_color"``, ``"head_width"``).
        quantity: ``"color"``: opacity-weighted mean RGB in [0, 1] of the Gaussians inside ``box``
            (view-independent DC colour); ``"width"``: extent along x (scene units) of the opaque Gaussians
            inside ``box``, from the 3rd to the 97th opacity-weighted percentile.
        box: where to measure.
    """

    name: str
    quantity: Quantity
    box: Box

    def __post_init__(self) -> None:
        if self.quantity not in QUANTITIES:
            raise ValueError(f"quantity must be one of {QUANTITIES}, got {self.quantity!r}")
        if not self.name or "." in self.name:
            raise ValueError(f"measurement name must be non-empty and contain no '.', got {self.name!r}")

    @property
    def size(self) -> int:
        """Numbers one measurement gives: 3 (RGB) or 1 (width)."""
        return 3 if self.quantity == "color" else 1

    @property
    def direction_names(self) -> tuple[str, ...]:
        """Its sliders: ``name`` (lightness), ``name.warmth`` (red vs. blue), ``name.tint`` (green vs. magenta)
        for a colour; ``name`` for a width."""
        if self.quantity == "color":
            return tuple(self.name + axis for axis in COLOR_AXES)
        return (self.name,)


DEFAULT_MEASUREMENTS: tuple[Measurement, ...] = (
    # Cheeks and the middle of the nose, below the eyes and above the mouth.
    Measurement("skin_color", "color", Box((0.0, -0.035, 0.10), (0.11, 0.025, 0.06))),
    # The crown: hair, or the scalp of a bald head.
    Measurement("hair_color", "color", Box((0.0, 0.22, -0.03), (0.12, 0.05, 0.12))),
    # A slab at the height of the temples and ears.
    Measurement("head_width", "width", Box((0.0, 0.02, -0.02), (0.25, 0.04, 0.16))),
)
