"""The Inversion panel's presets and time estimates: how fast the two stages run on this device.

The speed is measured, not guessed: after preprocessing, a short worker job runs a few throw-away steps of each
stage with the panel's settings (``stages.speed_job``), once at every resolution a preset fits at
(``quick`` fits a 256 px model at 128 px, ``inversion.config.Preset.max_resolution``); every finished real
run then replaces the figure of its stage at its resolution with its own average. Estimate = seconds per step
x steps at the preset's resolution. The presets (quick / standard / thorough) are
``inversion.config.PRESETS``: choosing one fills the whole form (``settings.fill_form``); the default is the
largest that fits ``settings.TIME_BUDGET_S`` on this device.
"""

from __future__ import annotations

import dataclasses

from ui_state.actions import ChoosePreset
from ui_state.inversion import PresetInfo
from viewer.features.inversion import stages
from viewer.features.inversion.settings import (
    at_resolution, base_preset, default_preset, estimate_s, fill_form, fit_resolution, form_matches,
    latent_settings, preset_names, preset_steps, tuning_settings,
)

SPEED_JOB = "inversion_speed"
MIN_STEPS_TO_LEARN = 5  # a real run this long replaces the measured figure of its stage


class StageSpeed:
    """Owned by the inversion feature (``feature``): its panel, jobs and the preprocessed photos."""

    def __init__(self, feature) -> None:
        self.f = feature
        # (stage 1, stage 2) seconds per step at each fit resolution (px) measured so far
        self.by_resolution: dict[int, tuple[float | None, float | None]] = {}
        self.note = ""
        self._user_chose = False

    # ------------------------------------------------------------------ presets

    def choose(self, a: ChoosePreset, by_user: bool = True) -> None:
        if a.name not in preset_names():
            self.f.say(f"unknown preset {a.name!r}; choose one of {', '.join(preset_names())}", "error")
            return
        fill_form(self.f.state.panel, a.name)
        self._user_chose = self._user_chose or by_user
        self.f.mark_dirty()

    def presets(self) -> tuple[PresetInfo, ...]:
        from inversion.config import PRESETS

        return tuple(PresetInfo(name, a, b, estimate_s((a, b), self._speed_of(name)), PRESETS[name].summary)
                     for name, (a, b) in preset_steps().items())

    def _resolution(self, name: str) -> int | None:
        """The px preset ``name`` fits the preprocessed photos at (None before preprocessing)."""
        target = self.f.target
        return None if target is None else fit_resolution(name, target.resolution)

    def _speed_of(self, name: str) -> tuple[float | None, float | None]:
        return self.by_resolution.get(self._resolution(name), (None, None))

    @property
    def per_step(self) -> tuple[float | None, float | None]:
        """Seconds per step of (stage 1, stage 2) with the form's settings (the preset it was filled from sets
        the resolution); (None, None) while unknown."""
        return self._speed_of(base_preset(self.f.state.panel))

    def sync_preset(self) -> None:
        """The form no longer holds its preset's values (the user changed one): no preset is chosen (the settings
        the form does not show stay those of the preset it was filled from)."""
        p = self.f.state.panel
        if p.preset and not form_matches(p, p.preset):
            p.preset = ""
            self._user_chose = True

    # ------------------------------------------------------------------ measuring

    def measure(self) -> None:
        """Start the throw-away steps (after preprocessing; skipped while anything else runs)."""
        f = self.f
        if f.target is None or f.preprocessed is None or f._busy():
            return
        try:
            s1 = latent_settings(f.state.panel, f.preprocessed[0])
            s2 = tuning_settings(f.state.panel, s1)
        except ValueError:
            return
        resolutions = sorted({fit_resolution(n, f.target.resolution) for n in preset_names()})
        pairs = []
        for r in resolutions:
            at = at_resolution(s2, r)
            pairs.append((dataclasses.replace(at, tuning=None), at))
        work = stages.speed_job(pairs, f.target, f._base_source(), f.ui.device, f._stop)
        done = lambda per_step: self._measured(resolutions, per_step)  # noqa: E731
        if f.studio.jobs.start_on_worker(SPEED_JOB, work, on_done=done):
            self.note = "measuring the speed on this device..."
            f.mark_dirty()

    def _measured(self, resolutions: list[int], per_steps) -> None:
        """The speed job's ``per_steps``: one (stage 1, stage 2) pair per entry of ``resolutions`` (None: it
        stopped or failed)."""
        if per_steps is None:
            self.note = ""
            self.f.mark_dirty()
        else:
            self._set(dict(zip(resolutions, per_steps)), f"measured on {self.f.ui.device}")

    def learn(self, stage: int, result) -> None:
        """A finished run of stage ``stage`` (0 or 1) with ``steps_done`` and ``seconds``: its own speed, at
        the resolution the form's preset fits at."""
        res = self._resolution(base_preset(self.f.state.panel))
        if result is None or result.steps_done < MIN_STEPS_TO_LEARN or res is None:
            return
        per_step = list(self.by_resolution.get(res, (None, None)))
        per_step[stage] = result.seconds / result.steps_done
        self._set({**self.by_resolution, res: tuple(per_step)}, f"from the last runs on {self.f.ui.device}")

    def _set(self, by_resolution: dict, how: str) -> None:
        self.by_resolution = by_resolution
        parts = []
        for res, pair in sorted(by_resolution.items()):
            steps = ", ".join(f"stage {i + 1} {s:.2f}" for i, s in enumerate(pair) if s is not None)
            if steps:
                parts.append(f"{res} px: {steps} s/step")
        self.note = f"{'; '.join(parts)} ({how})"
        self.f.mark_dirty()
        # A value the user typed this frame (before the per-frame sync saw it) is a choice too: never fill
        # over it.
        self.sync_preset()
        if not self._user_chose:
            estimates = {p.name: p.seconds for p in self.presets()}
            if all(v is not None for v in estimates.values()):
                self.choose(ChoosePreset(default_preset(self.f.ui.device, estimates)), by_user=False)

    def poll(self) -> None:
        """A measurement that was cancelled (a real run started) or failed leaves no "measuring..." behind."""
        if self.note.startswith("measuring") and not self.f.studio.jobs.running(SPEED_JOB):
            st = self.f.ui.info.jobs.get(SPEED_JOB)
            if st is not None and not st.running and st.error:
                self.note = ""
                self.f.mark_dirty()

    def eta_s(self, stage: str, step: int, total: int) -> float | None:
        """Seconds left of the running ``stage`` ("latent" or "tuning") after ``step`` of ``total``."""
        s = self.per_step[0 if stage == "latent" else 1] if stage in ("latent", "tuning") else None
        return None if s is None or total <= 0 else max(0, total - step) * s
