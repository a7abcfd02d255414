"""The attribute record of a synthetic head and the distributions it is sampled from.

Every head is ``make_head(seed, attributes)``: the attributes say *what* the head is (shape, colours, hair,
glasses, expression, light), the seed drives only small per-Gaussian noise (jitter, strands, skin blotches).
:func:`sample_attributes` draws a record from the distributions documented in :data:`DISTRIBUTIONS` (the
same table is in README.md, "Synthetic heads dataset"). Colours are linear-ish sRGB in [0, 1]; angles in
degrees; shape factors are unitless multipliers of the mean head (1.0 = average).
"""

from __future__ import annotations

import colorsys
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

import numpy as np

HAIR_STYLES = ("bald", "buzz", "short", "medium", "long", "bun", "ponytail", "curly")
HAIR_STYLE_P = (0.07, 0.11, 0.24, 0.16, 0.18, 0.08, 0.08, 0.08)
HAIR_COLORS = {  # name -> RGB of the mid tone
    "black": (0.05, 0.045, 0.04),
    "dark_brown": (0.17, 0.10, 0.06),
    "brown": (0.36, 0.22, 0.12),
    "blond": (0.80, 0.64, 0.38),
    "red": (0.62, 0.24, 0.09),
    "grey": (0.66, 0.65, 0.63),
}
HAIR_COLOR_P = (0.28, 0.25, 0.16, 0.13, 0.07, 0.11)
EYE_COLORS = {
    "brown": (0.36, 0.20, 0.09),
    "dark_brown": (0.17, 0.09, 0.04),
    "hazel": (0.45, 0.36, 0.16),
    "green": (0.27, 0.45, 0.25),
    "blue": (0.27, 0.45, 0.72),
    "grey": (0.50, 0.55, 0.60),
}
EYE_COLOR_P = (0.40, 0.20, 0.10, 0.08, 0.16, 0.06)
GLASSES = ("none", "round", "rectangular", "sunglasses")
GLASSES_P = (0.62, 0.12, 0.16, 0.10)
FRAME_COLORS = {"black": (0.04, 0.04, 0.045), "tortoise": (0.30, 0.16, 0.07), "gold": (0.80, 0.62, 0.25),
                "silver": (0.70, 0.72, 0.75), "red": (0.65, 0.07, 0.08)}
FRAME_COLOR_P = (0.45, 0.2, 0.12, 0.13, 0.10)
BEARDS = ("none", "stubble", "goatee", "full")
BEARD_P = (0.62, 0.14, 0.09, 0.15)

# Skin: a ramp from very light to very dark (linear interpolation between neighbouring stops).
SKIN_RAMP = np.array([
    (0.98, 0.85, 0.76), (0.93, 0.76, 0.64), (0.84, 0.64, 0.50), (0.72, 0.52, 0.38),
    (0.57, 0.39, 0.27), (0.42, 0.27, 0.18), (0.28, 0.18, 0.12),
])


@dataclass(frozen=True)
class HeadAttributes:
    """Everything that defines a synthetic head except the noise seed. JSON-friendly (str, float, bool).

    Attributes (see :data:`DISTRIBUTIONS` for how each is sampled):
        skin_tone: 0 = lightest ... 1 = darkest skin (position on :data:`SKIN_RAMP`).
        skin_warmth: -1 = pink/cool ... +1 = yellow/warm undertone.
        head_width, head_height, head_depth: multipliers of the mean skull radii.
        jaw_width: 0 = narrow, pointed chin ... 1 = wide, square jaw.
        chin_length: multiplier of the chin's vertical extent.
        brow_ridge: 0 = flat ... 1 = pronounced brow.
        nose_length, nose_width, nose_size: multipliers (size = how far it projects).
        eye_spacing, eye_size: multipliers.
        eye_color: key of :data:`EYE_COLORS`.
        mouth_width, lip_fullness: multipliers.
        lip_tint: 0 = skin-like lips ... 1 = strongly red/pink (lipstick-like).
        smile: 0 = neutral ... 1 = broad smile (mouth corners up, cheeks raised, eyes narrowed).
        teeth: mouth slightly open with teeth showing (only sampled for smile > 0.55).
        ear_size, ear_angle_deg: ear scale and how far it stands out from the head (deg).
        eyebrow_thickness: 0 = thin ... 1 = bushy.
        hair_style: one of :data:`HAIR_STYLES`.
        hair_color: key of :data:`HAIR_COLORS`; hair_shade multiplies it (lighter/darker variant).
        hair_volume: multiplier of the hair shell's thickness.
        fringe: hair covers the upper forehead (bangs).
        glasses: one of :data:`GLASSES`; frame_color: key of :data:`FRAME_COLORS`.
        beard: one of :data:`BEARDS`.
        shirt_rgb: clothing colour.
        light_azimuth_deg, light_elevation_deg: direction the key light comes from (0, 0 = from the front
            camera; positive azimuth = from the subject's left, +x; positive elevation = from above).
    """

    skin_tone: float = 0.35
    skin_warmth: float = 0.0
    head_width: float = 1.0
    head_height: float = 1.0
    head_depth: float = 1.0
    jaw_width: float = 0.5
    chin_length: float = 1.0
    brow_ridge: float = 0.5
    nose_length: float = 1.0
    nose_width: float = 1.0
    nose_size: float = 1.0
    eye_spacing: float = 1.0
    eye_size: float = 1.0
    eye_color: str = "brown"
    mouth_width: float = 1.0
    lip_fullness: float = 1.0
    lip_tint: float = 0.3
    smile: float = 0.0
    teeth: bool = False
    ear_size: float = 1.0
    ear_angle_deg: float = 15.0
    eyebrow_thickness: float = 0.5
    hair_style: str = "short"
    hair_color: str = "brown"
    hair_shade: float = 1.0
    hair_volume: float = 1.0
    fringe: bool = False
    glasses: str = "none"
    frame_color: str = "black"
    beard: str = "none"
    shirt_rgb: tuple[float, float, float] = (0.25, 0.35, 0.55)
    light_azimuth_deg: float = 25.0
    light_elevation_deg: float = 30.0

    def __post_init__(self) -> None:
        for name, options in (("eye_color", EYE_COLORS), ("hair_style", HAIR_STYLES), ("hair_color", HAIR_COLORS),
                              ("glasses", GLASSES), ("frame_color", FRAME_COLORS), ("beard", BEARDS)):
            if getattr(self, name) not in options:
                raise ValueError(f"{name} must be one of {sorted(options)}, got {getattr(self, name)!r}")
        if len(self.shirt_rgb) != 3:
            raise ValueError(f"shirt_rgb must have 3 values, got {self.shirt_rgb!r}")
        object.__setattr__(self, "shirt_rgb", tuple(float(c) for c in self.shirt_rgb))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict (tuples become lists)."""
        d = asdict(self)
        d["shirt_rgb"] = list(self.shirt_rgb)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HeadAttributes:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` (typos must not pass silently)."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown head attribute(s): {sorted(unknown)}")
        values = dict(d)
        if "shirt_rgb" in values:
            values["shirt_rgb"] = tuple(values["shirt_rgb"])
        return cls(**values)


# Human-readable description of every distribution (also rendered into README.md).
DISTRIBUTIONS: dict[str, str] = {
    "skin_tone": "uniform(0, 1) over a 7-stop ramp from very light to very dark",
    "skin_warmth": "uniform(-1, 1)",
    "head_width / head_height / head_depth": "normal(1, 0.04), clipped to [0.9, 1.1]",
    "jaw_width": "uniform(0, 1)",
    "chin_length": "normal(1, 0.1), clipped to [0.75, 1.25]",
    "brow_ridge": "uniform(0, 1)",
    "nose_length / nose_width / nose_size": "normal(1, 0.12), clipped to [0.7, 1.35]",
    "eye_spacing": "normal(1, 0.05), clipped to [0.88, 1.12]",
    "eye_size": "normal(1, 0.08), clipped to [0.8, 1.2]",
    "eye_color": "brown 40%, dark_brown 20%, blue 16%, hazel 10%, green 8%, grey 6%",
    "mouth_width / lip_fullness": "normal(1, 0.1), clipped to [0.75, 1.25]",
    "lip_tint": "beta(1.5, 3)",
    "smile": "45%: uniform(0, 0.15) (neutral); 55%: uniform(0.35, 1) (smiling)",
    "teeth": "if smile > 0.55: 50% true; else false",
    "ear_size": "normal(1, 0.08), clipped to [0.8, 1.2]",
    "ear_angle_deg": "uniform(5, 30)",
    "eyebrow_thickness": "uniform(0.15, 1)",
    "hair_style": "bald 7%, buzz 11%, short 24%, medium 16%, long 18%, bun 8%, ponytail 8%, curly 8%",
    "hair_color": "black 28%, dark_brown 25%, brown 16%, blond 13%, red 7%, grey 11%",
    "hair_shade": "uniform(0.8, 1.2)",
    "hair_volume": "uniform(0.75, 1.3)",
    "fringe": "35% for short/medium/long/bun/ponytail, else false",
    "glasses": "none 62%, rectangular 16%, round 12%, sunglasses 10%",
    "frame_color": "black 45%, tortoise 20%, silver 13%, gold 12%, red 10%",
    "beard": "none 62%, full 15%, stubble 14%, goatee 9%",
    "shirt_rgb": "HSV: hue uniform(0, 1), saturation uniform(0.05, 0.8), value uniform(0.15, 0.95)",
    "light_azimuth_deg": "uniform(-60, 60)",
    "light_elevation_deg": "uniform(5, 55)",
}


def sample_attributes(rng: np.random.Generator) -> HeadAttributes:
    """Draw one attribute record from :data:`DISTRIBUTIONS` (the draws happen in a fixed order)."""

    def clipped(mean: float, std: float, lo: float, hi: float) -> float:
        return float(np.clip(rng.normal(mean, std), lo, hi))

    def choice(options, p) -> str:
        return str(options[rng.choice(len(options), p=p)])

    smile = float(rng.uniform(0.0, 0.15)) if rng.random() < 0.45 else float(rng.uniform(0.35, 1.0))
    teeth = bool(smile > 0.55 and rng.random() < 0.5)
    style = choice(HAIR_STYLES, HAIR_STYLE_P)
    fringe = bool(style in ("short", "medium", "long", "bun", "ponytail") and rng.random() < 0.35)
    h, s, v = rng.uniform(0, 1), rng.uniform(0.05, 0.8), rng.uniform(0.15, 0.95)
    return HeadAttributes(
        skin_tone=float(rng.uniform(0, 1)),
        skin_warmth=float(rng.uniform(-1, 1)),
        head_width=clipped(1, 0.04, 0.9, 1.1),
        head_height=clipped(1, 0.04, 0.9, 1.1),
        head_depth=clipped(1, 0.04, 0.9, 1.1),
        jaw_width=float(rng.uniform(0, 1)),
        chin_length=clipped(1, 0.1, 0.75, 1.25),
        brow_ridge=float(rng.uniform(0, 1)),
        nose_length=clipped(1, 0.12, 0.7, 1.35),
        nose_width=clipped(1, 0.12, 0.7, 1.35),
        nose_size=clipped(1, 0.12, 0.7, 1.35),
        eye_spacing=clipped(1, 0.05, 0.88, 1.12),
        eye_size=clipped(1, 0.08, 0.8, 1.2),
        eye_color=choice(list(EYE_COLORS), EYE_COLOR_P),
        mouth_width=clipped(1, 0.1, 0.75, 1.25),
        lip_fullness=clipped(1, 0.1, 0.75, 1.25),
        lip_tint=float(rng.beta(1.5, 3.0)),
        smile=smile,
        teeth=teeth,
        ear_size=clipped(1, 0.08, 0.8, 1.2),
        ear_angle_deg=float(rng.uniform(5, 30)),
        eyebrow_thickness=float(rng.uniform(0.15, 1.0)),
        hair_style=style,
        hair_color=choice(list(HAIR_COLORS), HAIR_COLOR_P),
        hair_shade=float(rng.uniform(0.8, 1.2)),
        hair_volume=float(rng.uniform(0.75, 1.3)),
        fringe=fringe,
        glasses=choice(GLASSES, GLASSES_P),
        frame_color=choice(list(FRAME_COLORS), FRAME_COLOR_P),
        beard=choice(BEARDS, BEARD_P),
        shirt_rgb=tuple(float(c) for c in colorsys.hsv_to_rgb(h, s, v)),
        light_azimuth_deg=float(rng.uniform(-60, 60)),
        light_elevation_deg=float(rng.uniform(5, 55)),
    )


def skin_rgb(attrs: HeadAttributes) -> np.ndarray:
    """``[3]`` base skin colour from ``skin_tone`` (ramp) and ``skin_warmth`` (shifts red vs. yellow)."""
    x = float(np.clip(attrs.skin_tone, 0, 1)) * (len(SKIN_RAMP) - 1)
    i = min(int(x), len(SKIN_RAMP) - 2)
    rgb = SKIN_RAMP[i] * (1 - (x - i)) + SKIN_RAMP[i + 1] * (x - i)
    warm = attrs.skin_warmth
    rgb = rgb * np.array([1.0 - 0.02 * warm, 1.0 + 0.01 * warm, 1.0 - 0.08 * warm])
    return np.clip(rgb, 0, 1)


def hair_rgb(attrs: HeadAttributes) -> np.ndarray:
    """``[3]`` hair colour: the named colour times ``hair_shade`` (clipped to [0, 1])."""
    return np.clip(np.array(HAIR_COLORS[attrs.hair_color]) * attrs.hair_shade, 0, 1)
