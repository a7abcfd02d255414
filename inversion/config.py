"""Inversion presets: ``quick``, ``standard`` (the default) and ``thorough``, each an :class:`InversionSettings`
recipe with its measured cost.

The recipes differ in step counts, photos per step and stage 2's learning rate; what every preset shares was
chosen on the ground-truth decomposition (bench/inversion_groundtruth.py, docs/inversion.md): stage 1 in W
with MSE + SSIM (+ LPIPS/ID when their weights are there), camera refinement, no latent noise; stage 2 with a
light geometry anchor (0.01), the view anchor (0.1) and PTI's locality regulariser (0.1).

    settings = preset_settings("standard", resolution=G.config.resolution)
    settings = preset_settings("quick", resolution=128, offline=True)   # MSE + SSIM only: no loss networks
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from inversion.framing import SYNTHETIC_HEADS, FaceFraming
from inversion.latent_search import LatentConfig
from inversion.objective import LossNetworks, LossWeights
from inversion.pipeline import InversionSettings
from inversion.pivotal_tuning import TuningConfig
from inversion.preprocess import PreprocessConfig

PRESET_NAMES = ("quick", "standard", "thorough")
DEFAULT_PRESET = "standard"
CPU_DEFAULT_PRESET = "quick"


def default_preset(device_type: str) -> str:
    """The preset a panel starts with: ``quick`` on the CPU (about a minute on 2 cores), ``standard`` on a GPU."""
    return CPU_DEFAULT_PRESET if device_type == "cpu" else DEFAULT_PRESET


@dataclass(frozen=True)
class Preset:
    """A named recipe.

    Attributes:
        name: ``quick`` / ``standard`` / ``thorough``.
        latent_steps, tuning_steps: stage 1 / stage 2 steps.
        batch_size: photos per step (both stages).
        tuning_lr: stage 2's learning rate (higher for the short ``quick`` run).
        locality_every: stage 2 applies the locality regulariser every this many steps (2 halves its cost
            on the CPU; on a GPU only 1 runs from CUDA graphs).
        pretrained_losses: LPIPS and ID are on (their networks are downloaded on first use); False: MSE + SSIM
            only, nothing to download or run besides the generator (``quick``: what a laptop CPU can afford).
        summary: one line for a user: what it is for and what it costs (measured; see docs/inversion.md).
        max_resolution: both stages fit at most at this many px (0: the aligned photos' own). ``quick`` fits
            at 128: on the CPU the render's cost grows with the pixels, and the default model v2 is 256 px.
        seconds_cpu_default: measured wall time on the default model with 2 CPU cores, one photo, offline
            losses (None: not measured).
        seconds_gpu_512: measured wall time for a cgs512 model on one H200, one photo, all losses (None: not
            measured).
    """

    name: str
    latent_steps: int
    tuning_steps: int
    batch_size: int
    tuning_lr: float
    locality_every: int
    pretrained_losses: bool
    summary: str
    max_resolution: int = 0
    seconds_cpu_default: float | None = None
    seconds_gpu_512: float | None = None


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("quick", 60, 30, 2, 1e-3, 2, False,
           "a first look: the pose and a likeness, MSE + SSIM only (no downloads), fitted at 128 px; the "
           "default on the CPU", max_resolution=128),
    Preset("standard", 200, 100, 4, 3e-4, 1, True, "the default on a GPU: a close fit in seconds"),
    Preset("thorough", 500, 300, 4, 3e-4, 1, True, "PTI's budget: the closest fit"),
)}


def offline_weights(w: LossWeights) -> LossWeights:
    """``w`` without the terms that need downloaded networks (LPIPS, ID)."""
    return dataclasses.replace(w, lpips=0.0, id=0.0)


def preset_settings(name: str = DEFAULT_PRESET, *, resolution: int, framing: FaceFraming = SYNTHETIC_HEADS,
                    networks: LossNetworks = LossNetworks(), offline: bool = False, tuning: bool = True,
                    publish_every: int = 0) -> InversionSettings:
    """The :class:`InversionSettings` of preset ``name`` for a model of ``resolution`` px.

    ``offline=True`` drops LPIPS and ID (no pretrained networks needed), as the ``quick`` preset always does;
    ``tuning=False`` skips stage 2.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESET_NAMES)}")
    p = PRESETS[name]
    latent = LatentConfig(steps=p.latent_steps, batch_size=p.batch_size, preview_every=0,
                          max_resolution=p.max_resolution)
    tune = TuningConfig(steps=p.tuning_steps, lr=p.tuning_lr, batch_size=p.batch_size,
                        locality_every=p.locality_every, preview_every=0, max_resolution=p.max_resolution)
    if offline or not p.pretrained_losses:
        latent = dataclasses.replace(latent, losses=offline_weights(latent.losses))
        tune = dataclasses.replace(tune, losses=offline_weights(tune.losses))
    return InversionSettings(preprocess=PreprocessConfig(framing=framing, resolution=resolution), latent=latent,
                             tuning=tune if tuning else None, networks=networks, publish_every=publish_every)
