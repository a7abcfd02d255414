"""Waiting inside an ImGui test-engine test: yield frames until a condition holds, or fail naming what was
awaited. Each GUI test module makes its own ``_wait`` with its default timeout (``waiter(120.0)``)."""

from __future__ import annotations

import time
from typing import Callable


def waiter(default_timeout: float) -> Callable[..., None]:
    """``_wait(ctx, condition, what, timeout=default_timeout, state=None)``: yield frames until ``condition()``
    is true; after ``timeout`` seconds fail with "timed out waiting for <what>" (plus ``state()`` if given)."""

    def wait(ctx, condition: Callable[[], object], what: str, timeout: float = default_timeout,
             state: Callable[[], object] | None = None) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}" + (f": {state()}" if state else "")
            ctx.yield_()

    return wait
