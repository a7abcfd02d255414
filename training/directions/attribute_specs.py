"""The attributes the classifier learns from the synthetic dataset, and how each is read from a record.

Every attribute becomes an ``"attribute"`` slider of the same name. Binary ones are scored as a probability
(sigmoid of the classifier's logit) and fitted with a logistic boundary; continuous ones are scored in their
own units and fitted with a ridge regression (:mod:`core.editing.boundary`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping

import numpy as np

from training.synthetic_heads.attributes import HeadAttributes, hair_rgb

AttributeKind = Literal["binary", "continuous"]


@dataclass(frozen=True)
class AttributeSpec:
    """Attributes:
        name: slider / column name.
        kind: ``"binary"`` (target 0/1, score = probability) or ``"continuous"`` (score in ``units``).
        read: ``HeadAttributes -> float | None`` (None: not defined for this head, e.g. hair colour of a
            bald head; such images do not train this output).
        units: what the score means.
    """

    name: str
    kind: AttributeKind
    read: Callable[[HeadAttributes], float | None]
    units: str


def _hair_lightness(a: HeadAttributes) -> float | None:
    return None if a.hair_style == "bald" else float(np.mean(hair_rgb(a)))


ATTRIBUTES: tuple[AttributeSpec, ...] = (
    AttributeSpec("has_glasses", "binary", lambda a: float(a.glasses != "none"), "probability of any glasses"),
    AttributeSpec("has_beard", "binary", lambda a: float(a.beard != "none"), "probability of any beard/stubble"),
    AttributeSpec("smile", "continuous", lambda a: float(a.smile), "smile 0 (neutral) .. 1 (broad)"),
    AttributeSpec("skin_tone", "continuous", lambda a: float(a.skin_tone), "0 lightest .. 1 darkest skin"),
    AttributeSpec("hair_lightness", "continuous", _hair_lightness, "mean RGB of the hair colour, 0..1"),
)


def targets(record: Mapping[str, Any], specs: tuple[AttributeSpec, ...] = ATTRIBUTES) -> tuple[np.ndarray, np.ndarray]:
    """``(values [A] float32, known [A] bool)`` for one attributes.jsonl ``attributes`` record."""
    a = HeadAttributes.from_dict(record)
    vals = [s.read(a) for s in specs]
    return (np.array([0.0 if v is None else v for v in vals], dtype=np.float32),
            np.array([v is not None for v in vals], dtype=bool))
