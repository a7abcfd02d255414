"""Shape and value checks for tensors at public boundaries.

Raise ``ValueError``/``TypeError`` with a message that names the argument, the expected shape and the
actual one, so a user who passes a wrong tensor learns exactly what is wrong.
"""

from __future__ import annotations

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_tensor(x: object, name: str) -> torch.Tensor:
    """Return ``x`` if it is a floating-point tensor, else raise ``TypeError`` naming ``name``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    return x


def check_trailing_shape(x: torch.Tensor, trailing: tuple[int | None, ...], name: str) -> None:
    """Check that the last dims of ``x`` are ``trailing`` (``None`` matches any size).

    Example: ``check_trailing_shape(means, (None, 3), "means")`` accepts ``[N, 3]`` and ``[B, N, 3]``.
    """
    want = " x ".join("*" if t is None else str(t) for t in trailing)
    if x.dim() < len(trailing):
        raise ValueError(f"{name} must have shape [..., {want}], got {list(x.shape)}")
    for got, exp in zip(x.shape[x.dim() - len(trailing):], trailing):
        if exp is not None and got != exp:
            raise ValueError(f"{name} must have shape [..., {want}], got {list(x.shape)}")


def check_finite(x: torch.Tensor, name: str) -> None:
    """Raise ``ValueError`` if ``x`` holds NaN or Inf, saying how many and where the first one is."""
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        count = int(bad.sum())
        first = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(f"{name} has {count} non-finite value(s) (NaN/Inf); first at index {first}")
