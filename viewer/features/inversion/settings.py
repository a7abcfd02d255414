"""The Inversion panel's form -> ``inversion.pipeline.InversionSettings`` for one stage (``ValueError`` names a
bad value), the presets' step counts (from the pipeline's own configs) and time estimates, and the pipeline's
messages in the panel's words. The form keeps plain numbers (``ui_state.inversion``); the typed configs live in
``inversion``."""

from __future__ import annotations

import re
from dataclasses import replace

from ui_state.inversion import STAND_IN_LABEL, WEIGHTS_DIR_LABEL, InversionPanel, StageForm


def _weights(f: StageForm):
    from inversion.objective import LossWeights

    return LossWeights(f.id_weight, f.mse_weight, f.lpips_weight)


def networks(p: InversionPanel):
    from inversion.objective import LossNetworks

    return LossNetworks(weights_dir=p.weights_dir.strip() or None, allow_random=p.stand_in_losses)


def latent_settings(p: InversionPanel, preprocess):
    """Stage 1's settings (stage 2 off); ``preprocess``: the ``PreprocessConfig`` the photos were aligned with."""
    from inversion.latent_search import LatentConfig
    from inversion.pipeline import InversionSettings

    f = p.latent
    latent = LatentConfig(steps=int(f.steps), lr=float(f.lr), space=p.space,  # type: ignore[arg-type]
                          batch_size=int(f.batch_size), losses=_weights(f), refine_cameras=p.refine_cameras,
                          preview_every=0)
    return InversionSettings(preprocess=preprocess, latent=latent, tuning=None, networks=networks(p),
                             publish_every=max(1, int(p.follow_every)))


def tuning_settings(p: InversionPanel, stage1):
    """Stage 2's settings on top of stage 1's (``stage1``: the ``InversionSettings`` stage 1 ran with)."""
    from inversion.pivotal_tuning import TuningConfig

    f = p.tuning
    tuning = TuningConfig(steps=int(f.steps), lr=float(f.lr), batch_size=int(f.batch_size), losses=_weights(f),
                          locality_weight=float(p.locality_weight), preview_every=0)
    return replace(stage1, tuning=tuning, networks=networks(p), publish_every=max(1, int(p.publish_every)))


# ---------------------------------------------------------------------------------------------- presets

TIME_BUDGET_S = 600.0  # the default preset is the largest whose estimate fits this (once the speed is known)


def preset_steps() -> dict[str, tuple[int, int]]:
    """``{preset: (stage 1 steps, stage 2 steps)}`` from the pipeline's own defaults: *thorough* is
    ``LatentConfig`` / ``TuningConfig`` as the CLI runs them (PTI-like 500 + 300), *standard* 2/5 and 1/3 of
    that, *quick* a tenth."""
    from inversion.latent_search import LatentConfig
    from inversion.pivotal_tuning import TuningConfig

    L, T = LatentConfig().steps, TuningConfig().steps
    return {"quick": (max(1, L // 10), max(1, T // 10)), "standard": (max(1, 2 * L // 5), max(1, T // 3)),
            "thorough": (L, T)}


def default_preset(device: str, seconds_per_step: tuple[float | None, float | None] = (None, None)) -> str:
    """The preset that fits the device: with a measured speed, the largest whose estimate is within
    ``TIME_BUDGET_S``; before that, *quick* on a CPU and *standard* on a GPU."""
    s1, s2 = seconds_per_step
    if s1 is not None and s2 is not None:
        fits = [n for n, (a, b) in preset_steps().items() if a * s1 + b * s2 <= TIME_BUDGET_S]
        return fits[-1] if fits else "quick"
    return "quick" if device.startswith("cpu") else "standard"


def estimate_s(steps: tuple[int, int], seconds_per_step: tuple[float | None, float | None]) -> float | None:
    """Estimated seconds for ``(stage 1, stage 2)`` steps at the measured seconds per step."""
    s1, s2 = seconds_per_step
    return None if s1 is None or s2 is None else steps[0] * s1 + steps[1] * s2


# ---------------------------------------------------------------------------------------------- GUI wording

def missing_weights(p: InversionPanel, form: StageForm) -> str:
    """Why ``form``'s loss terms cannot run (their weight files are missing), in the panel's words; '' if they
    can (the files are there, the terms are off, or stand-ins are allowed). Looks only at files."""
    from inversion.pretrained import (
        FACENET_FILE, FACENET_URL, LPIPS_FILES, LPIPS_URLS, find_weights, torch_home,
    )

    if p.stand_in_losses:
        return ""
    folder = p.weights_dir.strip() or None
    lpips_net = networks(p).lpips_net
    needed = []
    if form.lpips_weight > 0:
        needed.append(("LPIPS", LPIPS_FILES[lpips_net], torch_home() / "hub" / "checkpoints", LPIPS_URLS[lpips_net]))
    if form.id_weight > 0:
        needed.append(("ID", FACENET_FILE, torch_home() / "checkpoints", FACENET_URL))
    missing = [n for n in needed if find_weights(n[1], n[2], folder, n[0], n[3], allow_random=True) is None]
    if not missing:
        return ""
    files = ", ".join(f"{name} in {_home(std)}" for what, name, std, url in missing)
    urls = " and ".join(url for *_, url in missing)
    terms = " and ".join(what for what, *_ in missing)
    one = len(missing) == 1
    return (f"The {terms} loss{'' if one else 'es'} need{'s' if one else ''} {'a weight file' if one else 'weight files'} "
            f"that {'is' if one else 'are'} not on this computer: {files} (or in the folder you enter in '{WEIGHTS_DIR_LABEL}'; "
            f"published at {urls}). Or set {'its weight' if one else 'their weights'} to 0 to run without "
            f"{'it' if one else 'them'}.")


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
)


def gui_wording(text: str) -> str:
    """A pipeline message with its command-line options replaced by the panel's controls."""
    for pattern, words in _CLI_PHRASES:
        text = pattern.sub(words, text)
    return text


class WeightsCheck:
    """:func:`missing_weights` for stage 1's form, looked at again only when what it depends on changes."""

    def __init__(self) -> None:
        self._key = None
        self.problem = ""

    def update(self, p: InversionPanel) -> bool:
        """Check again if the form changed; True when :attr:`problem` changed."""
        f = p.latent
        key = (f.lpips_weight > 0, f.id_weight > 0, p.weights_dir.strip(), p.stand_in_losses)
        if key == self._key:
            return False
        self._key = key
        problem, self.problem = self.problem, missing_weights(p, f)
        return problem != self.problem


def weights_of(losses) -> dict[str, float]:
    """``inversion.objective.LossWeights`` as term -> weight (the loss plot's labels)."""
    return {"mse": float(losses.mse), "lpips": float(losses.lpips), "id": float(losses.id)}
