"""The Inversion panel's form <-> ``inversion.pipeline.InversionSettings``: filling the form from a preset of
``inversion.config`` (the one owner of the recipes ``python -m inversion`` runs), the settings each stage runs
with (the preset's settings with the form's values on top; ``ValueError`` names a bad value), the presets' time
estimates, and the pipeline's messages in the panel's words. The form keeps plain numbers
(``ui_state.inversion``); the typed configs live in ``inversion``.

The form shows, per stage, the loss weights (ID, MSE, LPIPS, SSIM), learning rate, steps and batch size, plus
stage 1's latent space and camera refinement and stage 2's locality weight. Everything else (warm-up and
ramp-down, camera learning rate, stage 2's geometry and view anchors, ``locality_every``, seeds) is the preset's,
exactly as the command line runs it. The GUI differs from ``preset_settings`` only where it must:
``publish_every`` (the panel's "show every" fields), ``networks`` (its weights folder, stand-in and offline
boxes) and ``preprocess`` (the photos were aligned before).
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache
from typing import Mapping

from ui_state.inversion import (
    OFFLINE_LABEL, STAND_IN_LABEL, WEIGHTS_DIR_LABEL, InversionMessage, InversionPanel, StageForm,
)

FORM_RESOLUTION = 512  # the form's values do not depend on the model's resolution; recipes are read at this one


def _weights(f: StageForm):
    from inversion.objective import LossWeights

    return LossWeights(id=f.id_weight, mse=f.mse_weight, lpips=f.lpips_weight, ssim=f.ssim_weight)


def networks(p: InversionPanel):
    from inversion.objective import LossNetworks

    return LossNetworks(weights_dir=p.weights_dir.strip() or None, allow_random=p.stand_in_losses,
                        offline=p.offline)


def base_preset(p: InversionPanel) -> str:
    """The preset whose hidden settings apply: the one the form was last filled from."""
    from inversion.config import DEFAULT_PRESET

    return p.based_on or DEFAULT_PRESET


def latent_settings(p: InversionPanel, preprocess):
    """Stage 1's settings (stage 2 off); ``preprocess``: the ``PreprocessConfig`` the photos were aligned with."""
    from inversion.config import preset_settings

    f = p.latent
    base = preset_settings(base_preset(p), resolution=preprocess.resolution, framing=preprocess.framing,
                           tuning=False)
    latent = replace(base.latent, steps=int(f.steps), lr=float(f.lr), space=p.space,  # type: ignore[arg-type]
                     batch_size=int(f.batch_size), losses=_weights(f), refine_cameras=bool(p.refine_cameras))
    return replace(base, preprocess=preprocess, latent=latent, networks=networks(p),
                   publish_every=max(1, int(p.follow_every)))


def tuning_settings(p: InversionPanel, stage1):
    """Stage 2's settings on top of stage 1's (``stage1``: the ``InversionSettings`` stage 1 ran with)."""
    from inversion.config import preset_settings

    f = p.tuning
    base = preset_settings(base_preset(p), resolution=stage1.preprocess.resolution).tuning
    tuning = replace(base, steps=int(f.steps), lr=float(f.lr), batch_size=int(f.batch_size), losses=_weights(f),
                     locality_weight=float(p.locality_weight))
    return replace(stage1, tuning=tuning, networks=networks(p), publish_every=max(1, int(p.publish_every)))


# ---------------------------------------------------------------------------------------------- presets

TIME_BUDGET_S = 600.0  # the default preset is the largest whose estimate fits this (once the speed is known)


def preset_names() -> tuple[str, ...]:
    from inversion.config import PRESET_NAMES

    return PRESET_NAMES


def preset_steps() -> dict[str, tuple[int, int]]:
    """``{preset: (stage 1 steps, stage 2 steps)}`` of ``inversion.config.PRESETS``."""
    from inversion.config import PRESETS

    return {name: (p.latent_steps, p.tuning_steps) for name, p in PRESETS.items()}


def _stage_form(cfg) -> StageForm:
    w = cfg.losses
    return StageForm(id_weight=w.id, mse_weight=w.mse, lpips_weight=w.lpips, ssim_weight=w.ssim, lr=cfg.lr,
                     steps=cfg.steps, batch_size=cfg.batch_size)


@lru_cache(maxsize=None)
def _preset_form(name: str) -> tuple:
    """The form's values of preset ``name``: (stage 1 form, stage 2 form, space, refine cameras, locality)."""
    from inversion.config import preset_settings

    s = preset_settings(name, resolution=FORM_RESOLUTION)
    return (_stage_form(s.latent), _stage_form(s.tuning), s.latent.space, s.latent.refine_cameras,
            s.tuning.locality_weight)


def _form_values(p: InversionPanel) -> tuple:
    return (p.latent, p.tuning, p.space, p.refine_cameras, p.locality_weight)


def fill_form(p: InversionPanel, name: str) -> None:
    """Set every field the form shows from preset ``name`` (``ValueError`` for an unknown one)."""
    latent, tuning, space, refine, locality = _preset_form(name)
    p.latent, p.tuning = replace(latent), replace(tuning)  # copies: the form is edited in place
    p.space, p.refine_cameras, p.locality_weight = space, refine, locality
    p.preset = p.based_on = name


def form_matches(p: InversionPanel, name: str) -> bool:
    """The form holds exactly preset ``name``'s values."""
    return _form_values(p) == _preset_form(name)


def default_preset(device: str, estimates: Mapping[str, float | None] | None = None) -> str:
    """The preset that fits the device: with every preset's estimated seconds known (``estimates``), the
    largest within ``TIME_BUDGET_S``; before that, ``inversion.config.default_preset`` (*quick* on a CPU,
    *standard* on a GPU)."""
    from inversion.config import default_preset as config_default

    if estimates and all(estimates.get(n) is not None for n in preset_names()):
        fits = [n for n in preset_names() if estimates[n] <= TIME_BUDGET_S]
        return fits[-1] if fits else preset_names()[0]
    return config_default(device.split(":")[0])


def preset_run_settings(name: str, preprocess):
    """The ``InversionSettings`` preset ``name`` runs with on photos aligned by ``preprocess`` (a
    ``PreprocessConfig``): what its time estimate is measured with."""
    from inversion.config import preset_settings

    return replace(preset_settings(name, resolution=preprocess.resolution, framing=preprocess.framing),
                   preprocess=preprocess)


def speed_key(settings) -> tuple:
    """What the time of a step depends on, of ``settings`` (an ``InversionSettings`` with both stages): the
    fit resolution, photos per step, the loss terms that are on and the locality cadence of each stage. Runs
    with equal keys run at the same speed; the step counts do not enter."""
    from inversion.preprocess import fit_size

    res = settings.preprocess.resolution
    lat, tun = settings.latent, settings.tuning

    def on(w) -> tuple[str, ...]:
        return tuple(k for k in ("mse", "ssim", "lpips", "id") if getattr(w, k) > 0)

    return (fit_size(res, lat.max_resolution), lat.batch_size, on(lat.losses),
            fit_size(res, tun.max_resolution), tun.batch_size, on(tun.losses), tun.locality_weight > 0,
            tun.locality_every)


def estimate_s(steps: tuple[int, int], seconds_per_step: tuple[float | None, float | None]) -> float | None:
    """Estimated seconds for ``(stage 1, stage 2)`` steps at the measured seconds per step."""
    s1, s2 = seconds_per_step
    return None if s1 is None or s2 is None else steps[0] * s1 + steps[1] * s2


# ---------------------------------------------------------------------------------------------- GUI wording

def missing_weights(p: InversionPanel, form: StageForm) -> InversionMessage | None:
    """What ``form``'s loss terms need that is not on this computer, in the panel's words; None if nothing (the
    files are there, the terms are off, or stand-ins are allowed). Looks only at files, downloads nothing.

    With the offline box ticked a missing file is an ``"error"`` (the stage cannot run: it names the file, its
    folder and address, and the ways out); without it an ``"info"`` note that the file is downloaded on first
    use from its address into its folder.
    """
    from inversion.pretrained import FACENET_WEIGHTS, LPIPS_WEIGHTS, find_weights, torch_home

    if p.stand_in_losses:
        return None
    folder = p.weights_dir.strip() or None
    needed = []
    if form.lpips_weight > 0:
        needed.append(("LPIPS", LPIPS_WEIGHTS[networks(p).lpips_net]))
    if form.id_weight > 0:
        needed.append(("ID", FACENET_WEIGHTS))
    missing = [(what, wf) for what, wf in needed if find_weights(wf, folder, allow_random=True) is None]
    if not missing:
        return None
    one = len(missing) == 1
    terms = " and ".join(what for what, _ in missing)
    if not p.offline:
        files = "; ".join(f"{wf.name} from {wf.url} into {_home(torch_home() / wf.folder)}" for _, wf in missing)
        return InversionMessage(f"The {terms} loss{'' if one else 'es'} will download {'its' if one else 'their'} "
                                f"weight file{'' if one else 's'} on first use: {files}.", "info")
    files = ", ".join(f"{wf.name} in {_home(torch_home() / wf.folder)}" for _, wf in missing)
    urls = " and ".join(wf.url for _, wf in missing)
    return InversionMessage(
        f"The {terms} loss{'' if one else 'es'} need{'s' if one else ''} {'a weight file' if one else 'weight files'} "
        f"that {'is' if one else 'are'} not on this computer, and '{OFFLINE_LABEL}' is ticked: {files} (or in the "
        f"folder you enter in '{WEIGHTS_DIR_LABEL}'; published at {urls}). Untick it to download "
        f"{'it' if one else 'them'}, or set {'its weight' if one else 'their weights'} to 0 to run without "
        f"{'it' if one else 'them'}.", "error")


def _home(path) -> str:
    """``path`` with the home folder written as ``~``."""
    from pathlib import Path

    home = str(Path.home())
    text = str(path)
    return "~" + text[len(home):] if text.startswith(home + "/") else text


_CLI_PHRASES = (  # the pipeline's messages are written for the command line; the panel names its own controls
    (re.compile(r"\(or into a folder you pass with --weights-dir\)"), f"(or into the folder in '{WEIGHTS_DIR_LABEL}')"),
    (re.compile(r"set the loss weight to 0 or pass --random-loss-weights"),
     f"set the loss weight to 0, or tick '{STAND_IN_LABEL}'"),
    (re.compile(r"--weights-dir"), f"'{WEIGHTS_DIR_LABEL}'"),
    (re.compile(r"--random-loss-weights"), f"'{STAND_IN_LABEL}'"),
    (re.compile(r"offline: nothing is downloaded"), f"'{OFFLINE_LABEL}' is ticked"),
    (re.compile(r"--offline"), f"'{OFFLINE_LABEL}'"),
)


def gui_wording(text: str) -> str:
    """A pipeline message with its command-line options replaced by the panel's controls."""
    for pattern, words in _CLI_PHRASES:
        text = pattern.sub(words, text)
    return text


class WeightsCheck:
    """:func:`missing_weights` for both stages' forms, looked at again only when what it depends on changes
    (:attr:`note`: the first stage's message that needs one, or None)."""

    def __init__(self) -> None:
        self._key = None
        self.note: InversionMessage | None = None

    def update(self, p: InversionPanel) -> bool:
        """Check again if the form changed; True when :attr:`note` changed."""
        forms = (p.latent, p.tuning)
        key = (tuple((f.lpips_weight > 0, f.id_weight > 0) for f in forms), p.weights_dir.strip(),
               p.stand_in_losses, p.offline)
        if key == self._key:
            return False
        self._key = key
        note = next((m for m in (missing_weights(p, f) for f in forms) if m is not None), None)
        note, self.note = self.note, note
        return note != self.note


def weights_of(losses) -> dict[str, float]:
    """``inversion.objective.LossWeights`` as term -> weight (the loss plot's labels)."""
    return {"mse": float(losses.mse), "ssim": float(losses.ssim), "lpips": float(losses.lpips),
            "id": float(losses.id)}


def tuning_weights_of(tuning) -> dict[str, float]:
    """A ``TuningConfig``'s weights of every term its total adds (photo terms, anchors, locality)."""
    return {**weights_of(tuning.losses), "geometry": float(tuning.geometry_weight),
            "hidden": float(tuning.hidden_weight), "views": float(tuning.view_weight),
            "locality": float(tuning.locality_weight)}
