"""Multi-process training with torch.distributed, launched by torchrun (one process per GPU).

No DistributedDataParallel: as in the official code, rank 0's parameters are broadcast at the start and
gradients are averaged by hand after every accumulation round (one flattened all-reduce per module), so the
generator's unusual parameter use needs no special handling. NCCL on CUDA, gloo on the CPU; a plain
``python -m training`` is one process with no process group at all.

A rank that fails must not leave the others waiting in a collective until the NCCL timeout (10 minutes or
more): :class:`RankFailureWatch` publishes the first failure in the process group's key-value store, and a
thread on every rank polls it (every 0.5 s) and ends its process when another rank failed (rank 0 first
records the error in the run directory). Every rank thus stops within about a second.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    """This process's place: ``rank`` of ``world_size`` processes, on ``device``."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the process group torchrun describes (``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_*``), or
    run alone. ``device``: "auto" (CUDA when available), "cpu" or "cuda"."""
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but torch sees no CUDA device")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = torch.device("cuda", local) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", rank=rank, world_size=world)
    return DistInfo(rank, world, dev)


def broadcast_module(module: nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank."""
    if not dist.is_initialized():
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src=0)


def average_gradients(module: nn.Module, world_size: int) -> None:
    """All-reduce the gradients of ``module`` (one flattened buffer) and divide by ``world_size``.
    Missing gradients count as zero so every rank sends the same layout."""
    if world_size <= 1 or not dist.is_initialized():
        return
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    dist.all_reduce(flat)
    flat /= world_size
    offset = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
        offset += n


def all_reduce_mean(values: torch.Tensor, world_size: int) -> torch.Tensor:
    """Mean of a tensor over ranks (for logged statistics)."""
    if world_size <= 1 or not dist.is_initialized():
        return values
    values = values.clone()
    dist.all_reduce(values)
    return values / world_size


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


EXIT_PEER_FAILED = 4  # exit status of a rank that stopped because another rank failed
_FAILED_KEY = "splathead/failed"
_FAILURES_KEY = "splathead/failures"


class RankFailureWatch:
    """Make every rank stop within seconds when one fails (see the module docstring).

    Args:
        info: this process's place.
        on_peer_failure: called on the watch thread with the failing rank's message before this process
            exits (rank 0 writes error.txt and status.json there); exceptions in it are printed and ignored.
        poll_s: how often the store is asked.
        grace_s: a rank that failed itself exits at the latest this long after publishing, should its own
            clean-up hang (e.g. tearing down NCCL while peers are gone).
    With one process (or no process group) it does nothing.
    """

    def __init__(self, info: DistInfo, on_peer_failure: Callable[[str], None], poll_s: float = 0.5,
                 grace_s: float = 30.0) -> None:
        self.info, self.on_peer_failure, self.poll_s, self.grace_s = info, on_peer_failure, poll_s, grace_s
        self._store = None
        if info.world_size > 1 and dist.is_initialized():
            from torch.distributed import distributed_c10d

            self._store = distributed_c10d._get_default_store()  # the store every rank joined
        self._stop = threading.Event()
        self._failed_at: float | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._store is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="rank-failure-watch", daemon=True)
        self._thread.start()

    def publish(self, message: str) -> bool:
        """Record this rank's failure for the others; True when it is the first failure of the run (the
        others failing afterwards are usually consequences and do not overwrite it)."""
        if self._store is None:
            return True
        self._failed_at = time.monotonic()
        try:
            first = self._store.add(_FAILURES_KEY, 1) == 1
            if first:
                self._store.set(_FAILED_KEY, f"rank {self.info.rank}: {message}")
            return first
        except Exception as exc:  # noqa: BLE001 - the store itself may be gone; the others time out then
            print(f"rank {self.info.rank}: could not tell the other ranks about the failure: {exc}",
                  file=sys.stderr, flush=True)
            return True

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            if self._failed_at is not None:  # this rank failed: it is shutting down on its own
                if time.monotonic() - self._failed_at > self.grace_s:
                    os._exit(1)
                continue
            try:
                if not self._store.check([_FAILED_KEY]):
                    continue
                message = self._store.get(_FAILED_KEY).decode("utf-8", errors="replace")
            except Exception:  # noqa: BLE001 - store gone (rank 0 exited): the collectives fail on their own
                continue
            if self._stop.is_set() or self._failed_at is not None:
                return
            print(f"rank {self.info.rank}: stopping because {message}", file=sys.stderr, flush=True)
            try:
                self.on_peer_failure(message)
            except Exception as exc:  # noqa: BLE001
                print(f"rank {self.info.rank}: while recording the failure: {exc}", file=sys.stderr, flush=True)
            sys.stderr.flush()
            os._exit(EXIT_PEER_FAILED)
