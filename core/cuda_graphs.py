"""CUDA graphs for optimisation loops that call the same network with the same shapes every step.

An inversion step is launch-bound: the generator's forward and backward are thousands of small kernels, so
the host spends ~10x the GPU time launching them. :func:`graphed_synthesis` records ``G.synthesis`` once
(forward and backward, with ``torch.cuda.make_graphed_callables``) and replays it, so each step launches two
graphs instead. Rasterisation stays outside (its buffer sizes depend on the data), as do the optimisers.

Rules that follow from replaying recorded kernels (checked where possible):

- shapes, dtypes and ``requires_grad`` flags are fixed at capture: the input ``ws`` shape and whether it takes
  a gradient; which generator parameters take gradients (stage 1: none; stage 2: all);
- the outputs live in static buffers that the next call overwrites: call a graphed function once per
  backward pass (batch several latents into one call instead of calling twice);
- parameters must be updated in place (every torch optimiser does), never replaced;
- no autocast weight cache: the bf16 feature path is not captured (use float32, with TF32 if wanted).

Everything here needs CUDA; callers fall back to the eager path elsewhere, and when ``SPLATHEAD_CUDA_GRAPHS=0``
is set in the environment (an escape hatch should a driver or torch version refuse a capture).
"""

from __future__ import annotations

import os
from typing import Callable

import torch
from torch import nn

from core.gaussians import GaussianSet
from core.generator import Generator, GeneratorOutput


ENV_SWITCH = "SPLATHEAD_CUDA_GRAPHS"


class _SynthesisTensors(nn.Module):
    """``ws -> (means, quats, log_scales, opacity_logits, sh)`` of ``G.synthesis`` (contiguous)."""

    def __init__(self, G: Generator) -> None:
        super().__init__()
        self.G = G

    def forward(self, ws: torch.Tensor) -> tuple[torch.Tensor, ...]:
        g = self.G.synthesis(ws).gaussians
        return tuple(t.contiguous() for t in (g.means, g.quats, g.log_scales, g.opacity_logits, g.sh))


def cuda_graphs_usable(G: Generator) -> str | None:
    """None if :func:`graphed_synthesis` can capture ``G`` here, else the reason (a sentence)."""
    device = next(G.parameters()).device
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return f"CUDA graphs are switched off ({ENV_SWITCH}=0)"
    if device.type != "cuda":
        return f"CUDA graphs need the generator on a CUDA device (it is on {device})"
    if G.feature_dtype is not None:
        return "the bf16 feature path uses autocast's weight cache, which CUDA graphs cannot capture"
    if any(b.requires_grad for b in G.buffers()):
        return "a generator buffer requires grad"
    return None


def graphed_synthesis(G: Generator, ws_shape: tuple[int, ...], ws_requires_grad: bool,
                      warmup: int = 3) -> Callable[[torch.Tensor], GaussianSet]:
    """``ws [ws_shape] -> GaussianSet`` of ``G.synthesis``, forward and backward replayed from CUDA graphs.

    Args:
        G: the generator on CUDA; its parameters' ``requires_grad`` flags at this call decide which of them
            receive gradients (``.grad`` accumulates as usual).
        ws_shape: ``(B, num_ws or 1, w_dim)`` of every later input.
        ws_requires_grad: whether the inputs take a gradient (stage 1) or not (stage 2's fixed pivot).
        warmup: eager iterations before capture (cuDNN / allocator warm-up).

    The returned GaussianSet's tensors are the graph's static buffers (see the module docstring).
    """
    reason = cuda_graphs_usable(G)
    if reason is not None:
        raise RuntimeError(reason)
    device = next(G.parameters()).device
    module = _SynthesisTensors(G)
    sample = torch.zeros(ws_shape, device=device, dtype=torch.float32)
    sample += G.mapping.w_avg.to(device, torch.float32)  # a realistic latent: same code path as later ones
    sample.requires_grad_(ws_requires_grad)
    graphed = torch.cuda.make_graphed_callables(module, (sample,), num_warmup_iters=warmup,
                                                allow_unused_input=True)  # the mapping network is not used

    def call(ws: torch.Tensor) -> GaussianSet:
        if tuple(ws.shape) != tuple(ws_shape):
            raise ValueError(f"this graph was captured for ws {list(ws_shape)}, got {list(ws.shape)}")
        return GaussianSet(*graphed(ws))

    return call


def graphed_generator_no_grad(G: Generator, z_shape: tuple[int, int], update_w_avg: bool,
                              warmup: int = 3) -> Callable[[torch.Tensor], GeneratorOutput]:
    """``z [z_shape] -> G(z, update_w_avg=update_w_avg)`` without gradients, replayed from one CUDA graph.

    For the trainer's D step, which draws fakes from the generator it is training: the mapping and the
    synthesis are thousands of small kernels, launched from Python at every step; the graph launches them
    at once. The parameters are read where they live, so in-place optimizer steps are seen by every replay,
    and the ``w_avg`` update (``update_w_avg``) is part of the graph. ``w_avg`` is as before after the warm-up.
    The returned output's tensors are static buffers that the next call overwrites (module docstring).
    """
    reason = cuda_graphs_usable(G)
    if reason is not None:
        raise RuntimeError(reason)
    device = next(G.parameters()).device
    static_z = torch.zeros(z_shape, device=device)  # zeros: drawing it would move the CUDA RNG on
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    w_avg = G.mapping.w_avg.clone()
    with torch.no_grad(), torch.cuda.stream(side):
        for _ in range(warmup):  # the captured path, w_avg update included, which is undone afterwards
            G(static_z, update_w_avg=update_w_avg)
        G.mapping.w_avg.copy_(w_avg)
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    # thread_local: other threads of the process may use CUDA meanwhile (NCCL's watchdog in multi-GPU runs)
    with torch.no_grad(), torch.cuda.graph(graph, capture_error_mode="thread_local"):
        out = G(static_z, update_w_avg=update_w_avg)

    def call(z: torch.Tensor) -> GeneratorOutput:
        if tuple(z.shape) != tuple(z_shape):
            raise ValueError(f"this graph was captured for z {list(z_shape)}, got {list(z.shape)}")
        static_z.copy_(z)
        graph.replay()
        return out

    return call


def graphed_loss(fn: Callable[..., dict[str, torch.Tensor]], pred_shape: tuple[int, ...],
                 *sample_inputs: torch.Tensor, warmup: int = 3) -> Callable[..., dict[str, torch.Tensor]]:
    """``(pred, *inputs) -> fn(pred, *inputs)`` (a dict of loss tensors), forward and backward replayed from
    CUDA graphs.

    ``pred [pred_shape]`` takes a gradient; ``inputs`` (targets, weights, ...) take none and keep the shapes of
    ``sample_inputs`` (their values may change: they are copied in on every call). ``fn``'s networks must be
    frozen (no parameter takes a gradient)."""
    device = sample_inputs[0].device if sample_inputs else torch.device("cuda")
    sample = torch.rand(pred_shape, device=device, requires_grad=True)
    others = tuple(x.detach() for x in sample_inputs)
    return torch.cuda.make_graphed_callables(fn, (sample, *others), num_warmup_iters=warmup,
                                             allow_unused_input=True)
