"""Frozen-dataclass settings to and from plain dicts (JSON files, checkpoints), strictly."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def config_to_dict(config: Any) -> dict[str, Any]:
    """``dataclasses.asdict`` (tuples stay tuples)."""
    return dataclasses.asdict(config)


def config_from_dict(cls: type[T], d: dict[str, Any], what: str) -> T:
    """Build ``cls(**d)``; keys the dataclass does not have, or required fields that are missing, raise a
    ``ValueError`` naming them (``what`` says which kind of settings, e.g. "generator config"). Lists for
    fields whose default is a tuple (JSON has no tuples) become tuples."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(d) - set(fields)
    if unknown:
        raise ValueError(f"unknown {what} keys: {sorted(unknown)}")
    missing = [n for n, f in fields.items() if n not in d and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ValueError(f"{what} needs {', '.join(repr(m) for m in missing)}")
    d = {k: tuple(v) if isinstance(v, list) and isinstance(fields[k].default, tuple) else v for k, v in d.items()}
    return cls(**d)
