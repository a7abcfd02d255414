"""Keeping the host ahead of the GPU in the training step: non-blocking host-to-device copies and a
device-side record of the first non-finite gradient or loss.

A training step queues a few thousand kernels; every ``.item()``, ``bool(tensor)`` or copy from pageable
host memory makes the host wait until the GPU has drained its queue, and the GPU then idles while the host
queues the next kernels. The step's own checks therefore live on the device and are read late.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

FAIL_G, FAIL_D, FAIL_R1, FAIL_LOSS = 1, 2, 3, 4
FAILURES = {FAIL_G: "G", FAIL_D: "D", FAIL_R1: "D (R1)", FAIL_LOSS: "loss"}
ADVICE = "Lower the learning rates or raise gamma, then resume."


def to_device(t: torch.Tensor, device: torch.device, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Copy a host tensor to ``device`` without making the host wait (pinned staging and a non-blocking copy
    on CUDA; a plain ``.to`` elsewhere). The pinned block is not reused before the copy has finished (the
    caching host allocator records the copy's stream)."""
    if device.type == "cuda" and t.device.type == "cpu":
        t = t.pin_memory().to(device, non_blocking=True)
    return t.to(device, dtype) if dtype is not None else t.to(device)


class FailureFlag:
    """The first non-finite gradient or loss of a run, kept on the device.

    :meth:`mark` records (what, step, losses) of the first failure without a sync; :meth:`found_inf` is the
    0/1 float that a fused Adam step takes (``optimizer.found_inf``) to skip its update on the device, so once
    anything failed no weight changes any more. :meth:`read` returns the failure's message or None: with
    ``wait`` it waits for the device; without, it looks at the newest copy that has already arrived (queued
    by earlier reads) and never blocks. On devices other than CUDA every read is immediate.

    Attributes:
        code, step: 0-dim int64 device tensors (code 0: no failure; else FAIL_*); stats: the losses of the
            failed step ``[len(stat_keys)]`` (for a loss failure).
    """

    def __init__(self, device: torch.device, stat_keys: Sequence[str]) -> None:
        self.device, self.stat_keys = device, tuple(stat_keys)
        self.code = torch.zeros((), dtype=torch.int64, device=device)
        self.step = torch.zeros((), dtype=torch.int64, device=device)
        self.stats = torch.zeros(len(self.stat_keys), device=device)
        self._pending: list[tuple[torch.cuda.Event, torch.Tensor]] = []

    def mark(self, ok: torch.Tensor, code: int, step: int, stats: torch.Tensor | None = None) -> None:
        """Record failure ``code`` at ``step`` where the boolean 0-dim ``ok`` is False (first failure wins)."""
        fail = ~ok & (self.code == 0)
        self.code = torch.where(fail, code, self.code)
        self.step = torch.where(fail, step, self.step)
        if stats is not None:
            self.stats = torch.where(fail, stats.float(), self.stats)

    def found_inf(self) -> torch.Tensor:
        """``[]`` float32 on the device: 1.0 once anything failed, else 0.0."""
        return (self.code != 0).float()

    def read(self, wait: bool = False) -> str | None:
        packed = torch.cat([self.code[None].double(), self.step[None].double(), self.stats.double()])
        if self.device.type != "cuda":
            return self._message(packed)
        host = torch.empty(packed.shape, dtype=packed.dtype, pin_memory=True)
        host.copy_(packed, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        self._pending.append((event, host))
        if wait:
            event.synchronize()
        arrived = [(event.query(), host) for event, host in self._pending]
        self._pending = [pending for pending, (ok, _) in zip(self._pending, arrived) if not ok]
        done = [host for ok, host in arrived if ok]
        return self._message(done[-1]) if done else None  # the flag is sticky: the newest copy says all

    def _message(self, packed: torch.Tensor) -> str | None:
        values = packed.tolist()
        code, step = int(values[0]), int(values[1])
        if code == 0:
            return None
        if code == FAIL_LOSS:
            bad = ", ".join(f"{k}={v:.4g}" for k, v in zip(self.stat_keys, values[2:]))
            return f"non-finite loss at step {step}: {bad}. Stopped; the last snapshot is intact. {ADVICE}"
        return (f"non-finite {FAILURES[code]} gradients at step {step}; the weights were not updated and the "
                f"last snapshot is intact. {ADVICE}")
