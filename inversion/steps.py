"""What both stages share: the learning-rate schedule, the step record they yield, rendering the target views,
and picking each step's images.

Both stages are Python generators of :class:`InversionStep`. Cancel one by setting the ``threading.Event``
passed as ``cancel`` (checked before every step; the stage then returns after yielding nothing more) or by
calling ``.close()`` on the generator. The last step yielded holds the result.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Iterator, Literal

import numpy as np
import torch

from core.camera import Cameras
from core.generator import Generator
from core.latent_fit import Schedule  # noqa: F401  (re-exported: both stages use it)
from core.render import render

Stage = Literal["latent", "tuning"]


@dataclass(frozen=True, eq=False)
class InversionStep:
    """One optimisation step, as yielded by both stages.

    Attributes:
        stage: ``"latent"`` (stage 1) or ``"tuning"`` (stage 2).
        step: 1-based index of the step just taken; total_steps: the planned number.
        losses: term name -> value of this step (``total``, ``mse``, ``ssim`` (as 1 - SSIM), ``lpips``,
            ``id``; tuning adds its regularisers), before the update.
        lr: learning rate used.
        ws: ``[1, num_ws, w_dim]`` detached CPU copy of the latent after the update (the pivot in stage 2).
        cameras: ``[N]`` detached CPU cameras of the N target photos after the update.
        preview: ``uint8 [R, R, 3]`` render of this step's first image (before the update), or None when
            previews are off for this step.
        preview_index: which target photo ``preview`` shows.
        generator: stage 2 only: the tuned copy (live object; the original is never modified).
    """

    stage: Stage
    step: int
    total_steps: int
    losses: dict[str, float]
    lr: float
    ws: torch.Tensor
    cameras: Cameras
    preview: np.ndarray | None
    preview_index: int
    generator: Generator | None = None


def render_views(G: Generator, ws: torch.Tensor, cameras: Cameras, resolution: int) -> torch.Tensor:
    """``ws [1 or B, num_ws, w_dim]`` seen from ``cameras [B]`` -> ``[B, 3, R, R]`` RGB on white (differentiable)."""
    B = cameras.batch_shape[0]
    out = G.synthesis(ws.expand(B, -1, -1))
    rgb = render(out.gaussians, cameras.reshape(B, 1), resolution, resolution, background=[1.0, 1.0, 1.0],
                 mode="rgb").color
    return rgb[:, 0].permute(0, 3, 1, 2)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """``[3, H, W]`` in [0, 1] -> ``uint8 [H, W, 3]``."""
    return (image.detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)


def batch_indices(n: int, batch_size: int, rng: torch.Generator) -> torch.Tensor:
    """The target images of one step: all of them when ``batch_size >= n``, else a random subset."""
    if batch_size >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=rng)[:batch_size]


def cancelled(cancel: threading.Event | None) -> bool:
    return cancel is not None and cancel.is_set()


def last_step(steps: Iterator[InversionStep]) -> InversionStep | None:
    """Run a stage to the end (or until cancelled) and return its last step (None if it took none)."""
    last = None
    for last in steps:
        pass
    return last
