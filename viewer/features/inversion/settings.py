"""The Inversion panel's form -> ``inversion.pipeline.InversionSettings`` for one stage (``ValueError`` names a
bad value). The form keeps plain numbers (``ui_state.inversion``); the typed configs live in ``inversion``."""

from __future__ import annotations

from dataclasses import replace

from ui_state.inversion import InversionPanel, StageForm


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
