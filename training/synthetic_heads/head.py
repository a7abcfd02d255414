"""``make_head(seed, attributes) -> GaussianSet``: a procedural head from 3D Gaussians.

The head parts (skin, eyes, ears, hair, beard, glasses) are modelled in *head units* around the head centre and
scaled by :data:`HEAD_SCALE` about the world origin; neck, shoulders and clothes are modelled in world units.
The result follows the project's conventions (core/camera.py): +y up, the face looking toward +z, every
Gaussian centre inside the unit cube ``[-0.5, 0.5]^3``; seen from the default camera (radius 2.7, focal
4.2647) the head fills the frame like an FFHQ-aligned crop. SH degree 0, float32, 8k-12k Gaussians
(median 10k).

The same ``(seed, attributes)`` gives bit-identical Gaussians: ``seed`` drives only the small noise
(sample jitter, skin blotches, hair streaks), ``attributes`` everything visible by design.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.gaussians import GaussianSet
from training.synthetic_heads.attributes import HeadAttributes, sample_attributes
from training.synthetic_heads.body import inside_neck, inside_torso, neck_part, torso_part
from training.synthetic_heads.ears import ear_part
from training.synthetic_heads.eyes import eye_part
from training.synthetic_heads.face import skin_part
from training.synthetic_heads.glasses import glasses_parts
from training.synthetic_heads.hair import beard_part, hair_extras, hair_shell
from training.synthetic_heads.nose import nose_part
from training.synthetic_heads.skull import head_geometry, inside_head
from training.synthetic_heads.surfaces import Part

HEAD_SCALE = 1.18  # head units -> world units
BOUND = 0.5  # every Gaussian centre lies in [-BOUND, BOUND]^3


def head_rng(seed: int, stream: int) -> np.random.Generator:
    """The random stream ``stream`` of head ``seed`` (0: attributes, 1: geometry noise)."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return np.random.default_rng(np.random.SeedSequence([int(seed), stream]))


def random_attributes(seed: int) -> HeadAttributes:
    """The attributes head ``seed`` gets when none are given (:func:`sample_attributes` on stream 0)."""
    return sample_attributes(head_rng(seed, 0))


def make_head_parts(seed: int, attributes: HeadAttributes | None = None) -> dict[str, Part]:
    """The parts of the head by name, in world units (see :func:`make_head`)."""
    a = random_attributes(seed) if attributes is None else attributes
    rng = head_rng(seed, 1)
    g = head_geometry(a)
    skin, surf = skin_part(g, a, rng)
    head: dict[str, Part] = {"skin": skin}
    head["nose"] = nose_part(g, a, rng)
    head["eyes"] = Part.cat([eye_part(g, a, side, rng) for side in (-1.0, 1.0)])
    head["ears"] = Part.cat([ear_part(g, a, side, rng) for side in (-1.0, 1.0)])
    if a.hair_style != "bald":
        head["hair"] = Part.cat([hair_shell(g, a, rng)] + hair_extras(g, a, rng))
    beard = beard_part(g, a, surf, rng)
    if len(beard):
        head["beard"] = beard
    glasses = glasses_parts(g, a, rng)
    if glasses:
        head["glasses"] = Part.cat(glasses)
    parts = {name: _scaled(p, HEAD_SCALE) for name, p in head.items()}
    neck = neck_part(a, rng)
    parts["neck"] = neck.select(~inside_head(g, neck.means / HEAD_SCALE, margin=0.004))
    torso = torso_part(a, rng)
    parts["body"] = torso.select(~inside_neck(torso.means, margin=0.004))
    if "hair" in parts:  # hair hanging into the shoulders is hidden
        parts["hair"] = parts["hair"].select(~inside_torso(parts["hair"].means, margin=0.004))
    return {name: _clip_to_cube(p) for name, p in parts.items()}


@dataclass(frozen=True, eq=False)
class SyntheticHead:
    """A head and what is known about it by construction.

    Attributes:
        seed: the seed it was made from. attributes: its :class:`HeadAttributes`.
        gaussians: ``GaussianSet`` ``[N, ...]``, float32, SH degree 0 (what ``make_head`` returns).
        normals: ``[N, 3]`` float32 outward unit normals of discs on closed surfaces, zero rows for two-sided
            Gaussians (ears, hanging hair, glasses); used to skip discs facing away from a camera.
        parts: part name -> ``slice`` of the Gaussians it owns (skin, eyes, ears, hair, beard, glasses,
            neck, body; absent parts are missing).
    """

    seed: int
    attributes: HeadAttributes
    gaussians: GaussianSet
    normals: torch.Tensor
    parts: dict[str, slice]


def make_head_model(seed: int, attributes: HeadAttributes | None = None) -> SyntheticHead:
    """:func:`make_head` with the attributes, per-Gaussian normals and the part layout."""
    a = random_attributes(seed) if attributes is None else attributes
    parts = make_head_parts(seed, a)
    every = Part.cat(list(parts.values()))
    bounds, start = {}, 0
    for name, p in parts.items():
        bounds[name] = slice(start, start + len(p))
        start += len(p)
    normals = torch.from_numpy(np.ascontiguousarray(every.normal, dtype=np.float32))
    return SyntheticHead(int(seed), a, every.to_gaussians(), normals, bounds)


def make_head(seed: int, attributes: HeadAttributes | None = None) -> GaussianSet:
    """A synthetic head as a float32, SH-degree-0 :class:`GaussianSet` (one scene, ``[N, ...]``).

    Args:
        seed: non-negative int; drives the per-Gaussian noise (and the attributes if none are given).
        attributes: what the head looks like; ``None`` samples them from ``seed``
            (:func:`random_attributes`).
    """
    return make_head_model(seed, attributes).gaussians


def _scaled(p: Part, s: float) -> Part:
    return Part(p.means * s, p.quats, p.scales * s, p.rgb, p.opacity, p.normal)


def _clip_to_cube(p: Part) -> Part:
    return p.select(np.all(np.abs(p.means) <= BOUND, axis=-1))
