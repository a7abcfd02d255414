"""Multi-process training with torch.distributed, launched by torchrun (one process per GPU).

No DistributedDataParallel: as in the official code, rank 0's parameters are broadcast at the start and
gradients are averaged by hand after every accumulation round (one flattened all-reduce per module), so the
generator's unusual parameter use needs no special handling. NCCL on CUDA, gloo on the CPU; a plain
``python -m training`` is one process with no process group at all.
"""

from __future__ import annotations

import os
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
